"""A scripted registrar for the registration tests: it answers REGISTER requests with the
bytes a real registrar would send (parsed back with sipd.sip's own parser), and checks digest
credentials with its own hashlib computation (not sipd.sip.auth's)."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

from sipd.accounts.registration import Registration, SendRegister, StateChanged
from sipd.sip.auth import parse_challenge
from sipd.sip.builder import new_via
from sipd.sip.message import Request, Response, parse_datagram


def wire(text: str) -> bytes:
    """A message written with \\n line ends, as wire bytes."""
    return (text.strip("\n").replace("\n", "\r\n") + "\r\n\r\n").encode()


def as_sent(request: Request) -> Request:
    """What the transport layer does before sending: add its top Via."""
    sent = request.copy()
    sent.headers.add_first("Via", str(new_via("UDP", "192.0.2.10", 5070)))
    return sent


def reply(request: Request, status: int, reason: str, *lines: str) -> Response:
    """The registrar's answer to `request`, as parsed from the bytes it would send."""
    via = request.headers.values("Via")[0] if "Via" in request.headers else \
        "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKnone"
    text = "\n".join([
        f"SIP/2.0 {status} {reason}",
        f"Via: {via};received=192.0.2.10",
        f"From: {request.headers.get('From')}",
        f"To: {request.headers.get('To')};tag=registrar1",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.cseq}",
        "Server: test-registrar",
        *lines,
        "Content-Length: 0",
    ])
    response = parse_datagram(wire(text))
    assert isinstance(response, Response)
    return response


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def expected_digest(params: dict[str, str], password: str, method: str = "REGISTER") -> str:
    """RFC 2617 MD5 digest with qop=auth, computed here independently."""
    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    if "qop" in params:
        return md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:"
                   f"{params['qop']}:{ha2}")
    return md5(f"{ha1}:{params['nonce']}:{ha2}")


@dataclass
class FakeRegistrar:
    """Digest-protected registrar: a fresh nonce per challenge, bindings by Contact URI."""
    users: dict[str, str]                      # username -> password
    realm: str = "example.test"
    min_expires: int = 60
    nonces: itertools.count = field(default_factory=lambda: itertools.count(1))
    issued: set[str] = field(default_factory=set)
    bindings: dict[str, int] = field(default_factory=dict)
    received: list[Request] = field(default_factory=list)

    def challenge(self, request: Request, stale: bool = False) -> Response:
        nonce = f"nonce{next(self.nonces)}"
        self.issued.add(nonce)
        extra = ", stale=true" if stale else ""
        return reply(request, 401, "Unauthorized",
                     f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{nonce}", '
                     f'qop="auth", algorithm=MD5{extra}')

    def handle(self, request: Request) -> Response:
        self.received.append(request)
        value = request.headers.get("Authorization")
        if value is None:
            return self.challenge(request)
        params = parse_challenge(value, what="Authorization").params
        password = self.users.get(params.get("username", ""))
        if params.get("nonce") not in self.issued or password is None or \
                params.get("response") != expected_digest(params, password):
            return self.challenge(request)
        expires = request.expires if request.expires is not None else 3600
        if 0 < expires < self.min_expires:
            return reply(request, 423, "Interval Too Brief", f"Min-Expires: {self.min_expires}")
        for contact in request.contacts:
            lifetime = contact.expires if contact.expires is not None else expires
            if lifetime == 0:
                self.bindings.pop(str(contact.uri), None)
            else:
                self.bindings[str(contact.uri)] = lifetime
        lines = [f"Contact: <{uri}>;expires={lifetime}" for uri, lifetime in self.bindings.items()]
        return reply(request, 200, "OK", *lines)


@dataclass
class Driver:
    """Runs a Registration against a registrar function on a fake clock."""
    registration: Registration
    answer: object  # callable(request, target_index) -> Response | None (None: timeout)
    now: float = 0.0
    sent: list[SendRegister] = field(default_factory=list)
    events: list[StateChanged] = field(default_factory=list)

    def feed(self, actions: list) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, StateChanged):
                self.events.append(action)
                continue
            self.sent.append(action)
            request = as_sent(action.request)
            response = self.answer(request, action.target_index)
            if response is None:
                queue += self.registration.timed_out(self.now, request)
            else:
                queue += self.registration.response_received(response, self.now)

    def start(self) -> None:
        self.feed(self.registration.start(self.now))

    def run_until(self, end: float) -> None:
        """Jump from deadline to deadline until `end`."""
        while True:
            deadline = self.registration.next_deadline()
            if deadline is None or deadline > end:
                self.now = end
                return
            self.now = max(self.now, deadline)
            self.feed(self.registration.timer(self.now))

    def states(self) -> list[str]:
        return [event.state.value for event in self.events]
