"""The audio kind: RTP audio carried by a media worker (pjsua2) on an internal SIP leg.

The session's audio m-lines go, with the session-level lines, to the worker in an internal
INVITE dialog (`sdp.for_worker`); the worker's description comes back sanitised and merged
into the session's in m-line order (`sdp.outside_offer`, `sdp.outside_answer`). An offered
audio line whose codecs the workers lack is refused before anything rings (`codecs`); the
files of play and record are checked before a worker sees them (`files`). The worker leg
itself, its internal dialog and control commands, is `worker.WorkerLeg`, which the session
holds and drives back to back with its outside dialog (the audio m-lines all go to the one
worker call, so the session passes them as a group rather than through `new_stream`).
"""

from __future__ import annotations

from ...sdp import MediaDescription, SessionDescription
from ..base import Stream, StreamContext, StreamKind
from .codecs import line_missing_codecs

AUDIO = "audio"


class AudioKind(StreamKind):
    name = AUDIO
    uses_media_worker = True

    def recognises(self, media: MediaDescription) -> bool:
        return bool(media.type == AUDIO)

    def refusal(self, offer: SessionDescription, media: MediaDescription,
                context: StreamContext) -> str | None:
        return line_missing_codecs(media, context.audio_codecs)

    def new_stream(self, context: StreamContext, index: int) -> Stream:
        raise NotImplementedError(
            "audio lines are carried by the session's WorkerLeg "
            "(sipd.sessions.streams.audio.worker), not by a stream per line")
