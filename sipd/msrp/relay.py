"""RFC 4976 relay client, sans-I/O: the AUTH exchange that reserves a path through a relay.

    client = RelayAuthClient(relay_uri, local_uri, Credentials("alice", "secret"))
    write(client.start(now))                         # AUTH, no credentials yet
    for response in responses_from_the_relay:        # 401 -> AUTH with digest, 423 -> Expires
        write(client.handle_response(response, now))
    for event in client.events(): ...                # RelayGranted(use_path, expires, refresh_at)
    write(client.refresh(now))                       # at RelayGranted.refresh_at

The digest is HTTP digest (RFC 2617/7616, qop=auth preferred) with method AUTH and the relay's
URI (the AUTH's To-Path) as digest-uri, computed by the SIP core's digest code. The grant lasts
`Expires` seconds (the relay's word; ours if it gave none); the client asks to refresh at three
quarters of it. Each AUTH is a transaction with the 30 s timeout of RFC 4975.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..sip.auth import ALGORITHM_STRENGTH, Challenge, Credentials, digest_response
from ..sip.syntax import quote
from . import headers as h
from .errors import MsrpParseError
from .message import MsrpResponse, make_request
from .uri import MsrpUri

AUTH_TIMEOUT = 30.0
DEFAULT_EXPIRES = 600


@dataclass
class RelayGranted:
    """The relay reserved `use_path` (its URIs to put before ours in a=path) for `expires`
    seconds; refresh at `refresh_at`."""

    relay: MsrpUri
    use_path: list[MsrpUri]
    expires: int
    refresh_at: float


@dataclass
class RelayRefused:
    """AUTH failed: `code` is the relay's final response (None: no answer in time)."""

    relay: MsrpUri
    code: int | None
    reason: str


RelayEvent = RelayGranted | RelayRefused


class RelayAuthClient:
    def __init__(self, relay: MsrpUri, local_uri: MsrpUri, credentials: Credentials | None, *,
                 expires: int | None = None, timeout: float = AUTH_TIMEOUT,
                 cnonce_factory: Callable[[], str] = lambda: secrets.token_hex(8)) -> None:
        self.relay = relay
        self.local_uri = local_uri
        self.credentials = credentials
        self.expires = expires  # asked for; None: the relay's choice
        self.timeout = timeout
        self._new_cnonce = cnonce_factory
        self._challenge: Challenge | None = None
        self._nonce_count = 0
        self._answered_challenge = False
        self._pending: str | None = None  # transaction-id of the AUTH in flight
        self._deadline: float | None = None
        self._events: deque[RelayEvent] = deque()
        self.granted: RelayGranted | None = None

    # -- input -----------------------------------------------------------------------------

    def owns(self, transaction_id: str) -> bool:
        return transaction_id == self._pending

    def start(self, now: float) -> bytes:
        """The first AUTH (no credentials: the relay challenges)."""
        self._answered_challenge = False
        return self._auth(now)

    def refresh(self, now: float) -> bytes:
        """A new AUTH before the grant runs out, answering the last challenge again."""
        self._answered_challenge = False
        return self._auth(now)

    def handle_response(self, response: MsrpResponse, now: float) -> bytes:
        """Takes the relay's response to our AUTH; returns the next AUTH to send, if any."""
        if not self.owns(response.transaction_id):
            return b""
        self._pending = None
        self._deadline = None
        try:
            if response.code == 401:
                return self._challenged(response, now)
            if response.code == 423:
                return self._interval(response, now)
            if response.code == 200:
                self._grant(response, now)
                return b""
        except MsrpParseError as exc:
            self._refuse(response.code, f"unusable {response.code} from the relay: {exc.detail}")
            return b""
        self._refuse(response.code, f"AUTH refused: {response.code} {response.comment}".rstrip())
        return b""

    def events(self) -> Iterator[RelayEvent]:
        while self._events:
            yield self._events.popleft()

    # -- time ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timers(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            self._pending = None
            self._deadline = None
            self._refuse(None, f"no answer to AUTH within {self.timeout:g} s")

    # -- internals -------------------------------------------------------------------------

    def _auth(self, now: float) -> bytes:
        request = make_request("AUTH", [self.relay], [self.local_uri])
        if self.expires is not None:
            request.headers.add(h.EXPIRES, str(self.expires))
        if self._challenge is not None and self.credentials is not None:
            request.headers.add(h.AUTHORIZATION, self._authorization(self._challenge))
        self._pending = request.transaction_id
        self._deadline = now + self.timeout
        return request.serialize()

    def _challenged(self, response: MsrpResponse, now: float) -> bytes:
        challenges = [c for c in response.www_authenticate if c.supported]
        if not challenges:
            raise MsrpParseError("no digest challenge this client supports")
        challenge = max(challenges, key=lambda c: ALGORITHM_STRENGTH[c.algorithm])
        if self.credentials is None:
            self._refuse(401, f"the relay {self.relay} asks for credentials "
                              f"(realm {challenge.realm!r}) and none are configured")
            return b""
        if self._answered_challenge and not challenge.stale:
            self._refuse(401, f"the relay {self.relay} rejected the credentials of "
                              f"{self.credentials.username!r} (realm {challenge.realm!r})")
            return b""
        if self._challenge is None or challenge.nonce != self._challenge.nonce:
            self._nonce_count = 0
        self._challenge = challenge
        self._answered_challenge = True
        return self._auth(now)

    def _interval(self, response: MsrpResponse, now: float) -> bytes:
        low, high = response.min_expires, response.max_expires
        wanted = self.expires
        if low is not None and (wanted is None or wanted < low):
            self.expires = low
        elif high is not None and (wanted is None or wanted > high):
            self.expires = high
        else:
            self._refuse(423, "the relay refused every Expires value")
            return b""
        return self._auth(now)

    def _grant(self, response: MsrpResponse, now: float) -> None:
        use_path = response.use_path
        if not use_path:
            raise MsrpParseError("200 to AUTH without Use-Path")
        expires = response.expires
        if expires is None:
            expires = self.expires or DEFAULT_EXPIRES
        self.granted = RelayGranted(self.relay, use_path, expires, now + expires * 0.75)
        self._events.append(self.granted)

    def _refuse(self, code: int | None, reason: str) -> None:
        self._events.append(RelayRefused(self.relay, code, reason))

    def _authorization(self, challenge: Challenge) -> str:
        assert self.credentials is not None
        qops = challenge.qop_options
        qop = "auth" if "auth" in qops else None
        uri = str(self.relay)
        cnonce = nc = None
        if qop or challenge.algorithm.endswith("-SESS"):
            cnonce = self._new_cnonce()
        if qop:
            self._nonce_count += 1
            nc = f"{self._nonce_count:08x}"
        response = digest_response(
            algorithm=challenge.algorithm, username=self.credentials.username,
            password=self.credentials.password, realm=challenge.realm, nonce=challenge.nonce,
            method="AUTH", uri=uri, qop=qop, nc=nc, cnonce=cnonce)
        parts = [f"username={quote(self.credentials.username)}",
                 f"realm={quote(challenge.realm)}", f"nonce={quote(challenge.nonce)}",
                 f"uri={quote(uri)}", f"response={quote(response)}",
                 f"algorithm={challenge.algorithm}"]
        if cnonce is not None:
            parts.append(f"cnonce={quote(cnonce)}")
        if challenge.opaque is not None:
            parts.append(f"opaque={quote(challenge.opaque)}")
        if qop:
            parts += [f"qop={qop}", f"nc={nc}"]
        return "Digest " + ", ".join(parts)
