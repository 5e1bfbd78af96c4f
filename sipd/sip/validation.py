"""What a user agent server answers to a well-formed request it cannot accept
(RFC 3261 §8.2, RFC 4475 §3.3): a pure function of the request and the UA's capabilities.

    rejection = validate_request_for_uas(request, supported_methods={"INVITE", "ACK", ...})
    if rejection is not None:
        respond(rejection.status, rejection.reason, headers=rejection.headers)

The checks run in the order of §8.2: mandatory and single-value headers (400), CSeq method
(400, or 501 for an unknown method, RFC 4475 §3.1.2.18), method (405/501 + Allow), Request-URI
scheme (416), Require (420 + Unsupported), body (415 + Accept/Accept-Encoding), and Accept of
an INVITE (406). An ACK is never answered, so it always passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import SipParseError
from .headers import SINGLE_VALUE_HEADERS
from .message import Request

# Methods this core knows the meaning of: an unsupported one among them gets 405, any other
# method 501 (RFC 3261 §8.2.1, §21.5.2).
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
})
MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass
class Rejection:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)


def validate_request_for_uas(
    request: Request,
    *,
    supported_methods: Iterable[str],
    supported_extensions: Iterable[str] = (),
    accepted_types: Iterable[str] = ("application/sdp",),
    accepted_encodings: Iterable[str] = ("identity",),
    supported_schemes: Iterable[str] = ("sip", "sips", "tel"),
) -> Rejection | None:
    """None if a UAS may process `request`, else the response it should send."""
    methods = sorted(set(supported_methods))
    allow = [("Allow", ", ".join(methods))]
    try:
        return (_check_headers(request)
                or _check_method(request, methods, allow)
                or _check_scheme(request, supported_schemes)
                or _check_require(request, supported_extensions)
                or _check_body(request, accepted_types, accepted_encodings)
                or _check_accept(request, accepted_types))
    except SipParseError as exc:  # a header read lazily (Content-Type, Require...) is malformed
        return Rejection(400, exc.reason)


def _check_headers(request: Request) -> Rejection | None:
    if request.method == "ACK":
        return None
    for name in MANDATORY_HEADERS:
        if name not in request.headers:
            return Rejection(400, f"Missing {name} Header")
    for name in SINGLE_VALUE_HEADERS:
        if request.headers.count(name) > 1:
            return Rejection(400, f"Multiple {name} Headers")
    return None


def _check_method(request: Request, methods: list[str],
                  allow: list[tuple[str, str]]) -> Rejection | None:
    if request.method == "ACK":
        return None
    cseq = request.cseq
    known = request.method in methods or request.method in KNOWN_METHODS
    if cseq is not None and cseq.method != request.method:
        if not known:
            return Rejection(501, "Not Implemented", allow)
        return Rejection(400, "CSeq Method Does Not Match Request Method")
    if request.method in methods:
        return None
    if request.method in KNOWN_METHODS:
        return Rejection(405, "Method Not Allowed", allow)
    return Rejection(501, "Not Implemented", allow)


def _check_scheme(request: Request, schemes: Iterable[str]) -> Rejection | None:
    if request.uri.scheme.lower() not in {s.lower() for s in schemes}:
        return Rejection(416, "Unsupported URI Scheme")
    return None


def _check_require(request: Request, extensions: Iterable[str]) -> Rejection | None:
    if request.method in ("ACK", "CANCEL"):
        return None  # Require is ignored on them (RFC 3261 §8.2.2.3)
    known = {e.lower() for e in extensions}
    unknown = [tag for tag in request.require if tag.lower() not in known]
    if unknown:
        return Rejection(420, "Bad Extension", [("Unsupported", ", ".join(unknown))])
    return None


def _check_body(request: Request, types: Iterable[str],
                encodings: Iterable[str]) -> Rejection | None:
    if not request.body:
        return None
    types = list(types)
    content_type = request.content_type
    if content_type is None or content_type.mime not in {t.lower() for t in types}:
        return Rejection(415, "Unsupported Media Type", [("Accept", ", ".join(types))])
    encodings = {e.lower() for e in encodings}
    for coding in request.headers.values("Content-Encoding"):
        if coding and coding.lower() not in encodings:
            return Rejection(415, "Unsupported Media Type",
                             [("Accept-Encoding", ", ".join(sorted(encodings)))])
    return None


def _check_accept(request: Request, types: Iterable[str]) -> Rejection | None:
    """An INVITE whose Accept excludes every type we could answer with (SDP)."""
    if request.method != "INVITE" or "Accept" not in request.headers:
        return None
    ranges = request.accept
    if not ranges:
        return None  # an empty Accept: only a bodiless answer is wanted
    if any(r.matches(t) for r in ranges for t in types):
        return None
    return Rejection(406, "Not Acceptable", [("Warning", '399 - "application/sdp is required"')])
