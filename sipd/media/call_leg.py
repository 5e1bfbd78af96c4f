"""One call of a media worker: a pjsua2 Call plus the media attached to it (player, recorder).

Worker-only module: it imports pjsua2 and must never be imported by the main process.

pjsua2 rules followed here (docs/design.md §2): every callback copies what it needs into plain
data at once (its parameters are valid only during the call) and hands the work to the
engine's deferred queue, which runs on the same thread right after `libHandleEvents`
returns; no callback raises into C++ (`guarded`); the player and recorder are referenced
from the leg for as long as they exist and are destroyed on the pjsua thread.

The leg (plain Python, what the engine and its deferred work hold) and its pjsua2 Call
(`PjsuaCall`) are two objects because their lives differ. The Call object must be destroyed
inside its own DISCONNECTED callback, as pjsua2 intends: its destructor clears pjsua's data
for its call id and hangs that id up if it is active, and right after the callback pjsua
frees the id for the next call. A Call destroyed later, after the deferred work of the same
poll, hung up and orphaned a new call that had arrived in that poll and taken the same id.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, Callable

import pjsua2 as pj

from sipd.media.web_audio import WebAudioLink

if TYPE_CHECKING:
    from sipd.media.engine import MediaEngine

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}
MEDIA_STATUS_NAMES = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
DIRECTION_NAMES = {
    pj.PJMEDIA_DIR_NONE: "inactive",
    pj.PJMEDIA_DIR_ENCODING: "sendonly",
    pj.PJMEDIA_DIR_DECODING: "recvonly",
    pj.PJMEDIA_DIR_ENCODING_DECODING: "sendrecv",
}
PROTO_NAMES = {
    pj.PJMEDIA_TP_PROTO_RTP_AVP: "RTP/AVP",
    pj.PJMEDIA_TP_PROTO_RTP_SAVP: "RTP/SAVP",
    pj.PJMEDIA_TP_PROTO_RTP_AVPF: "RTP/AVPF",
    pj.PJMEDIA_TP_PROTO_RTP_SAVPF: "RTP/SAVPF",
    pj.PJMEDIA_TP_PROTO_DTLS_SRTP: "UDP/TLS/RTP/SAVP",
    pj.PJMEDIA_TP_PROTO_DTLS_SRTPF: "UDP/TLS/RTP/SAVPF",
}
SECURE_PROTOS = frozenset({"RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"})
DTMF_METHOD_NAMES = {
    pj.PJSUA_DTMF_METHOD_RFC2833: "rfc2833",
    pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip_info",
}
SRTP_ACTIVE_MARK = "SRTP status: Active"
PJ_ETOOMANY = 70010  # pj_status_t "Too many objects of the specified type"
# Media statuses with a live stream on the conference bridge.
LIVE_MEDIA = frozenset({"active", "local_hold", "remote_hold"})


def guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A pjsua2 callback that never lets an exception reach C++ (that aborts the process)."""

    @functools.wraps(callback)
    def wrapper(*args: Any) -> None:
        try:
            callback(*args)
        except BaseException:  # noqa: BLE001 - nothing may cross into C++
            sys.stderr.write(f"media worker: error in {callback.__qualname__}:\n"
                             f"{traceback.format_exc()}")

    return wrapper


