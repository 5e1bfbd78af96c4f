"""The control protocol between the supervisor and a media worker (no I/O, no pjsua2).

JSON lines over a socket pair whose worker end is inherited as a file descriptor (stdout is
no protocol channel: pjlib prints there before it is initialised). Three message shapes:

    command  {"id": 7, "cmd": "hangup", "call": 2}            supervisor -> worker
    reply    {"id": 7, "ok": true, ...}                        worker -> supervisor
             {"id": 7, "ok": false, "error": "no call 2 ..."}
    event    {"event": "call.state", "call": 2, ...}           worker -> supervisor, unsolicited

After each command the supervisor sends DOORBELL to the worker's UDP SIP port, which wakes
the worker's pjsua poll at once (see worker.py).

Commands (fields besides "id"/"cmd"; "call" is the worker's call handle, an int):
    configure   media_address, rtp_port_start, rtp_port_count, codecs [names], srtp
                ("disabled"|"optional"|"mandatory"), ice (bool), stun_servers [host[:port]],
                turn ({server, username, password, transport "udp"|"tcp"} or null),
                auto_answer (bool), rtp_timeout (seconds without RTP from the remote party
                before call.rtp_timeout; 0 or absent: no watch)
                                               -> {codecs [enabled ids, best first], unknown_codecs}
    call        uri, session (opaque tag, sent in the X-Sipd-Session header), headers {name: value}
                                               -> {call}
    answer      call, code (default 200; 180/183 for early), reason
                (incoming calls are adopted at once and answered 200 by the worker when
                configure said auto_answer, else they wait for this command)
    hangup      call, code (0: what the call state calls for), reason
    hold        call                           (re-INVITE sendonly)
    unhold      call                           (re-INVITE sendrecv)
    dtmf        call, digits (0-9*#A-D), duration_ms (default 160)   (RFC 2833)
    play        call, file, loop (bool)        (16-bit mono PCM WAV, any rate)
    stop_play   call
    record      call, file                     (what the remote party sends, to WAV)
    stop_record call                           -> {file}; read it after its record.done
    web_audio   call, peer ("127.0.0.1:PORT")  -> {port}: the call's audio both ways as UDP
                datagrams with peer (16-bit mono PCM, 16 kHz, 20 ms: 640 bytes each; what the
                call hears goes to peer, what peer sends is played into the call through a
                small jitter buffer); the daemon relays them to a web page (sipd/web/audio.py)
    stop_web_audio call                        -> {stats {received, sent, dropped, missing}}
    status      (also the supervisor's heartbeat) -> {pid, sip, uri, configured, max_calls,
                                                   free_slots, calls [call summaries]}
                (a call summary: call, session, role, state, remote_uri, media, playing,
                recording, rtp {rx_packets, rx_bytes, tx_packets, tx_bytes} or null while
                the call has no live stream)
    shutdown                                   (replies, destroys the library, exits 0)

Events:
    ready          pid, sip {"tcp": "127.0.0.1:port", "udp": ...}, uri, version, max_calls
    call.incoming  call, session, remote_uri, local_uri
    call.state     call, session, role ("uac"|"uas"), state (CALL_STATES), code, reason
    call.media     call, session, active (bool), status (MEDIA_STATUSES), direction
                   (DIRECTIONS); with a live stream also codec ("PCMU/8000"), proto
                   ("RTP/AVP"|"RTP/SAVP"...), srtp (bool: SRTP really in use, also
                   SDES over RTP/AVP), remote_rtp ("addr:port")
    call.dtmf      call, session, digit, method ("rfc2833"|"sip_info")
    play.done      call, session, file         (end of a non-looping file)
    record.done    call, session, file, complete (bool): the WAV file is finished and
                   may be read (after stop_record, a new record, hangup or shutdown)
    call.rtp_timeout  call, session, seconds, reason ("no media from the remote party for
                   N s"): an active sendrecv/recvonly stream received no RTP for rtp_timeout
                   seconds (never on hold); once per silence. The worker keeps the call: the
                   session decides (inactivity.py)
    error          message (e.g. an unknown codec that configure ignored)
"""

from __future__ import annotations

import json
from typing import Any

# pjsua2's compile-time call limit (docs/design.md §2): UaConfig.maxCalls is ignored above it.
MAX_CALLS_PER_WORKER = 4

# The header that carries the opaque session tag on the internal SIP leg, both directions.
SESSION_HEADER = "X-Sipd-Session"

COMMANDS = frozenset({
    "configure", "call", "answer", "hangup", "hold", "unhold", "dtmf", "play", "stop_play",
    "record", "stop_record", "web_audio", "stop_web_audio", "status", "shutdown",
})
EVENTS = frozenset({
    "ready", "call.incoming", "call.state", "call.media", "call.dtmf", "play.done",
    "record.done", "call.rtp_timeout", "error",
})
CALL_STATES = ("null", "calling", "incoming", "early", "connecting", "confirmed", "disconnected")
MEDIA_STATUSES = ("none", "active", "local_hold", "remote_hold", "error")
DIRECTIONS = ("inactive", "sendonly", "recvonly", "sendrecv")
SRTP_MODES = ("disabled", "optional", "mandatory")

# Sent to the worker's UDP SIP port after each command: wakes its pjsua poll at once
# (pjsip takes a bare CRLF pair for a keep-alive and drops it without a word).
DOORBELL = b"\r\n\r\n"

# The worker prefixes each pjsua log entry on stderr with this, then its level and "] ".
LOG_PREFIX = "[pj:"

# A line longer than this is a broken peer, not a message.
MAX_LINE_BYTES = 1 << 20


class ProtocolError(Exception):
    """The peer sent something that is not a control message."""


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line of compact JSON."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def command(request_id: int, name: str, **fields: Any) -> dict[str, Any]:
    if name not in COMMANDS:
        raise ValueError(f"unknown media worker command {name!r}; known: {sorted(COMMANDS)}")
    return {"id": request_id, "cmd": name, **fields}


def reply_ok(request_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, **fields}


def reply_error(request_id: int | None, error: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": error}


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, **fields}


def is_event(message: dict[str, Any]) -> bool:
    return "event" in message


def is_reply(message: dict[str, Any]) -> bool:
    return "ok" in message and "id" in message


class LineDecoder:
    """Splits a byte stream into decoded messages; keeps a partial last line for later.

    A line that is not a JSON object is skipped and its error kept in `errors` (one bad
    line must not lose the lines after it); a line over MAX_LINE_BYTES raises.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.errors: list[ProtocolError] = []

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            if line.strip():
                try:
                    messages.append(decode_line(line))
                except ProtocolError as exc:
                    self.errors.append(exc)
        if len(self._buffer) > MAX_LINE_BYTES:
            raise ProtocolError(f"control line longer than {MAX_LINE_BYTES} bytes")
        return messages


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"control line is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("control line is not a JSON object")
    return message


def header_value(sip_message: str, name: str) -> str | None:
    """The value of the first header `name` in a raw SIP message (None if absent).

    The worker reads the session tag of an incoming INVITE with it (pjsua2 hands the
    request over only as text).
    """
    wanted = name.lower()
    head = sip_message.replace("\r\n", "\n").split("\n\n", 1)[0]
    for line in head.split("\n")[1:]:
        field, sep, value = line.partition(":")
        if sep and field.strip().lower() == wanted:
            return value.strip()
    return None
