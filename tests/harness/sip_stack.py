"""In-process SIP stacks on loopback for the transport and stack tests: fast timers, TLS from
a test CA, a Target without the locator, requests built in one call."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from sipd.sip.builder import build_request
from sipd.sip.header_values import parse_address
from sipd.sip.message import Request
from sipd.sip.timers import TimerSettings
from sipd.sip.trio.stack import IncomingRequest, SipStack, StackConfig, open_sip_stack
from sipd.sip.trio.tls import TlsConfig
from sipd.sip.uri import parse_uri
from tests.peers.certs import TestCA

LOOPBACK = "127.0.0.1"
# Fast timers so that a lost message costs little; 64*T1 = 3.2 s bounds a failing transaction.
FAST = TimerSettings(t1=0.05, t2=0.4, t4=0.5)


@dataclass(frozen=True)
class Target:
    """What sipd.sip.trio.locator.Target carries (the tests do not depend on the locator)."""

    transport: str
    host: str
    address: str
    port: int


def target_of(stack: SipStack, transport: str, host: str = LOOPBACK) -> Target:
    return Target(transport, host, LOOPBACK, stack.ports[transport])


def config(**kwargs) -> StackConfig:
    kwargs.setdefault("listen_address", LOOPBACK)
    kwargs.setdefault("timers", FAST)
    return StackConfig(**kwargs)


def message_request(to_user: str = "bob", host: str = LOOPBACK, port: int | None = None,
                    text: str = "hello", transport: str | None = None,
                    method: str = "MESSAGE") -> Request:
    uri = f"sip:{to_user}@{host}" + (f":{port}" if port else "")
    if transport:
        uri += f";transport={transport}"
    body = text.encode() if method == "MESSAGE" else b""
    return build_request(method, parse_uri(uri), from_=parse_address("<sip:alice@example.test>"),
                         to=parse_address(f"<sip:{to_user}@example.test>"), body=body,
                         content_type="text/plain" if body else None)


class Recorder:
    """A request handler that answers 200 (or `status`) and keeps what it saw."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.seen: list[IncomingRequest] = []
        self.arrived = trio.Event()

    async def __call__(self, incoming: IncomingRequest) -> None:
        self.seen.append(incoming)
        self.arrived.set()
        if incoming.transaction is not None and self.status:
            await incoming.respond(self.status)


def make_tls(directory: Path, names=("b.example.test",)) -> tuple[TestCA, TlsConfig, TlsConfig]:
    """A CA, the server TlsConfig of a stack with a certificate for `names` and 127.0.0.1,
    and a client TlsConfig trusting the CA."""
    ca = TestCA(directory)
    files = ca.issue("stack", list(names), ["127.0.0.1"])
    server = TlsConfig(ca_file=ca.ca_cert_path, cert_file=files.cert_path,
                       key_file=files.key_path)
    client = TlsConfig(ca_file=ca.ca_cert_path)
    return ca, server, client


@asynccontextmanager
async def two_stacks(server_kwargs=None, client_kwargs=None
                     ) -> AsyncIterator[tuple[SipStack, SipStack, Recorder]]:
    """(a, b, recorder): `a` sends, `b` answers through `recorder`."""
    recorder = Recorder()
    async with open_sip_stack(config(**(client_kwargs or {}))) as a, \
            open_sip_stack(config(**(server_kwargs or {}))) as b:
        b.set_request_handler(recorder)
        yield a, b, recorder


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    return sock


async def recv_datagram(sock: trio.socket.SocketType, timeout: float = 5.0) -> bytes:
    with trio.fail_after(timeout):
        data, _ = await sock.recvfrom(70000)
    return data


__all__ = ["FAST", "LOOPBACK", "Recorder", "Target", "config", "make_tls", "message_request",
           "recv_datagram", "target_of", "two_stacks", "udp_socket"]