class CallLeg:
    """A call on the internal leg, addressed by the worker's own handle (pjsua ids are reused)."""

    def __init__(self, engine: MediaEngine, account: pj.Account, handle: int, role: str,
                 session: str | None, pj_call_id: int = pj.PJSUA_INVALID_ID) -> None:
        self.engine = engine
        self.handle = handle
        self.role = role
        self.session = session
        self.state = "null"
        self.remote_uri = ""
        self.media: dict[str, Any] = {"active": False, "status": "none", "direction": "inactive"}
        self.player: FilePlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.record_file: str | None = None
        self.web_audio: WebAudioLink | None = None  # the page's audio (web_audio command)
        # None once pjsua is done with the call (see the module's docstring).
        self.call: PjsuaCall | None = PjsuaCall(self, account, pj_call_id)

    # -- identity -------------------------------------------------------------------------

    def tags(self) -> dict[str, Any]:
        """The fields every event about this call carries."""
        return {"call": self.handle, "session": self.session}

    def summary(self) -> dict[str, Any]:
        return {**self.tags(), "role": self.role, "state": self.state,
                "remote_uri": self.remote_uri, "media": self.public_media(),
                "rtp": self.rtp_stats(),
                "playing": self.player.file if self.player else None,
                "recording": self.record_file}

    def public_media(self) -> dict[str, Any]:
        """The media snapshot without pjsua's stream index (internal to the worker)."""
        return {key: value for key, value in self.media.items() if key != "index"}

    def rtp_stats(self) -> dict[str, int] | None:
        """RTP packets and bytes sent and received so far on the call's audio stream (pjsua's
        RTCP statistics), or None while it has no live stream. Proof that media flows both
        ways, silence included: a recording cannot tell silence from nothing."""
        call = self.live_call()
        if call is None:
            return None
        try:
            rtcp = call.getStreamStat(self.media["index"]).rtcp
        except pj.Error:
            return None
        return {"rx_packets": rtcp.rxStat.pkt, "rx_bytes": rtcp.rxStat.bytes,
                "tx_packets": rtcp.txStat.pkt, "tx_bytes": rtcp.txStat.bytes}

    @property
    def ended(self) -> bool:
        """The engine has handled the call's end (`call` is None from the callback on)."""
        return self.state == "disconnected"

    def live_call(self) -> PjsuaCall | None:
        """The pjsua2 Call while it has a live audio stream."""
        call = self.call
        if call is None or not self.media.get("active") or not call.isActive():
            return None
        return call

    # -- media wiring (on the pjsua thread, outside callbacks) ------------------------------

    def audio_media(self) -> pj.AudioMedia | None:
        """The call's port on the conference bridge, or None while there is no live stream."""
        call = self.live_call()
        if call is None:
            return None
        try:
            return call.getAudioMedia(self.media["index"])
        except pj.Error:
            return None

    def connect_media(self) -> None:
        """(Re)connect player and recorder: a re-INVITE may give the call a new bridge port."""
        port = self.audio_media()
        if port is None:
            return
        if self.player is not None:
            self.player.startTransmit(port)
        if self.recorder is not None:
            port.startTransmit(self.recorder)
        if self.web_audio is not None:
            self.web_audio.connect(port)

    def play(self, path: str, loop: bool) -> None:
        self.stop_play()
        player = FilePlayer(self.engine, self, path, loop)
        options = 0 if loop else pj.PJMEDIA_FILE_NO_LOOP
        try:
            player.createPlayer(path, options)
        except pj.Error as exc:
            # pjsua's 32 players are all taken, some by stopped ones kept a while.
            if exc.status != PJ_ETOOMANY or not self.engine.retired_players.make_room():
                raise
            player.createPlayer(path, options)
        self.player = player
        self.connect_media()

    def stop_play(self) -> None:
        """Take the player off the call; it is destroyed once no callback can come for it
        (retired_players.py)."""
        player, self.player = self.player, None
        if player is None:
            return
        port = self.audio_media()
        if port is not None:
            try:
                player.stopTransmit(port)
            except pj.Error:
                pass  # the stream's port is already gone, and its connections with it
        self.engine.retired_players.add(player)

    def record(self, path: str) -> str | None:
        """Record what the remote party sends into `path`. A recording already running goes
        on until the new file is open (so a bad path loses nothing), then stops: returns
        its file, as stop_record does."""
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot record to {path}: no folder {directory}")
        if path == self.record_file:
            self.stop_record()  # one writer per file: the new recording starts it afresh
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(path)
        previous = self.stop_record()
        self.recorder, self.record_file = recorder, path
        self.connect_media()
        return previous

    def stop_record(self) -> str | None:
        """Destroy the recorder; returns its file. pjsua finishes the file (its WAV header)
        a little later, on its media clock thread: the engine watches for that."""
        path, self.recorder, self.record_file = self.record_file, None, None
        return path

    def start_web_audio(self, peer: tuple[str, int]) -> int:
        """The call's audio both ways over UDP with `peer` (the daemon's relay to a web
        page), instead of nothing; returns our UDP port. A link already there is replaced."""
        self.stop_web_audio()
        self.web_audio = WebAudioLink(f"web{self.handle}", peer)
        self.connect_media()
        return self.web_audio.local_port

    def stop_web_audio(self) -> dict[str, int] | None:
        """Disconnect and close the page's audio; its port is destroyed a little later, once
        the bridge's clock thread can no longer be in it (retired_players.py). Its counters."""
        link, self.web_audio = self.web_audio, None
        if link is None:
            return None
        link.close()
        self.engine.retired_players.add(link.port)
        return link.stats()

    def release_media(self) -> str | None:
        self.stop_play()
        self.stop_web_audio()
        return self.stop_record()


