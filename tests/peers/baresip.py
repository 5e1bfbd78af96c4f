"""baresip 1.0 as an independent user agent, driven over its ctrl_tcp module.

    with Baresip(tmp_path, account="sip:bob@example.test", password="pw",
                 outbound=kam.proxy_uri("tcp"), contacts=["sip:alice@example.test"]) as bob:
        bob.wait_event("REGISTER_OK")
        bob.dial("sip:alice@example.test"); bob.wait_event("CALL_ESTABLISHED")
        bob.hangup()
        bob.send_message("sip:alice@example.test", "hi")   # to one of `contacts`
        peer, text = bob.wait_message()                       # a MESSAGE bob received
        bob.command("reginfo")                                # any baresip command

Each instance has its own config directory (config, accounts, contacts), SIP on
127.0.0.1:sip_port (UDP and TCP; baresip adds TLS on sip_port+1), RTP in a private port range,
audio from a WAV file (`audio_source`, a 440 Hz tone by default; the call ends when the file
does) and no audio device: the sndfile filter records what is sent and received as WAV files
in `record_dir` (dump-<time>-enc.wav, dump-<time>-dec.wav). DNS queries can only go to
`dns_server` on loopback (a dead port unless a test passes dnsmasq's).

ctrl_tcp speaks netstring-framed JSON: commands {"command", "params", "token"}, responses
{"response": true, "ok", "data", "token"}, events {"event": true, "class", "type", "param",
"accountaor", "direction", "peeruri", "id"}. It sends events only to a connected client, so the
account is created with `uanew` after we connect: REGISTERING/REGISTER_OK are never missed.

baresip 1.0 reports an incoming MESSAGE only through its UI (module menu prints
`<peer>: "<text>"`), not as a ctrl_tcp event: the stdio UI module prints it to stdout (it needs
stdin to be a pipe), and `messages()`/`wait_message()` read it from the log. Sending a MESSAGE
needs a *contact* (module contact): `send_message` selects the target among `contacts` first.
"""

from __future__ import annotations

import json
import math
import queue
import re
import signal
import socket
import struct
import threading
import time
import uuid
import wave
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from tests.harness.useragent import PEER_TIMEOUT, UserAgentPeer

from .ports import HOST, free_port, free_port_block
from .proc import Process, ProcessError, off_loop, require_binary, wait_until

MODULE_PATH = "/usr/lib/baresip/modules"
MESSAGE_LINE = re.compile(r'\r(sips?:\S+): "(.*)"\n')


