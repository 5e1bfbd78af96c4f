"""The pjsua2 Endpoint of one media worker and the commands of the control protocol.

Worker-only module: it imports pjsua2 and must never be imported by the main process.

Everything here runs on the one thread that called `libCreate` (threadCnt=0,
mainThreadOnly=True, docs/design.md §2). pjsua2 callbacks only copy their data and `defer` the
work; `poll` runs the deferred work right after `libHandleEvents` returns, outside any
callback, where creating, connecting and destroying pjsua2 objects is safe.
"""

from __future__ import annotations

import collections
import gc
import ipaddress
import os
import socket
import sys
import time
from typing import Any, Callable

import pjsua2 as pj

from sipd.media import protocol
from sipd.media.call_leg import CallLeg, FilePlayer, PjsuaCall, guarded
from sipd.media.codecs import DEFAULT_CODECS, select_codecs
from sipd.media.inactivity import RtpInactivity, expects_media
from sipd.media.retired_players import RetiredPlayers

SRTP_USE = {"disabled": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
TURN_TRANSPORTS = {"udp": pj.PJ_TURN_TP_UDP, "tcp": pj.PJ_TURN_TP_TCP}
DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")
NO_ICE_CANDIDATE = (
    "ICE has no candidate to offer: pjnath gathers no host candidate on a loopback media "
    "address (rtp.media_address), and without one no server-reflexive candidate either; set "
    "nat.turn.server (relayed candidates work there), give rtp.media_address a routable "
    "address, or turn nat.ice off")
# How long shutdown waits for hung-up calls to reach DISCONNECTED before destroying them.
HANGUP_GRACE_SECONDS = 2.0
# How long a stopped recording may take to get its final WAV header before we give up.
RECORDING_FINISH_SECONDS = 5.0
# pjsua's media quality 0-10 (its default is 8). What it sets: the conference bridge's
# resampler, 5-10 libresample's large filter, 3-4 its small one, 1-2 linear interpolation;
# and speex's encoder quality and complexity (speex only: G722, G711, GSM and iLBC ignore it).
# The large filter was the worker's largest single cost (docs/decisions.md).
MEDIA_QUALITY = 4
# How often the calls' received-packet counters are read for the inactivity watch.
RTP_CHECK_SECONDS = 1.0
NO_MEDIA_REASON = "no media from the remote party"


class CommandError(Exception):
    """A command that cannot be carried out; the message is meant for a person."""


class StderrLogWriter(pj.LogWriter):
    """pjsua's log goes to stderr, which the supervisor forwards to the daemon's log."""

    @guarded
    def write(self, entry: pj.LogEntry) -> None:
        # "[pj:N] " carries pjsua's level to the supervisor, which maps it to logging levels.
        message = entry.msg.rstrip("\n")
        sys.stderr.write(f"{protocol.LOG_PREFIX}{entry.level}] {message}\n")


class LocalAccount(pj.Account):
    """The worker's only account: no registration, it just owns calls on the internal leg."""

    def __init__(self, engine: MediaEngine) -> None:
        super().__init__()
        self.engine = engine

    @guarded
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        # Adopt the call at once (a Call object must exist for it before this returns).
        session = protocol.header_value(prm.rdata.wholeMsg, protocol.SESSION_HEADER)
        leg = self.engine.adopt_incoming(prm.callId, session)
        assert leg.call is not None  # just made
        info = leg.call.getInfo()
        details = {"remote_uri": info.remoteUri, "local_uri": info.localUri}
        self.engine.defer(lambda: self.engine.on_incoming_call(leg, details))


class MediaEngine:
    def __init__(self, emit: Callable[[dict[str, Any]], None], log_level: int = 3,
                 clock_rate: int | None = None) -> None:
        self._emit = emit
        self._log_level = log_level
        self._clock_rate = clock_rate  # the conference bridge's; None: pjsua's default
        self._deferred: collections.deque[Callable[[], None]] = collections.deque()
        self._log_writer = StderrLogWriter()  # referenced for the Endpoint's whole life
        self._next_handle = 1
        self.endpoint: pj.Endpoint | None = None
        self.account: LocalAccount | None = None
        self.calls: dict[int, CallLeg] = {}
        self.sip: dict[str, str] = {}
        self.auto_answer = True
        self.stopping = False
        self._stun_servers: list[str] = []
        self._ice_without_candidates = False
        self._turn_server: str | None = None
        self._finishing_recordings: list[tuple[dict[str, Any], str, float]] = []
        # Stopped players wait there before they are destroyed (retired_players.py).
        self.retired_players = RetiredPlayers()
        # Calls whose remote party went silent (configure's rtp_timeout; off until then).
        self.rtp_inactivity = RtpInactivity(0)
        self._next_rtp_check = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Create the library, its SIP transports on 127.0.0.1 and the null audio device."""
        endpoint = pj.Endpoint()
        endpoint.libCreate()
        self.endpoint = endpoint
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = protocol.MAX_CALLS_PER_WORKER
        config.uaConfig.userAgent = "sipd-media"
        config.logConfig.writer = self._log_writer
        config.logConfig.level = self._log_level
        config.logConfig.consoleLevel = self._log_level
        config.medConfig.noVad = True  # silence suppression would cut tones and recordings
        config.medConfig.ecTailLen = 0  # null device: no acoustic echo to cancel
        config.medConfig.quality = MEDIA_QUALITY
        if self._clock_rate is not None:
            # 8 kHz when only narrowband codecs are configured (codecs.bridge_clock_rate):
            # no resampling between the bridge and its PCMU/PCMA calls.
            config.medConfig.clockRate = self._clock_rate
        # The (null) sound device is the conference bridge's clock: without it no stream is
        # given a frame, so none sends RTP, silence included. pjsua closes it after a second
        # with no call and no connection, and only an outgoing call or a new connection
        # (a player, a recorder) reopens it: a callee with nothing playing went silent from
        # its third or fourth call on. Never close it (docs/design.md §2, docs/decisions.md).
        config.medConfig.sndAutoCloseTime = -1
        endpoint.libInit(config)
        # The internal leg is loopback only; the OS picks the ports.
        for kind, transport_type in (("tcp", pj.PJSIP_TRANSPORT_TCP),
                                     ("udp", pj.PJSIP_TRANSPORT_UDP)):
            transport = pj.TransportConfig()
            transport.boundAddress = "127.0.0.1"
            transport.port = 0
            if transport_type == pj.PJSIP_TRANSPORT_TCP:
                # Small SIP writes must not wait for delayed ACKs (Nagle): ~40 ms per step.
                transport.sockOptParams.sockOpts.append(
                    pj.SockOpt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))
            transport_id = endpoint.transportCreate(transport_type, transport)
            self.sip[kind] = endpoint.transportGetInfo(transport_id).localName
        endpoint.libStart()
        endpoint.audDevManager().setNullDev()
        return {"pid": os.getpid(), "sip": dict(self.sip), "uri": self.uri,
                "version": endpoint.libVersion().full,
                "max_calls": protocol.MAX_CALLS_PER_WORKER}

    @property
    def uri(self) -> str:
        return f"sip:media@{self.sip.get('tcp', '')};transport=tcp"

    def poll(self, timeout_ms: int) -> None:
        """Let pjsua work for up to `timeout_ms`, then run what its callbacks deferred."""
        assert self.endpoint is not None
        self.endpoint.libHandleEvents(timeout_ms)
        self.run_deferred()
        if self._finishing_recordings:
            self.check_recordings()
        if self.retired_players:
            self.retired_players.destroy()
        if self.rtp_inactivity.enabled and time.monotonic() >= self._next_rtp_check:
            self.check_rtp()

    def check_rtp(self) -> None:
        """Report each call that has received no RTP for rtp_timeout seconds although it
        should (inactivity.py); the session decides what to do about it."""
        now = time.monotonic()
        self._next_rtp_check = now + RTP_CHECK_SECONDS
        for leg in list(self.calls.values()):
            if leg.ended:
                continue
            stats = leg.rtp_stats()
            # Early media is not watched: many a 183 brings an SDP and never a packet.
            receiving = stats is not None and leg.state == "confirmed" and expects_media(
                str(leg.media.get("status")), str(leg.media.get("direction")))
            packets = stats["rx_packets"] if stats is not None else None
            if self.rtp_inactivity.observe(leg.handle, packets, receiving, now):
                seconds = round(self.rtp_inactivity.silent_for(leg.handle, now))
                self.emit("call.rtp_timeout", **leg.tags(), seconds=seconds,
                          reason=f"{NO_MEDIA_REASON} for {seconds} s")

    def _watch_recording(self, leg: CallLeg, path: str | None) -> None:
        if path is not None:
            deadline = time.monotonic() + RECORDING_FINISH_SECONDS
            self._finishing_recordings.append((leg.tags(), path, deadline))

    def check_recordings(self, final: bool = False) -> None:
        """Announce `record.done` for each stopped recording whose WAV file is complete.

        pjsua destroys a recorder's port asynchronously (on its media clock thread); the
        WAV header gets its sizes only then, so a reader must wait for this event.
        """
        still_open = []
        for tags, path, deadline in self._finishing_recordings:
            complete = wav_is_complete(path)
            if complete or final or time.monotonic() > deadline:
                self.emit("record.done", **tags, file=path, complete=complete)
            else:
                still_open.append((tags, path, deadline))
        self._finishing_recordings = still_open

    def defer(self, work: Callable[[], None]) -> None:
        self._deferred.append(work)

    def run_deferred(self) -> None:
        while self._deferred:
            work = self._deferred.popleft()
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - one failure must not stop the worker
                self.emit("error", message=f"internal error: {describe(exc)}")

    def emit(self, name: str, **fields: Any) -> None:
        self._emit(protocol.event(name, **fields))

    def shutdown(self) -> None:
        """Hang up, destroy every call and media object, then the library (in that order)."""
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is None:
            return
        try:
            if any(not leg.ended for leg in self.calls.values()):
                endpoint.hangupAllCalls()
                deadline = time.monotonic() + HANGUP_GRACE_SECONDS
                while (any(not leg.ended for leg in self.calls.values())
                       and time.monotonic() < deadline):
                    endpoint.libHandleEvents(10)
                    self.run_deferred()
        except pj.Error as exc:
            sys.stderr.write(f"media worker: hangup at shutdown failed: {describe(exc)}\n")
        for leg in self.calls.values():
            self._watch_recording(leg, leg.release_media())
        self.retired_players.wait_out(endpoint)
        # A Call that outlives libDestroy aborts the process: drop every reference first.
        self.calls.clear()
        self._deferred.clear()
        if self.account is not None:
            self.account.shutdown()
            self.account = None
        gc.collect()
        endpoint.libDestroy()
        self.check_recordings(final=True)  # libDestroy has closed every file

    # -- commands ---------------------------------------------------------------------------

    def execute(self, message: dict[str, Any]) -> dict[str, Any]:
        """Carry out one command; returns the reply's fields. Raises CommandError."""
        name = message.get("cmd")
        handler = getattr(self, f"cmd_{name}", None) if name in protocol.COMMANDS else None
        if handler is None:
            raise CommandError(f"unknown command {name!r}; known: {sorted(protocol.COMMANDS)}")
        try:
            return handler(message) or {}
        except pj.Error as exc:
            raise CommandError(describe(exc)) from None

    def cmd_status(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "sip": dict(self.sip), "uri": self.uri,
                "configured": self.account is not None,
                "max_calls": protocol.MAX_CALLS_PER_WORKER, "free_slots": self.free_slots(),
                "calls": [leg.summary() for leg in self.calls.values()]}

    def cmd_shutdown(self, message: dict[str, Any]) -> dict[str, Any]:
        self.stopping = True
        return {}

    def cmd_configure(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.endpoint is not None
        media_address = text(message, "media_address")
        port_start = integer(message, "rtp_port_start", default=0)
        port_count = integer(message, "rtp_port_count", default=0)
        srtp = text(message, "srtp", default="optional")
        if srtp not in SRTP_USE:
            raise CommandError(f"srtp must be one of {list(SRTP_USE)}, not {srtp!r}")
        rtp_timeout = message.get("rtp_timeout", 0)
        if not isinstance(rtp_timeout, (int, float)) or isinstance(rtp_timeout, bool) \
                or rtp_timeout < 0:
            raise CommandError("configure: 'rtp_timeout' must be a number of seconds >= 0 "
                               "(0: no inactivity watch)")
        turn = message.get("turn") or None
        if turn is not None and not (isinstance(turn, dict) and turn.get("server")):
            raise CommandError("turn must be null or {server, username, password, transport}")
        if turn is not None and str(turn.get("transport") or "udp").lower() \
                not in TURN_TRANSPORTS:
            raise CommandError(f"turn transport must be one of {list(TURN_TRANSPORTS)}")
        stun_servers = [str(s) for s in message.get("stun_servers") or []]
        requested = message.get("codecs") or list(DEFAULT_CODECS)
        available = [info.codecId for info in self.endpoint.codecEnum2()]
        order, unknown = select_codecs(requested, available)
        if not order:
            raise CommandError(f"none of the audio codecs {requested} is available; "
                               f"this media engine has {available}")

        for codec_id in available:
            self.endpoint.codecSetPriority(codec_id, 0)  # 0 disables it
        for rank, codec_id in enumerate(order):
            self.endpoint.codecSetPriority(codec_id, 255 - rank)
        if stun_servers and stun_servers != self._stun_servers:
            servers = pj.StringVector()
            for server in stun_servers:
                servers.append(server)
            self.endpoint.natUpdateStunServers(servers, False)
            self._stun_servers = stun_servers

        config = self._account_config(media_address, port_start, port_count, srtp,
                                      bool(message.get("ice")), bool(stun_servers), turn)
        if self.account is None:
            account = LocalAccount(self)
            account.create(config)
            self.account = account
        else:
            self.account.modify(config)
        self.auto_answer = bool(message.get("auto_answer", True))
        self.rtp_inactivity.timeout = float(rtp_timeout)
        # On loopback only TURN gives ICE a candidate (a relayed one): pjnath gathers no
        # host candidate there, so no server-reflexive one either.
        self._ice_without_candidates = (bool(message.get("ice")) and turn is None
                                        and is_loopback(media_address))
        self._turn_server = str(turn["server"]) if turn is not None and message.get("ice") \
            else None
        for name in unknown:
            self.emit("error", message=f"unknown audio codec {name!r} ignored; "
                                        f"this media engine has {available}")
        return {"codecs": order, "unknown_codecs": unknown}

    def _account_config(self, media_address: str, port_start: int, port_count: int,
                        srtp: str, ice: bool, stun: bool,
                        turn: dict[str, Any] | None) -> pj.AccountConfig:
        config = pj.AccountConfig()
        config.idUri = f"sip:media@{self.sip['tcp']}"
        nat = config.natConfig
        # The internal leg is loopback: no STUN, no rewriting of Contact, Via or SDP (§2).
        nat.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        nat.mediaStunUse = pj.PJSUA_STUN_USE_DEFAULT if stun else pj.PJSUA_STUN_USE_DISABLED
        nat.contactRewriteUse = 0
        nat.viaRewriteUse = 0
        nat.sdpNatRewriteUse = 0
        nat.iceEnabled = ice
        # After ICE, pjsua re-offers by default even when the selected pair is the default
        # candidate (c=/m=), keeping its o= version: the B2BUA sees no change and answers it
        # itself, a wasted round trip on the internal leg. Re-offer only when c=/m= change.
        nat.iceAlwaysUpdate = False
        if turn is not None:
            nat.turnEnabled = True
            nat.turnServer = str(turn["server"])
            nat.turnUserName = str(turn.get("username") or "")
            nat.turnPasswordType = 0  # plain text
            nat.turnPassword = str(turn.get("password") or "")
            nat.turnConnType = TURN_TRANSPORTS[str(turn.get("transport") or "udp").lower()]
        # No session timers on the internal leg (no Session-Expires, Min-SE, "timer" in
        # Supported): it is loopback, and the outside leg is the one whose refreshes matter.
        config.callConfig.timerUse = pj.PJSUA_SIP_TIMER_INACTIVE
        media = config.mediaConfig
        # Bound and public address both: otherwise the SDP and the packets disagree (§2).
        media.transportConfig.boundAddress = media_address
        media.transportConfig.publicAddress = media_address
        media.transportConfig.port = port_start
        # pjsua binds RTP on even ports from `port` on and RTCP one above: keep both inside.
        media.transportConfig.portRange = max(0, port_count - 1) if port_start else 0
        media.srtpUse = SRTP_USE[srtp]
        media.srtpSecureSignaling = 0  # SDES keys cross the plain loopback leg
        return config

    def cmd_call(self, message: dict[str, Any]) -> dict[str, Any]:
        uri = text(message, "uri")
        session = message.get("session")
        self._require_account()
        if self.free_slots() <= 0:
            raise CommandError(
                f"this media worker already carries {protocol.MAX_CALLS_PER_WORKER} calls, "
                "the most one pjsua2 process can; use another worker")
        assert self.endpoint is not None and self.account is not None
        if self.endpoint.utilVerifySipUri(uri) != 0:
            raise CommandError(f"not a SIP URI: {uri!r}")
        headers = {str(k): str(v) for k, v in dict(message.get("headers") or {}).items()}
        if session is not None:
            headers[protocol.SESSION_HEADER] = str(session)
        for name, value in headers.items():
            if not name.strip() or any(c in name + value for c in "\r\n\0") or ":" in name:
                raise CommandError(f"header {name!r} cannot go into a SIP message as given")
        if self._ice_without_candidates:
            # pjsua would fail at once (no candidate at all) or, with STUN, offer srflx
            # candidates whose host base is missing, which the answerer refuses (488).
            raise CommandError(NO_ICE_CANDIDATE)
        leg = CallLeg(self, self.account, self._take_handle(), "uac",
                      str(session) if session is not None else None)
        op = pj.CallOpParam(True)
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            op.txOption.headers.append(header)
        self.calls[leg.handle] = leg  # before makeCall: its first callbacks may come at once
        try:
            assert leg.call is not None  # just made
            leg.call.makeCall(uri, op)
        except pj.Error:
            del self.calls[leg.handle]
            leg.call = None  # pjsua never took it: destroyed now, not by a later gc pass
            raise
        return {"call": leg.handle}

    def cmd_answer(self, message: dict[str, Any]) -> dict[str, Any]:
        call = self._call(message)
        op = pj.CallOpParam(True)
        op.statusCode = integer(message, "code", default=200)
        op.reason = str(message.get("reason") or "")
        call.answer(op)
        return {}

    def cmd_hangup(self, message: dict[str, Any]) -> dict[str, Any]:
        call = self._call(message)
        op = pj.CallOpParam(True)
        op.statusCode = integer(message, "code", default=0)  # 0: what the state calls for
        op.reason = str(message.get("reason") or "")
        call.hangup(op)
        return {}

    def cmd_hold(self, message: dict[str, Any]) -> dict[str, Any]:
        self._call(message).setHold(pj.CallOpParam(True))
        return {}

    def cmd_unhold(self, message: dict[str, Any]) -> dict[str, Any]:
        op = pj.CallOpParam(True)
        op.opt.flag = pj.PJSUA_CALL_UNHOLD
        self._call(message).reinvite(op)
        return {}

    def cmd_dtmf(self, message: dict[str, Any]) -> dict[str, Any]:
        call = self._call(message)
        digits = text(message, "digits")
        if not set(digits) <= DTMF_DIGITS:
            raise CommandError(f"DTMF digits are 0-9, *, # and A-D, not {digits!r}")
        op = pj.CallSendDtmfParam()
        op.method = pj.PJSUA_DTMF_METHOD_RFC2833
        op.digits = digits
        op.duration = integer(message, "duration_ms", default=160)
        call.sendDtmf(op)
        return {}

    def cmd_play(self, message: dict[str, Any]) -> dict[str, Any]:
        leg = self._leg(message)
        path = text(message, "file")
        if not os.path.isfile(path):
            raise CommandError(f"no such WAV file: {path}")
        leg.play(path, bool(message.get("loop")))
        return {}

    def cmd_stop_play(self, message: dict[str, Any]) -> dict[str, Any]:
        self._leg(message).stop_play()
        return {}

    def cmd_record(self, message: dict[str, Any]) -> dict[str, Any]:
        leg = self._leg(message)
        path = text(message, "file")
        try:
            self._watch_recording(leg, leg.record(path))
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        return {}

    def cmd_stop_record(self, message: dict[str, Any]) -> dict[str, Any]:
        leg = self._leg(message)
        path = leg.stop_record()
        self._watch_recording(leg, path)
        return {"file": path}

    def cmd_web_audio(self, message: dict[str, Any]) -> dict[str, Any]:
        leg = self._leg(message)
        host, _, port = text(message, "peer").rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            raise CommandError(f"web_audio needs peer 127.0.0.1:PORT, not {message['peer']!r}")
        return {"port": leg.start_web_audio((host, int(port)))}

    def cmd_stop_web_audio(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"stats": self._leg(message).stop_web_audio()}

    # -- helpers ----------------------------------------------------------------------------

    def free_slots(self) -> int:
        live = sum(1 for leg in self.calls.values() if not leg.ended)
        return max(0, protocol.MAX_CALLS_PER_WORKER - live)

    def _take_handle(self) -> int:
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        return handle

    def _require_account(self) -> None:
        if self.account is None:
            raise CommandError("media worker is not configured yet (send configure first)")

    def _leg(self, message: dict[str, Any]) -> CallLeg:
        handle = message.get("call")
        leg = self.calls.get(handle) if isinstance(handle, int) else None
        if leg is None or leg.ended or leg.call is None:
            raise CommandError(f"no call {handle!r} on this media worker")
        return leg

    def _call(self, message: dict[str, Any]) -> PjsuaCall:
        call = self._leg(message).call
        assert call is not None  # _leg refuses calls that are over
        return call

    def adopt_incoming(self, pj_call_id: int, session: str | None) -> CallLeg:
        assert self.account is not None
        leg = CallLeg(self, self.account, self._take_handle(), "uas", session, pj_call_id)
        self.calls[leg.handle] = leg
        return leg

    # -- deferred work from callbacks -------------------------------------------------------

    def on_incoming_call(self, leg: CallLeg, details: dict[str, Any]) -> None:
        leg.remote_uri = details["remote_uri"]
        self.emit("call.incoming", **leg.tags(), **details)
        if self.auto_answer and leg.call is not None:
            op = pj.CallOpParam(True)
            op.statusCode = 200
            leg.call.answer(op)

    def on_call_state(self, leg: CallLeg, snapshot: dict[str, Any]) -> None:
        if leg.ended:
            return
        leg.state = snapshot["state"]
        leg.remote_uri = snapshot["remote_uri"] or leg.remote_uri
        self.emit("call.state", **leg.tags(), role=leg.role, state=leg.state,
                  code=snapshot["code"],
                  reason=explain_media_failure(snapshot["reason"], self._turn_server))
        if leg.ended:
            self.rtp_inactivity.forget(leg.handle)
            self._watch_recording(leg, leg.release_media())
            # Its pjsua2 Call went in the DISCONNECTED callback (call_leg.py); the leg now.
            self.calls.pop(leg.handle, None)

    def on_call_media(self, leg: CallLeg, snapshot: dict[str, Any]) -> None:
        if leg.ended:
            return
        leg.media = snapshot
        self.rtp_inactivity.media_changed(leg.handle, time.monotonic())
        leg.connect_media()
        self.emit("call.media", **leg.tags(), **leg.public_media())

    def on_call_dtmf(self, leg: CallLeg, digit: dict[str, Any]) -> None:
        self.emit("call.dtmf", **leg.tags(), **digit)

    def on_play_done(self, player: FilePlayer) -> None:
        leg = self.calls.get(player.call)
        if leg is not None and leg.player is player:
            leg.stop_play()
            self.emit("play.done", **leg.tags(), file=player.file)


def explain_media_failure(reason: str, turn_server: str | None) -> str:
    """pjsua's reason for a call whose media could not be set up, said so that a user knows
    what to check: with TURN, "Media init error: Unauthorized" means the TURN server
    refused the credentials (a timeout: it did not answer)."""
    prefix = "Media init error: "
    if turn_server is None or not reason.startswith(prefix):
        return reason
    detail = reason[len(prefix):]
    return (f"media setup failed: the TURN server {turn_server} did not give a relay "
            f"({detail}); check nat.turn.server, nat.turn.username and nat.turn.password")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def wav_is_complete(path: str) -> bool:
    """True once the writer has filled in the RIFF size (0 while the file is still open)."""
    try:
        with open(path, "rb") as wav:
            header = wav.read(8)
    except OSError:
        return False
    return len(header) == 8 and header[:4] == b"RIFF" and header[4:8] != b"\0\0\0\0"


def describe(exc: BaseException) -> str:
    if isinstance(exc, pj.Error):
        return f"{exc.title}: {exc.reason}" if exc.title else str(exc.reason)
    return f"{type(exc).__name__}: {exc}"


def text(message: dict[str, Any], key: str, default: str | None = None) -> str:
    value = message.get(key, default)
    if not isinstance(value, str) or not value:
        raise CommandError(f"{message.get('cmd')}: {key!r} must be a non-empty string")
    return value


def integer(message: dict[str, Any], key: str, default: int | None = None) -> int:
    value = message.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError(f"{message.get('cmd')}: {key!r} must be an integer")
    return value