class PjsuaCall(pj.Call):
    """The pjsua2 Call of a leg: its callbacks, and the pjsua2 calls made on it."""

    def __init__(self, leg: CallLeg, account: pj.Account, pj_call_id: int) -> None:
        super().__init__(account, pj_call_id)
        self.leg: CallLeg | None = leg  # None after DISCONNECTED (no callback comes then)

    # -- callbacks: copy, then defer --------------------------------------------------

    @guarded
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        leg = self.leg
        if leg is None:
            return
        info = self.getInfo()
        snapshot = {"state": STATE_NAMES.get(info.state, str(info.state)),
                    "code": info.lastStatusCode, "reason": info.lastReason,
                    "remote_uri": info.remoteUri}
        leg.engine.defer(lambda: leg.engine.on_call_state(leg, snapshot))
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # The last references go: this object is destroyed as the callback returns.
            leg.call, self.leg = None, None

    @guarded
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        leg = self.leg
        if leg is not None:
            snapshot = self._media_snapshot()
            leg.engine.defer(lambda: leg.engine.on_call_media(leg, snapshot))

    @guarded
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        leg = self.leg
        if leg is not None:
            digit = {"digit": prm.digit,
                     "method": DTMF_METHOD_NAMES.get(prm.method, str(prm.method))}
            leg.engine.defer(lambda: leg.engine.on_call_dtmf(leg, digit))

    def _media_snapshot(self) -> dict[str, Any]:
        info = self.getInfo()
        audio = next((m for m in info.media if m.type == pj.PJMEDIA_TYPE_AUDIO), None)
        if audio is None:
            return {"active": False, "status": "none", "direction": "inactive"}
        status = MEDIA_STATUS_NAMES.get(audio.status, str(audio.status))
        snapshot: dict[str, Any] = {
            "active": status in LIVE_MEDIA, "status": status,
            "direction": DIRECTION_NAMES.get(audio.dir, str(audio.dir)), "index": audio.index,
        }
        if status in LIVE_MEDIA:
            try:
                stream = self.getStreamInfo(audio.index)
            except pj.Error:
                return snapshot
            proto = PROTO_NAMES.get(stream.proto, str(stream.proto))
            snapshot.update(codec=f"{stream.codecName}/{stream.codecClockRate}", proto=proto,
                            srtp=self._srtp_active(proto), remote_rtp=stream.remoteRtpAddress)
        return snapshot

    def _srtp_active(self, proto: str) -> bool:
        # SDES-SRTP negotiated under RTP/AVP ("optional" mode) shows only in the call dump:
        # pjsua2 exposes no SRTP state otherwise.
        try:
            return SRTP_ACTIVE_MARK in self.dump(True, "")
        except pj.Error:
            return proto in SECURE_PROTOS


class FilePlayer(pj.AudioMediaPlayer):
    """A WAV player that tells its call when a non-looping file has ended.

    It names its call by handle, not by reference: a stopped player outlives its call a
    little (retired_players.py) and must not keep the call's objects alive meanwhile."""

    def __init__(self, engine: MediaEngine, leg: CallLeg, path: str, loop: bool) -> None:
        super().__init__()
        self.engine = engine
        self.call = leg.handle
        self.file = path
        self.loop = loop

    @guarded
    def onEof2(self) -> None:
        if self.loop:
            return
        # Never destroy a player inside its own callback: the engine does it afterwards.
        self.engine.defer(lambda: self.engine.on_play_done(self))
