"""The audio kind: RTP audio carried by a media worker (pjsua2) on an internal SIP leg.

A session's audio lines are one `AudioStream` (`stream`): the worker leg (`worker.WorkerLeg`,
its internal INVITE dialog and control commands), the later offers passed between it and the
outside leg (`passing.OfferPassing`), and the split and merge of the descriptions (`sdp`:
the audio m-lines go, with the session-level lines, to the worker; its description comes
back sanitised and merged into the session's in m-line order). An offered audio line whose
codecs the workers lack is refused before anything rings (`codecs`); the files of play and
record are checked before a worker sees them (`files`).
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
        from .stream import AudioStream  # its trio side, imported when a session needs it
        return AudioStream(self, context, index)
