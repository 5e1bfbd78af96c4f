"""coturn's turnserver as the STUN/TURN server for ICE tests.

    with Coturn(tmp_path, users={"turnuser": "turnpass"}) as turn:
        turn.port, turn.realm, turn.stun_uri(), turn.turn_uri()
        stun_binding(("127.0.0.1", turn.port))   # -> ("127.0.0.1", my_port)

Listens on 127.0.0.1 (UDP and TCP), relays on 127.0.0.1 only (loopback peers allowed, since
every test peer is on loopback), long-term credentials for static users, no CLI, no TLS/DTLS,
no database of the system (a private SQLite file), no RFC 5780 second port.
"""

from __future__ import annotations

import os
import socket
import struct
import uuid
from pathlib import Path

from .ports import HOST, free_port, free_port_block
from .proc import Process, require_binary, wait_until

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
XOR_MAPPED_ADDRESS = 0x0020
MAPPED_ADDRESS = 0x0001


class Coturn:
    def __init__(self, tmpdir: Path, users: dict[str, str] | None = None, *,
                 realm: str = "example.test", relay_ports: int = 20,
                 start_timeout: float = 5.0, max_lifetime: float = 600) -> None:
        self.binary = require_binary("turnserver")
        self.tmpdir = Path(tmpdir) / f"coturn-{uuid.uuid4().hex[:6]}"
        self.tmpdir.mkdir(parents=True)
        self.users = dict(users if users is not None else {"turnuser": "turnpass"})
        self.realm = realm
        self.port = free_port()
        self.min_relay_port = free_port_block(relay_ports, tcp=False)
        self.max_relay_port = self.min_relay_port + relay_ports - 1
        self.start_timeout = start_timeout
        self.max_lifetime = max_lifetime
        self.process: Process | None = None

    def stun_uri(self) -> str:
        return f"stun:{HOST}:{self.port}"

    def turn_uri(self, transport: str = "udp") -> str:
        return f"turn:{HOST}:{self.port}?transport={transport}"

    def argv(self) -> list[str]:
        args = [
            self.binary, "-n",  # no configuration file
            f"--listening-ip={HOST}", f"--relay-ip={HOST}", f"--listening-port={self.port}",
            f"--min-port={self.min_relay_port}", f"--max-port={self.max_relay_port}",
            "--allow-loopback-peers", "--no-multicast-peers",
            "--no-cli", "--no-tls", "--no-dtls", "--no-rfc5780",
            "--lt-cred-mech", f"--realm={self.realm}", "--fingerprint",
            f"--userdb={self.tmpdir / 'turndb.sqlite'}",
            f"--pidfile={self.tmpdir / 'turnserver.pid'}",
            "--log-file=stdout", "--simple-log", "--verbose",
        ]
        args += [f"--user={name}:{password}" for name, password in self.users.items()]
        return args

    def start(self) -> Coturn:
        env = dict(os.environ)
        env.pop("TURN_CONF", None)
        self.process = Process(self.argv(), name="turnserver",
                               log_path=self.tmpdir / "turnserver.log",
                               max_lifetime=self.max_lifetime, env=env).start()
        try:
            wait_until(lambda: self._alive_and(stun_binding((HOST, self.port), timeout=0.3)),
                       timeout=self.start_timeout, what=f"turnserver to answer STUN on {self.port}",
                       on_timeout=self.process.log_tail, interval=0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def _alive_and(self, value: object) -> object:
        assert self.process is not None
        if not self.process.alive():
            raise RuntimeError(f"turnserver exited\n{self.process.log_tail()}")
        return value

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=3)

    def __enter__(self) -> Coturn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""


def stun_binding(server: tuple[str, int], *, timeout: float = 1.0) -> tuple[str, int] | None:
    """Send one STUN Binding request over UDP; the mapped (address, port), or None."""
    transaction = os.urandom(12)
    request = struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        try:
            sock.sendto(request, server)
            data = sock.recv(2048)
        except OSError:
            return None
    if len(data) < 20:
        return None
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if kind != BINDING_SUCCESS or cookie != MAGIC_COOKIE or data[8:20] != transaction:
        return None
    offset, end = 20, 20 + length
    while offset + 4 <= end:
        attr, size = struct.unpack("!HH", data[offset:offset + 4])
        value = data[offset + 4:offset + 4 + size]
        if attr in (XOR_MAPPED_ADDRESS, MAPPED_ADDRESS) and len(value) >= 8 and value[1] == 1:
            port = struct.unpack("!H", value[2:4])[0]
            address = struct.unpack("!I", value[4:8])[0]
            if attr == XOR_MAPPED_ADDRESS:
                port ^= MAGIC_COOKIE >> 16
                address ^= MAGIC_COOKIE
            return socket.inet_ntoa(struct.pack("!I", address)), port
        offset += 4 + size + (-size % 4)
    return None
