"""Digest authentication, client side (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

    store = CredentialStore([Credentials("alice", "secret")])           # default for any realm
    auth = DigestAuthenticator(store)
    result = auth.authenticate(sent_request, response_401_or_407)
    if result.request is not None:
        send(result.request)            # new branch, CSeq + 1, Authorization added
    else:
        fail(result.failure, result.reason)   # NO_CREDENTIALS, REJECTED, UNSUPPORTED

Among several challenges for one realm the strongest supported algorithm wins
(SHA-512-256, then SHA-256, then MD5; `-sess` variants too). qop `auth` is preferred over
`auth-int`; a challenge without qop gets the RFC 2069 legacy response. The nonce count rises
each time a nonce is reused (`authorize_preemptively`). A challenge for a realm that the
challenged request already answered means the credentials are wrong (REJECTED), unless the
server says `stale=true`: then the nonce simply expired and a retry with the new one follows.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .builder import new_branch
from .errors import SipParseError
from .message import Request, Response
from .syntax import QUOTED_TEXT, TOKEN_CHARS, Scanner, char_class, quote, unquote

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
try:
    hashlib.new("sha512_256")
    _HASHES["SHA-512-256"] = lambda data: hashlib.new("sha512_256", data).hexdigest()
except ValueError:  # pragma: no cover - OpenSSL without SHA-512/256
    pass

# Higher is stronger; unknown algorithms are absent.
ALGORITHM_STRENGTH = {"MD5": 1, "MD5-SESS": 1, "SHA-256": 2, "SHA-256-SESS": 2,
                      "SHA-512-256": 3, "SHA-512-256-SESS": 3}
# Unquoted auth-param values: tokens, plus what servers put in nonces and opaques.
_BARE_VALUE_CHARS = TOKEN_CHARS | frozenset("/:=@")


# The usual challenge or credentials, `Digest a="b", c=d` (one space after the scheme, ", "
# between parameters, no other white space), read by regexes (parse_challenge); anything else
# goes to the scanner, which reads this the same way and says what is wrong with the rest.
_QUOTED_OR_BARE = f"{QUOTED_TEXT}|{char_class(_BARE_VALUE_CHARS)}++"
_PLAIN_PARAM_TEXT = f"{char_class(TOKEN_CHARS)}++=(?:{_QUOTED_OR_BARE})"
_PLAIN_CHALLENGE = re.compile(f"({char_class(TOKEN_CHARS)}++) "
                              f"({_PLAIN_PARAM_TEXT}(?:, {_PLAIN_PARAM_TEXT})*+)")
_PLAIN_AUTH_PARAM = re.compile(f"({char_class(TOKEN_CHARS)}++)=({_QUOTED_OR_BARE})")
SUPPORTED_ALGORITHMS = frozenset(
    alg for alg in ALGORITHM_STRENGTH if alg.removesuffix("-SESS") in _HASHES)


# --- challenges ----------------------------------------------------------------------------

@dataclass
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate value (or, parsed the same way, one
    Authorization / Proxy-Authorization value). Parameter names are lower case and values
    unquoted."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    proxy: bool = False  # from Proxy-Authenticate: answer with Proxy-Authorization

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def nonce(self) -> str:
        return self.params.get("nonce", "")

    @property
    def opaque(self) -> str | None:
        return self.params.get("opaque")

    @property
    def algorithm(self) -> str:
        return self.params.get("algorithm", "MD5").upper()

    @property
    def qop_options(self) -> list[str]:
        return [q.strip().lower() for q in self.params.get("qop", "").split(",") if q.strip()]

    @property
    def stale(self) -> bool:
        return self.params.get("stale", "").lower() == "true"

    @property
    def userhash(self) -> bool:
        return self.params.get("userhash", "").lower() == "true"

    @property
    def supported(self) -> bool:
        qops = self.qop_options
        return (self.is_digest and self.algorithm in SUPPORTED_ALGORITHMS and bool(self.nonce)
                and (not qops or "auth" in qops or "auth-int" in qops))

    @property
    def header_name(self) -> str:
        return "Proxy-Authorization" if self.proxy else "Authorization"


def parse_challenge(value: str, *, proxy: bool = False,
                    what: str = "WWW-Authenticate") -> Challenge:
    """Parses `Digest realm="r", nonce="n", ...`. Other schemes keep their raw text in
    params["raw"] (they are not answered)."""
    plain = _PLAIN_CHALLENGE.fullmatch(value)
    if plain is not None and plain[1].lower() == "digest":
        return Challenge(plain[1], {
            name.lower(): unquote(raw) if raw[0] == '"' else raw
            for name, raw in _PLAIN_AUTH_PARAM.findall(plain[2])}, proxy)
    scanner = Scanner(value, what)
    scheme = scanner.token("auth scheme")
    if scheme.lower() != "digest":
        return Challenge(scheme, {"raw": scanner.rest().strip()}, proxy)
    params: dict[str, str] = {}
    while True:
        scanner.skip_ws()
        if scanner.at_end:
            break
        if scanner.accept(","):
            continue
        name = scanner.token("auth-param name").lower()
        scanner.expect("=")
        scanner.skip_ws()
        if scanner.peek() == '"':
            params[name] = unquote(scanner.quoted_string())
        else:
            raw = scanner.take_while(_BARE_VALUE_CHARS)
            if not raw:
                raise scanner.error(f"empty value for {name!r}")
            params[name] = raw
        scanner.skip_ws()
        if not scanner.at_end and not scanner.accept(","):
            raise scanner.error("expected ','")
    return Challenge(scheme, params, proxy)


def challenges_of(response: Response) -> list[Challenge]:
    """The challenges of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) response."""
    found = []
    for name, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for value in response.headers.get_all(name):
            found.append(parse_challenge(value, proxy=proxy, what=name))
    return found


# --- credentials ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    realm: str | None = None  # None: for any realm without credentials of its own

    def __repr__(self) -> str:  # never show the password
        return f"Credentials(username={self.username!r}, realm={self.realm!r})"


class CredentialStore:
    """Credentials by realm, with an optional default (realm None)."""

    def __init__(self, credentials: Iterable[Credentials] = ()) -> None:
        self._by_realm: dict[str | None, Credentials] = {}
        for item in credentials:
            self.add(item)

    def add(self, credentials: Credentials) -> None:
        self._by_realm[credentials.realm] = credentials

    def find(self, realm: str) -> Credentials | None:
        return self._by_realm.get(realm) or self._by_realm.get(None)


# --- the digest computation ----------------------------------------------------------------

def digest_response(
    *,
    algorithm: str,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The `response` value (RFC 7616 §3.4.1; RFC 2617 §3.2.2 for MD5 and no qop)."""
    algorithm = algorithm.upper()
    hash_ = _HASHES.get(algorithm.removesuffix("-SESS"))
    if hash_ is None:
        raise ValueError(f"unsupported digest algorithm {algorithm}")

    def H(text: str) -> str:
        return hash_(text.encode("utf-8"))

    ha1 = H(f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = H(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = H(f"{method}:{uri}:{hash_(body)}")
    else:
        ha2 = H(f"{method}:{uri}")
    if qop:
        return H(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return H(f"{ha1}:{nonce}:{ha2}")


class AuthFailure(enum.Enum):
    NO_CREDENTIALS = "no_credentials"  # no credentials for the realm challenged
    REJECTED = "rejected"  # the same realm challenged our credentials again: wrong password
    UNSUPPORTED = "unsupported"  # no challenge with a scheme/algorithm/qop we know


@dataclass
class AuthResult:
    request: Request | None = None
    failure: AuthFailure | None = None
    reason: str = ""


class DigestAuthenticator:
    """Answers digest challenges for one account; remembers the last challenge per realm
    and the nonce counts."""

    def __init__(self, store: CredentialStore,
                 cnonce_factory: Callable[[], str] = lambda: secrets.token_hex(8)) -> None:
        self.store = store
        self._new_cnonce = cnonce_factory
        self._nonce_counts: dict[tuple[str, str], int] = {}
        self._last: dict[tuple[bool, str], Challenge] = {}

    def authenticate(self, request: Request, response: Response) -> AuthResult:
        """The request to send again after a 401/407 to `request`, with credentials for
        every realm challenged, a new Via branch and the next CSeq number."""
        try:
            challenges = challenges_of(response)
        except SipParseError as exc:
            return AuthResult(failure=AuthFailure.UNSUPPORTED, reason=exc.detail)
        chosen = _strongest_per_realm(challenges)
        if not chosen:
            schemes = sorted({c.scheme for c in challenges}) or ["none"]
            return AuthResult(failure=AuthFailure.UNSUPPORTED,
                              reason=f"no supported digest challenge (got {', '.join(schemes)})")
        answered = _answered_realms(request)
        retry = request.copy()
        for challenge in chosen:
            if (challenge.proxy, challenge.realm) in answered and not challenge.stale:
                return AuthResult(failure=AuthFailure.REJECTED,
                                  reason=f"credentials for realm {challenge.realm!r} were rejected")
            credentials = self.store.find(challenge.realm)
            if credentials is None:
                return AuthResult(failure=AuthFailure.NO_CREDENTIALS,
                                  reason=f"no credentials for realm {challenge.realm!r}")
            _remove_authorization(retry, challenge)
            self._last[(challenge.proxy, challenge.realm)] = challenge
            retry.headers.add(challenge.header_name,
                              self.authorization(challenge, retry, credentials))
        _prepare_retry(retry)
        return AuthResult(request=retry)

    def authorize_preemptively(self, request: Request) -> None:
        """Adds credentials for every realm challenged before (next nonce count), so a
        refresh (a re-REGISTER, say) need not be challenged again."""
        for (_proxy, realm), challenge in self._last.items():
            credentials = self.store.find(realm)
            if credentials is None:
                continue
            _remove_authorization(request, challenge)
            request.headers.add(challenge.header_name,
                                self.authorization(challenge, request, credentials))

    def forget(self, realm: str | None = None) -> None:
        """Drops remembered challenges (all, or one realm's), after a credential change."""
        self._last = {k: v for k, v in self._last.items() if realm is not None and k[1] != realm}

    def authorization(self, challenge: Challenge, request: Request,
                      credentials: Credentials) -> str:
        """The Authorization/Proxy-Authorization value answering `challenge` for `request`
        (takes the next nonce count for the challenge's nonce)."""
        qops = challenge.qop_options
        qop = "auth" if "auth" in qops else ("auth-int" if "auth-int" in qops else None)
        uri = str(request.uri)
        algorithm = challenge.algorithm
        username = credentials.username
        if challenge.userhash:
            hash_ = _HASHES[algorithm.removesuffix("-SESS")]
            username = hash_(f"{username}:{challenge.realm}".encode())
        nc = cnonce = None
        if qop or algorithm.endswith("-SESS"):
            cnonce = self._new_cnonce()
        if qop:
            key = (challenge.realm, challenge.nonce)
            self._nonce_counts[key] = self._nonce_counts.get(key, 0) + 1
            nc = f"{self._nonce_counts[key]:08x}"
        response = digest_response(
            algorithm=algorithm, username=credentials.username, password=credentials.password,
            realm=challenge.realm, nonce=challenge.nonce, method=request.method, uri=uri,
            qop=qop, nc=nc, cnonce=cnonce, body=request.body)
        parts = [
            f"username={quote(username)}", f"realm={quote(challenge.realm)}",
            f"nonce={quote(challenge.nonce)}", f"uri={quote(uri)}",
            f"response={quote(response)}", f"algorithm={algorithm}",
        ]
        if cnonce is not None:
            parts.append(f"cnonce={quote(cnonce)}")
        if challenge.opaque is not None:
            parts.append(f"opaque={quote(challenge.opaque)}")
        if qop:
            parts += [f"qop={qop}", f"nc={nc}"]
        if challenge.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def _strongest_per_realm(challenges: list[Challenge]) -> list[Challenge]:
    best: dict[tuple[bool, str], Challenge] = {}
    for challenge in challenges:
        if not challenge.supported:
            continue
        key = (challenge.proxy, challenge.realm)
        current = best.get(key)
        if current is None or (ALGORITHM_STRENGTH[challenge.algorithm]
                               > ALGORITHM_STRENGTH[current.algorithm]):
            best[key] = challenge
    return list(best.values())


def _answered_realms(request: Request) -> set[tuple[bool, str]]:
    """The (proxy?, realm) pairs the request already carried digest credentials for."""
    realms = set()
    for name, proxy in (("Authorization", False), ("Proxy-Authorization", True)):
        for value in request.headers.get_all(name):
            try:
                credentials = parse_challenge(value, what=name)
            except SipParseError:
                continue
            if credentials.is_digest:
                realms.add((proxy, credentials.realm))
    return realms


def _remove_authorization(request: Request, challenge: Challenge) -> None:
    """Removes our earlier credentials for the challenge's realm (others stay)."""
    name = challenge.header_name
    kept = []
    for value in request.headers.get_all(name):
        try:
            realm = parse_challenge(value, what=name).realm
        except SipParseError:
            realm = None
        if realm != challenge.realm:
            kept.append(value)
    request.headers.remove(name)
    for value in kept:
        request.headers.add(name, value)


def _prepare_retry(request: Request) -> None:
    """A new transaction: fresh branch in the top Via, next CSeq number (RFC 3261 §22.2)."""
    via = request.top_via  # a copy, parsed once per message
    if via is not None:
        via.params.set("branch", new_branch())
        via.params.remove("received")
        if via.wants_rport:
            via.params.set("rport")
        request.headers.replace_first_value("Via", str(via))
    cseq = request.cseq
    if cseq is not None:
        request.headers.set("CSeq", f"{cseq.number + 1} {cseq.method}")
