"""SDP for sessions: the one module the session layer imports (sans-I/O).

    offer = parse_sdp(invite.body)                    # SDPError (with .line) -> answer 488
    split = split_media(offer)                        # audio part for the media worker
    worker_offer = split.worker                       # None when the offer has no audio line
    ...                                               # the worker answers its part
    chat = MediaDescription.new("message", 2855, "TCP/TLS/MSRP", ["*"],
                                connection=Connection("192.0.2.1"))
    chat.path = [local_msrp_uri]; chat.accept_types = ["message/cpim", "text/plain"]
    versions = SessionVersion("192.0.2.1")            # one per session
    answer = merge_answer(offer, worker_answer, {1: chat}, origin=versions.next())
    body = bytes(answer)

    held_by_remote(reinvite_offer)                    # sendonly/inactive/c=0.0.0.0
    set_hold(our_offer, True)                         # sendonly (or inactive) on the audio
    media_changed(previous_remote, reinvite_offer)    # False for the same o= version

The pieces: sdp_fields (SDPError, limits, o= c= b= t= m= values), sdp_attributes (direction,
rtpmap, fmtp, crypto, rtcp, MSRP and file-transfer attributes), sdp_model (SessionDescription,
MediaDescription), sdp_parse (parse_sdp) and sdp_offer_answer (split, merge, sanitise,
SessionVersion, hold, change detection).
"""

from __future__ import annotations

from .attributes import (
                             STATIC_PAYLOAD_TYPES,
                             Crypto,
                             CryptoKey,
                             Direction,
                             FileSelector,
                             Fmtp,
                             Rtcp,
                             RtpMap,
                             parse_accept_types,
                             parse_path,
)
from .fields import (
                             MAX_LINES,
                             MAX_MEDIA,
                             MAX_SDP_SIZE,
                             Bandwidth,
                             Connection,
                             MediaLine,
                             Origin,
                             SDPError,
                             Timing,
)
from .model import Attribute, Line, MediaDescription, SessionDescription
from .offer_answer import (
                             DEFAULT_SESSION_NAME,
                             STRIPPED_ATTRIBUTES,
                             STRIPPED_BANDWIDTHS,
                             WORKER_MEDIA_TYPES,
                             MediaSplit,
                             SessionVersion,
                             changed_media,
                             held_by_remote,
                             media_changed,
                             merge_answer,
                             merge_offer,
                             sanitize_worker_sdp,
                             set_hold,
                             split_media,
                             stream_is_held,
)
from .parse import parse_sdp

__all__ = [
    "MAX_LINES", "MAX_MEDIA", "MAX_SDP_SIZE", "STATIC_PAYLOAD_TYPES", "Bandwidth", "Connection",
    "Crypto", "CryptoKey", "Direction", "FileSelector", "Fmtp", "MediaLine", "Origin", "Rtcp",
    "RtpMap", "SDPError", "Timing", "parse_accept_types", "parse_path",
    "Attribute", "Line", "MediaDescription", "SessionDescription", "parse_sdp",
    "DEFAULT_SESSION_NAME", "STRIPPED_ATTRIBUTES", "STRIPPED_BANDWIDTHS", "WORKER_MEDIA_TYPES",
    "MediaSplit", "SessionVersion", "changed_media", "held_by_remote", "media_changed",
    "merge_answer", "merge_offer", "sanitize_worker_sdp", "set_hold", "split_media",
    "stream_is_held",
]
