"""A tiny, synchronous SIP-over-UDP driver for the presence machines, so tests can put them in
front of a real presence server before the user agent's trio driver exists: it sends what the
machines ask for (to one server), answers digest challenges, feeds responses and NOTIFYs back
with the clock, and records the events. Loopback only; no retransmissions (loopback does not
lose datagrams); bounded by a timeout everywhere."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from sipd.presence.actions import ClaimDialog, DialogKey, ReleaseDialog, SendRequest, SendResponse
from sipd.sip.auth import Credentials, CredentialStore, DigestAuthenticator
from sipd.sip.builder import new_branch
from sipd.sip.header_values import Address
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.uri import SipUri

HOST = "127.0.0.1"


class UdpClient:
    """One user at a server: `contact` is where its NOTIFYs come."""

    def __init__(self, user: str, password: str, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.contact = Address(SipUri(HOST, user=user, port=self.port))
        self.auth = DigestAuthenticator(CredentialStore([Credentials(user, password)]))
        self.events: list[Any] = []
        self.responses: list[Response] = []
        self.requests: list[Request] = []
        self._pending: dict[str, tuple[Any, str, Request]] = {}  # branch -> machine, key, req
        self._dialogs: dict[DialogKey, Any] = {}
        self._machines: list[Any] = []  # every machine seen, for its timers

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def carry_out(self, machine: Any, actions: list[Any]) -> None:
        if machine is not None and all(m is not machine for m in self._machines):
            self._machines.append(machine)
        for action in actions:
            if isinstance(action, SendRequest):
                self._send(machine, action.key, action.request)
            elif isinstance(action, SendResponse):
                request, address = action.ref
                response = action.build(request)
                self.sock.sendto(response.to_bytes(), address)
            elif isinstance(action, ClaimDialog):
                self._dialogs[action.key] = machine
            elif isinstance(action, ReleaseDialog):
                self._dialogs.pop(action.key, None)
            else:
                self.events.append(action)

    def _send(self, machine: Any, key: str, request: Request) -> None:
        request = request.copy()
        branch = new_branch()
        request.headers.remove("Via")
        request.headers.add_first("Via", f"SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport")
        self._pending[branch] = (machine, key, request)
        self.sock.sendto(request.to_bytes(), self.server)

    def pump(self, until: Callable[[], bool], timeout: float = 5.0,
             what: str = "the condition") -> None:
        """Receives and dispatches until `until()` holds; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while not until():
            for machine in list(self._machines):
                self.tick(machine)
            if until():
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events}")
            self.sock.settimeout(min(left, 0.2))
            try:
                data, address = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self._dispatch(parse_datagram(data), address)

    def _dispatch(self, message: Request | Response, address: tuple[str, int]) -> None:
        now = time.monotonic()
        if isinstance(message, Response):
            self.responses.append(message)
            via = message.top_via
            branch = via.branch if via is not None else None
            if branch not in self._pending or message.is_provisional:
                return
            machine, key, request = self._pending.pop(branch)
            if message.status in (401, 407):
                result = self.auth.authenticate(request, message)
                if result.request is not None:
                    retry = result.request
                    retry.headers.remove("Via")
                    self.carry_out(machine, machine.resend(key, retry, now))
                    return
            self.carry_out(machine, machine.response(key, message, now))
            return
        self.requests.append(message)
        to = message.to
        key = DialogKey(message.call_id or "", to.tag if to is not None and to.tag else "")
        machine = self._dialogs.get(key)
        if machine is None or message.method != "NOTIFY":
            answer = SendResponse((message, address), 481, "Call/Transaction Does Not Exist")
            self.carry_out(None, [answer])
            return
        self.carry_out(machine, machine.notify(message, now, (message, address)))

    def tick(self, machine: Any) -> None:
        """Runs the machine's timers that are due."""
        deadline = machine.next_deadline()
        if deadline is not None and deadline <= time.monotonic():
            self.carry_out(machine, machine.timer(time.monotonic()))

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]
