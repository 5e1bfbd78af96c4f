"""linphonec (linphone-cli) as an independent user agent, driven through its stdin.

    with Linphonec(tmp_path, account="sip:carol@example.test", password="pw",
                   proxy=kam.proxy_uri("udp")) as carol:
        carol.wait_registered()
        carol.call("sip:bob@example.test"); carol.wait_call("connected")
        carol.hangup()
        carol.send_chat("sip:bob@example.test", "hi")
        peer, text = carol.wait_message()
        carol.command("status register")        # any linphonec command; returns a log offset
        carol.pause(1); carol.transfer_to_call(1, 2)  # attended transfer (blind: transfer(uri))

Why stdin and not linphonecsh: linphonecsh talks to one unix socket per uid (/tmp/linphonec-UID),
so two instances at once would collide. linphonec reads commands with readline from the pipe
and prints its events (calls, messages) to stdout, which goes to the log this driver reads.

Each instance gets its own HOME (history, ZRTP cache, linphone.db) and rc file: SIP bound to
127.0.0.1:sip_port (UDP and TCP, no TLS), RTP on 127.0.0.1 in a private range,
auto_net_state_mon=0 (with it, linphonec waits for a network monitor and opens no socket;
without it the network counts as up), no SRV lookups, wav files instead of a sound card
(`soundcard use files`, playing `audio_source`, recording to `record_path`).
linphonec ignores SIGTERM: stop() sends `quit`, then kills it.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.harness.useragent import PEER_TIMEOUT, UserAgentPeer

from .baresip import write_tone_wav
from .ports import HOST, free_port_block
from .proc import Process, off_loop, require_binary, wait_until

MESSAGE_LINE = re.compile(r"Message received from (.+?): (.*)\n")
#: What linphonec prints for each call event; every pattern names the call's `id` and `uri`.
CALL_PATTERNS = {
    "incoming": r"Receiving new incoming call from (?P<uri>\S+), assigned id (?P<id>\d+)",
    "outgoing": r"Establishing call id to (?P<uri>\S+), assigned id (?P<id>\d+)",
    "ringing": r"Call (?P<id>\d+) to (?P<uri>\S+) ringing\.",
    "connected": r"Call (?P<id>\d+) with (?P<uri>\S+) connected\.",
    "streams": r"Media streams established with (?P<uri>\S+) for call (?P<id>\d+)",
    "ended": r"Call (?P<id>\d+) with (?P<uri>\S+) ended \(([^)]*)\)\.",
    "error": r"Call (?P<id>\d+) with (?P<uri>\S+) error\.",
    "paused": r"Call (?P<id>\d+) with (?P<uri>\S+) is now paused\.",
    # the transferee's new call connected (NOTIFY 200 came): the transferor may hang up now
    "transferred": r"The distant endpoint (?P<uri>\S+) of call (?P<id>\d+) has been transfered",
}


class Linphonec(UserAgentPeer):
    NAME = "linphonec"
    MESSAGE_LINE = MESSAGE_LINE

    def __init__(
        self,
        tmpdir: Path,
        account: str,
        password: str | None = None,
        *,
        proxy: str | None = None,
        register: bool = True,
        display_name: str | None = None,
        auth_user: str | None = None,
        realm: str | None = None,
        audio_source: Path | None = None,
        start_timeout: float = 10.0,
        max_lifetime: float = 300,
    ) -> None:
        self.binary = require_binary("linphonec")
        self.tmpdir = Path(tmpdir) / f"linphonec-{uuid.uuid4().hex[:6]}"
        self.home = self.tmpdir / "home"
        (self.home / ".local" / "share" / "linphone").mkdir(parents=True)  # linphone.db lives here
        self.account = account
        self.password = password
        self.proxy = proxy
        self.register = register and proxy is not None
        self.display_name = display_name
        match = re.match(r"sips?:([^@]+)@([^;>]+)", account)
        if not match:
            raise ValueError(f"account must be a SIP URI with a user part: {account}")
        self.user, self.domain = match.group(1), match.group(2)
        self.auth_user = auth_user or self.user
        self.realm = realm or self.domain
        self.sip_port = free_port_block(10)
        self.rtp_port_min = free_port_block(30, tcp=False)
        self.audio_source = Path(audio_source) if audio_source else write_tone_wav(
            self.tmpdir / "source.wav")
        self.record_path = self.tmpdir / "received.wav"
        self.rc_path = self.home / "linphonerc"
        self.log_path = self.tmpdir / "linphonec.log"
        self.start_timeout = start_timeout
        self.max_lifetime = max_lifetime
        self.process: Process | None = None

    # -- configuration -----------------------------------------------------------------------

    def _rc_text(self) -> str:
        rtp = self.rtp_port_min
        sections = {
            "sip": {
                "sip_port": self.sip_port, "sip_tcp_port": self.sip_port,
                "sip_tls_port": -2,  # LC_SIP_TRANSPORT_DONTBIND
                "bind_address": HOST, "use_ipv6": 0, "ipv6_migration_done": 1,
                "auto_net_state_mon": 0, "register_only_when_network_is_up": 0,
                "guess_hostname": 1, "default_proxy": 0 if self.register else -1,
                "inc_timeout": 60,
            },
            "net": {"firewall_policy": 0, "dns_srv_enabled": 0, "dns_search_enabled": 0,
                    "stun_server": ""},
            "rtp": {"bind_address": HOST, "audio_rtp_port": f"{rtp}-{rtp + 9}",
                    "video_rtp_port": f"{rtp + 10}-{rtp + 19}",
                    "text_rtp_port": f"{rtp + 20}-{rtp + 29}"},
            "sound": {"echocancellation": 0},
            "video": {"capture": 0, "display": 0, "show_local": 0},
            "misc": {"prefer_basic_chat_room": 1, "config-uri": "",
                     "version_check_url_root": ""},
        }
        if self.register:
            identity = (f'"{self.display_name}" <{self.account}>' if self.display_name
                        else f"<{self.account}>")
            sections["proxy_0"] = {
                "reg_proxy": f"<{self.proxy}>",
                "reg_route": f"<{self.proxy};lr>",
                "reg_identity": identity,
                "reg_expires": 600, "reg_sendregister": 1, "publish": 0, "dial_escape_plus": 0,
            }
        if self.password is not None:
            sections["auth_info_0"] = {"username": self.auth_user, "passwd": self.password,
                                       "realm": self.realm, "domain": self.domain}
        out = ["# written by tests/peers/linphonec.py"]
        for name, values in sections.items():
            out.append(f"[{name}]")
            out += [f"{key}={value}" for key, value in values.items()]
            out.append("")
        return "\n".join(out)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Linphonec:
        self.rc_path.write_text(self._rc_text())
        env = dict(os.environ, HOME=str(self.home),
                   XDG_DATA_HOME=str(self.home / ".local" / "share"),
                   XDG_CONFIG_HOME=str(self.home / ".config"))
        argv = [self.binary, "-c", self.rc_path, "-d", "6", "-l", self.tmpdir / "liblinphone.log"]
        self.process = Process(argv, name="linphonec", log_path=self.log_path, stdin_pipe=True,
                               env=env, cwd=self.home, max_lifetime=self.max_lifetime).start()
        try:
            self.process.wait_for_output(r"linphonec> ", timeout=self.start_timeout)
            offset = self.command("soundcard use files")
            self.process.wait_for_output(r"Using wav files instead of soundcard", since=offset,
                                         timeout=self.start_timeout)
            self.command(f"play {self.audio_source}")
            self.command(f"record {self.record_path}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return

        def quit_command() -> None:
            self.process.write("quit\n")

        # SIGTERM is ignored (or hangs in its handler); the second signal is SIGKILL anyway
        self.process.stop(timeout=3, graceful=quit_command, signals=(signal.SIGKILL,))

    # -- commands ------------------------------------------------------------------------------

    def command(self, line: str) -> int:
        """Write one command line; returns the log offset before it, for `wait_output(since=)`."""
        assert self.process is not None
        if "\n" in line:
            raise ValueError("one command per line")
        offset = self.process.log_size()
        self.process.write(line + "\n")
        return offset

    def wait_output(self, pattern: str, *, timeout: float = 10.0, since: int = 0) -> re.Match[str]:
        assert self.process is not None
        return self.process.wait_for_output(pattern, timeout=timeout, since=since)

    def is_registered(self) -> bool:
        offset = self.command("status register")
        match = self.wait_output(r"registered(=-1|, identity=.*|=0)\n", since=offset, timeout=5)
        return match.group(1).startswith(", identity=")

    def wait_registered(self, timeout: float = 10.0) -> None:
        assert self.process is not None
        wait_until(self.is_registered, timeout=timeout, interval=0.2,
                   what=f"linphonec {self.account} to register", on_timeout=self.process.log_tail)

    def call(self, uri: str) -> int:
        return self.command(f"call {uri}")

    def answer(self) -> int:
        return self.command("answer")

    def hangup(self) -> int:
        return self.command("terminate")

    def wait_call(self, state: str, *, timeout: float = 10.0, since: int = 0,
                  call_id: int | None = None) -> re.Match[str]:
        """Wait for a call event (a key of CALL_PATTERNS), of call `call_id` if given.

        The match names the call's linphonec id (`match["id"]`) and remote URI (`match["uri"]`).
        """
        pattern = CALL_PATTERNS[state]
        if call_id is not None:
            pattern = pattern.replace(r"(?P<id>\d+)", f"(?P<id>{int(call_id)})")
        return self.wait_output(pattern, timeout=timeout, since=since)

    # -- several calls and transfer ------------------------------------------------------------
    #
    # linphonec places or answers a second call only while the first is paused (else it says
    # "Terminate or hold on the current call first"). A REFER received in a call is accepted and
    # followed at once: linphone pauses that call and calls the Refer-To target, turning the
    # target URI's embedded headers (?Replaces=...) into headers of the new INVITE. An INVITE
    # with Replaces naming an established call is answered at once, and the replaced call ends.

    def pause(self, call_id: int) -> int:
        """Put call `call_id` on hold (re-INVITE a=sendonly); wait_call("paused") follows."""
        return self.command(f"pause {int(call_id)}")

    def transfer(self, uri: str, call_id: int | None = None) -> int:
        """Blind transfer: REFER the remote party of `call_id` (else the current call) to `uri`."""
        return self.command(f"transfer {uri}" if call_id is None
                            else f"transfer {int(call_id)} {uri}")

    def transfer_to_call(self, call_id: int, other_call_id: int) -> int:
        """Attended transfer: REFER the remote party of `call_id` to the remote party of
        `other_call_id`, with Refer-To carrying ?Replaces= naming that other call's dialog."""
        return self.command(f"transfer {int(call_id)} --to-call {int(other_call_id)}")

    def send_chat(self, uri: str, text: str) -> int:
        """Send `text` to `uri` as a SIP MESSAGE (a basic chat room)."""
        return self.command(f"chat {uri} {text}")

    def ended_waiter(self, timeout: float = PEER_TIMEOUT) -> Callable[[], Awaitable[Any]]:
        offset = self.process.log_size()
        return lambda: off_loop(self.wait_call, "ended", since=offset, timeout=timeout)