def write_tone_wav(path: Path, *, seconds: float = 60.0, frequency: float = 440.0,
                   rate: int = 8000, amplitude: float = 0.3) -> Path:
    """A mono 16-bit WAV with a sine tone (silence when frequency is 0)."""
    frames = int(seconds * rate)
    step = 2 * math.pi * frequency / rate
    scale = amplitude * 32767
    one_second = struct.pack(f"<{rate}h", *(int(scale * math.sin(step * i)) for i in range(rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        # integral frequencies repeat every second: write the same second again and again
        if frequency == int(frequency):
            full, rest = divmod(frames, rate)
            for _ in range(full):
                w.writeframes(one_second)
            w.writeframes(one_second[: rest * 2])
        else:
            w.writeframes(struct.pack(f"<{frames}h",
                                      *(int(scale * math.sin(step * i)) for i in range(frames))))
    return path


class CtrlError(RuntimeError):
    pass


class Baresip(UserAgentPeer):
    NAME = "baresip"
    MESSAGE_LINE = MESSAGE_LINE

    def __init__(
        self,
        tmpdir: Path,
        account: str,
        password: str | None = None,
        *,
        outbound: str | None = None,
        register: bool = True,
        regint: int = 600,
        auth_user: str | None = None,
        display_name: str | None = None,
        answermode: str = "manual",
        audio_codecs: str = "pcmu,pcma",
        contacts: Sequence[str] = (),
        audio_source: Path | None = None,
        record: bool = True,
        ca_file: Path | None = None,
        certificate: Path | None = None,
        dns_server: tuple[str, int] | None = None,
        extra_account_params: str = "",
        start_timeout: float = 10.0,
        max_lifetime: float = 300,
    ) -> None:
        self.binary = require_binary("baresip")
        self.tmpdir = Path(tmpdir) / f"baresip-{uuid.uuid4().hex[:6]}"
        self.config_dir = self.tmpdir / "config"
        self.record_dir = self.tmpdir / "recordings"
        self.config_dir.mkdir(parents=True)
        self.record_dir.mkdir()
        self.account = account
        self.password = password
        self.outbound = outbound
        self.register = register
        self.regint = regint if register else 0
        self.auth_user = auth_user
        self.display_name = display_name
        self.answermode = answermode
        self.audio_codecs = audio_codecs
        self.contacts = list(contacts)
        self.record = record
        self.ca_file = ca_file
        self.certificate = certificate
        self.extra_account_params = extra_account_params
        self.start_timeout = start_timeout
        self.max_lifetime = max_lifetime
        # SIP on sip_port (UDP, TCP) and sip_port+1 (TLS): keep a block of 10 to space instances.
        self.sip_port = free_port_block(10)
        self.ctrl_port = free_port(udp=False)
        self.rtp_port_min = free_port_block(10, tcp=False)
        self.rtp_port_max = self.rtp_port_min + 9
        self.dns_server = dns_server or (HOST, free_port())  # nobody listens: lookups fail fast
        self.audio_source = Path(audio_source) if audio_source else write_tone_wav(
            self.tmpdir / "source.wav")
        self.log_path = self.tmpdir / "baresip.log"
        self.process: Process | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._events_cond = threading.Condition()
        self._consumed: set[int] = set()
        self._send_lock = threading.Lock()
        self._tokens = 0

    # -- configuration -----------------------------------------------------------------------

    def account_line(self) -> str:
        name = f'"{self.display_name}" ' if self.display_name else ""
        params = [f"answermode={self.answermode}", f"audio_codecs={self.audio_codecs}",
                  f"regint={self.regint}", "pubint=0", "mwi=no", "call_transfer=yes"]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.auth_user:
            params.append(f"auth_user={self.auth_user}")
        if self.outbound:
            params.append(f'outbound="{self.outbound}"')
        line = f"{name}<{self.account}>;" + ";".join(params)
        if self.extra_account_params:
            line += ";" + self.extra_account_params.lstrip(";")
        return line

    def _write_config(self) -> None:
        lines = [
            "# written by tests/peers/baresip.py",
            "poll_method epoll",
            f"sip_listen {HOST}:{self.sip_port}",
            f"net_interface {HOST}",
            f"dns_server {self.dns_server[0]}:{self.dns_server[1]}",
            "call_local_timeout 120",
            "call_max_calls 4",
            "audio_path /usr/share/baresip",
            f"audio_source aufile,{self.audio_source}",
            "audio_level no",
            "ausrc_format s16",
            "auplay_format s16",
            "auenc_format s16",
            "audec_format s16",
            "audio_buffer 20-160",
            f"rtp_ports {self.rtp_port_min}-{self.rtp_port_max}",
            "rtp_tos 0",
            "rtcp_mux no",
            "jitter_buffer_delay 1-10",
            "rtp_stats no",
            f"module_path {MODULE_PATH}",
            "module stdio.so",  # prints incoming MESSAGEs to stdout (see module docstring)
            "module g711.so",
            "module aufile.so",
        ]
        if self.record:
            lines += ["module sndfile.so", f"snd_path {self.record_dir}"]
        if self.ca_file:
            lines.append(f"sip_cafile {self.ca_file}")
        if self.certificate:
            lines.append(f"sip_certificate {self.certificate}")
        lines += [
            "module_tmp account.so",
            "module_app contact.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
            "menu_bell no",
            "ringback_disabled yes",
        ]
        (self.config_dir / "config").write_text("\n".join(lines) + "\n")
        # the account is added with `uanew` once ctrl_tcp is connected
        (self.config_dir / "accounts").write_text("# accounts are created over ctrl_tcp\n")
        (self.config_dir / "contacts").write_text(
            "".join(f'"{uri}" <{uri}>\n' for uri in self.contacts))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Baresip:
        self._write_config()
        argv = [self.binary, "-f", self.config_dir]
        # stdin is a pipe: the stdio UI module needs a pollable stdin to load
        self.process = Process(argv, name="baresip", log_path=self.log_path, stdin_pipe=True,
                               line_buffered=True, max_lifetime=self.max_lifetime,
                               cwd=self.tmpdir).start()
        try:
            self._connect()
            self.command("uanew", self.account_line())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return

        def quit_command() -> None:
            self._send({"command": "quit", "token": "quit"})

        # "quit" unregisters; a first SIGTERM does the same, a second one forces the exit
        self.process.stop(timeout=3, graceful=quit_command if self._sock else None,
                          signals=(signal.SIGTERM, signal.SIGTERM))
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(timeout=2)

    # -- ctrl_tcp ------------------------------------------------------------------------------

    def _connect(self) -> None:
        assert self.process is not None

        def try_connect() -> socket.socket | None:
            if not self.process.alive():
                raise ProcessError(f"baresip exited\n{self.process.log_tail()}")
            try:
                return socket.create_connection((HOST, self.ctrl_port), timeout=0.5)
            except OSError:
                return None

        self._sock = wait_until(try_connect, timeout=self.start_timeout,
                                what=f"baresip ctrl_tcp on {self.ctrl_port}",
                                on_timeout=self.process.log_tail)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="baresip-ctrl", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                length = int(buf[:colon])
                end = colon + 1 + length
                if len(buf) < end + 1:
                    break
                payload, buf = buf[colon + 1:end], buf[end + 1:]  # drop the trailing ","
                try:
                    message = json.loads(payload)
                except ValueError:
                    continue
                if message.get("response"):
                    self._responses.put(message)
                elif message.get("event"):
                    with self._events_cond:
                        self._events.append(message)
                        self._events_cond.notify_all()

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            raise CtrlError("not connected to baresip's ctrl_tcp")
        payload = json.dumps(message).encode()
        with self._send_lock:
            self._sock.sendall(str(len(payload)).encode() + b":" + payload + b",")

    def command(self, name: str, params: str | None = None, *, timeout: float = 5.0,
                check: bool = True) -> dict[str, Any]:
        """Run a baresip command; its response {"ok", "data", ...} (CtrlError when not ok)."""
        self._tokens += 1
        token = f"t{self._tokens}"
        message: dict[str, Any] = {"command": name, "token": token}
        if params is not None:
            message["params"] = params
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"baresip did not answer {name!r}\n"
                                   f"{self.process.log_tail() if self.process else ''}")
            try:
                response = self._responses.get(timeout=remaining)
            except queue.Empty:
                continue
            if response.get("token") != token:
                continue  # an answer to an earlier command that timed out
            if check and not response.get("ok"):
                raise CtrlError(f"baresip {name} {params or ''}: {response.get('data')}")
            return response

    def events(self) -> list[dict[str, Any]]:
        """Every ctrl_tcp event received so far, oldest first."""
        with self._events_cond:
            return list(self._events)

    def wait_event(self, type: str, timeout: float = 10.0, **fields: str) -> dict[str, Any]:
        """The oldest not yet waited-for event of `type` (and matching `fields`); waits for it.

        Fails at once on REGISTER_FAIL when waiting for REGISTER_OK.
        """
        deadline = time.monotonic() + timeout
        with self._events_cond:
            while True:
                for index, event in enumerate(self._events):
                    if index in self._consumed:
                        continue
                    if event.get("type") == type and all(
                            event.get(k) == v for k, v in fields.items()):
                        self._consumed.add(index)
                        return event
                    if type == "REGISTER_OK" and event.get("type") == "REGISTER_FAIL":
                        self._consumed.add(index)
                        raise CtrlError(f"registration failed: {event.get('param')}\n"
                                        f"{self.process.log_tail() if self.process else ''}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [e.get("type") for e in self._events]
                    raise TimeoutError(f"no {type} event from baresip within {timeout}s "
                                       f"(events: {seen})\n"
                                       f"{self.process.log_tail() if self.process else ''}")
                self._events_cond.wait(min(remaining, 0.2))

    # -- user agent actions --------------------------------------------------------------------

    def dial(self, uri: str) -> dict[str, Any]:
        return self.command("dial", uri)

    def answer(self) -> dict[str, Any]:
        return self.command("accept")

    def hangup(self) -> dict[str, Any]:
        return self.command("hangup")

    def transfer(self, uri: str) -> dict[str, Any]:
        """Blind-transfer the current call to `uri`: REFER with Refer-To: uri. baresip 1.0 has
        no attended transfer and ignores Replaces. A NOTIFY with a 2xx sipfrag closes the call
        (CALL_CLOSED "Call transfered", then BYE); a failure sipfrag gives TRANSFER_FAILED.
        Incoming REFERs are followed at once (TRANSFER event) since the account has
        call_transfer=yes."""
        return self.command("transfer", uri)

    def send_message(self, uri: str, text: str) -> None:
        """Send a SIP MESSAGE to `uri`, which must be one of `contacts`."""
        if uri not in self.contacts:
            raise ValueError(f"{uri} is not among this baresip's contacts {self.contacts}")
        # contact_prev stops at the first contact, contact_next moves on by one
        for _ in range(len(self.contacts)):
            self.command("contact_prev")
        for _ in range(self.contacts.index(uri)):
            self.command("contact_next")
        self.command("message", text)

    def ended_waiter(self, timeout: float = PEER_TIMEOUT) -> Callable[[], Awaitable[Any]]:
        return lambda: off_loop(self.wait_event, "CALL_CLOSED", timeout=timeout)

    def recordings(self) -> dict[str, list[Path]]:
        """WAV files the sndfile filter wrote: {"sent": [...], "received": [...]}."""
        return {"sent": sorted(self.record_dir.glob("dump-*-enc.wav")),
                "received": sorted(self.record_dir.glob("dump-*-dec.wav"))}
