"""Building requests and responses: identifiers (branch, tag, Call-ID), request skeletons,
responses to a request (RFC 3261 §8.2.6), CANCEL (§9.1), the ACK for a non-2xx final
response (§17.1.1.3), Via `received`/`rport` stamping (§18.2.1, RFC 3581) and the next hop
of a request (§8.1.2)."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Iterable

from .errors import SipParseError
from .header_values import Address, Via, parse_address
from .headers import Headers
from .message import Request, Response
from .uri import SipUri, Uri

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 421: "Extension Required", 422: "Session Interval Too Small",
    423: "Interval Too Brief",
    429: "Provide Referrer Identity", 439: "First Hop Lacks Outbound Support",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status, {1: "Trying", 2: "OK"}.get(status // 100, "Error"))


def new_branch() -> str:
    """A Via branch unique in space and time, starting with the RFC 3261 magic cookie."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(8)


def new_call_id(host: str | None = None) -> str:
    value = secrets.token_hex(12)
    return f"{value}@{host}" if host else value


def new_via(transport: str, host: str, port: int | None = None, *, rport: bool = True,
            branch: str | None = None) -> Via:
    """A Via for a new client transaction (with `;rport` to ask for RFC 3581 behaviour)."""
    via = Via(transport.upper(), host, port)
    via.params.set("branch", branch or new_branch())
    if rport:
        via.params.set("rport")
    return via


def build_request(
    method: str,
    uri: Uri,
    *,
    from_: Address,
    to: Address,
    via: Via | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    contact: Address | None = None,
    routes: Iterable[Address] = (),
    max_forwards: int = 70,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A request skeleton (RFC 3261 §8.1.1). A From without a tag gets a new one; the Via is
    usually filled in by the transport layer (`new_via`) before the transaction starts."""
    from_ = from_.copy()
    if from_.tag is None:
        from_.tag = new_tag()
    fields = Headers()
    if via is not None:
        fields.add("Via", str(via))
    fields.add("Max-Forwards", str(max_forwards))
    for route in routes:
        fields.add("Route", str(route))
    fields.add("From", str(from_))
    fields.add("To", str(to))
    fields.add("Call-ID", call_id or new_call_id())
    fields.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        fields.add("Contact", str(contact))
    for name, value in headers:
        fields.add(name, value)
    if content_type is not None:
        fields.set("Content-Type", content_type)
    return Request(method, uri.copy(), fields, body)


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to `request` (RFC 3261 §8.2.6): Via, From, To, Call-ID, CSeq copied, and a
    To tag added when the To has none and the status is not 100 (pass the dialog's tag so
    every response of one transaction carries the same one; a new one is made otherwise)."""
    try:
        to = None if status == 100 else request.to  # a copy of what reading it parsed
    except SipParseError:
        to = None
    response = build_response_from_headers(request.headers, status, reason, to_tag=to_tag,
                                           to=to)
    for name, value in headers:
        response.headers.add(name, value)
    if content_type is not None:
        response.headers.set("Content-Type", content_type)
    response.body = body
    return response


def build_response_from_headers(request_headers: Headers, status: int, reason: str | None = None,
                                *, to_tag: str | None = None,
                                to: Address | None = None) -> Response:
    """The core of `build_response`, from the headers alone (used for answering requests
    that failed to parse: a To that cannot be parsed is copied without adding a tag). `to`
    is the request's To when it is already parsed (a copy this may change): not parsed again."""
    fields = Headers()
    for name in ("Via", "Record-Route", "From", "To", "Call-ID", "CSeq"):
        if name == "Record-Route" and not 100 < status < 300:
            continue  # only dialog-creating responses carry Record-Route (§12.1.1)
        for value in request_headers.get_all(name):
            fields.add(name, value)
    to_value = fields.get("To")
    if to_value is not None and status != 100:
        if to is None:
            try:
                to = parse_address(to_value, "To")
            except SipParseError:
                to = None
        if to is not None and to.tag is None:
            to.tag = to_tag or new_tag()
            fields.set("To", str(to))
    return Response(status, reason if reason is not None else reason_phrase(status), fields)


def error_response(error: SipParseError) -> Response | None:
    """The response to a request that failed to parse, or None to drop it (see
    `SipParseError.answerable`).

    The Via, From, To, Call-ID and CSeq fields are copied unchanged (they may be the
    malformed part), so send it to the source address of the request (RFC 3581 style)
    rather than trusting its Via.
    """
    if not error.answerable:
        return None
    assert error.headers is not None and error.status is not None
    return build_response_from_headers(error.headers, error.status, error.reason)


def stamp_received(request: Request, source_host: str, source_port: int) -> None:
    """Adds `received` to the top Via when the sent-by host is not the packet's source
    address (RFC 3261 §18.2.1), and fills in an empty `rport` (RFC 3581 §4, which then also
    requires `received`). Call it on every request a transport receives."""
    via = request.top_via  # a copy of what reading the request parsed (not parsed again)
    if via is None:
        return
    if via.wants_rport:
        via.params.set("rport", str(source_port))
    if via.wants_rport or not _same_address(via.host, source_host):
        via.params.set("received", source_host)
    request.headers.replace_first_value("Via", str(via))


def _same_address(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return False  # sent-by is a name: always stamp the address it came from


def response_destination(response: Response) -> tuple[str, int | None, str]:
    """Where a response goes by its top Via (RFC 3261 §18.2.2 / RFC 3581 §4):
    (host, port or None for the transport's default, transport). The transport should
    prefer the connection the request came on for TCP/TLS."""
    via = response.top_via
    if via is None:
        raise SipParseError("response has no Via", status=None)
    host = via.maddr or via.received or via.host
    port = via.rport if via.rport is not None and via.maddr is None else via.port
    return host, port, via.transport


def build_cancel(invite: Request) -> Request:
    """The CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
    CSeq number and top Via (so the same branch), its Route headers, no body."""
    fields = Headers()
    fields.add("Via", invite.headers.values("Via")[0])
    fields.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        fields.add("Route", route)
    for name in ("From", "To", "Call-ID"):
        fields.add(name, invite.headers.get(name) or "")
    cseq = invite.cseq
    assert cseq is not None
    fields.add("CSeq", f"{cseq.number} CANCEL")
    return Request("CANCEL", invite.uri.copy(), fields)


def build_non2xx_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 response to `invite` (RFC 3261 §17.1.1.3): built by the INVITE
    client transaction itself, same branch, To taken from the response."""
    fields = Headers()
    fields.add("Via", invite.headers.values("Via")[0])
    fields.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        fields.add("Route", route)
    fields.add("From", invite.headers.get("From") or "")
    fields.add("To", response.headers.get("To") or invite.headers.get("To") or "")
    fields.add("Call-ID", invite.headers.get("Call-ID") or "")
    cseq = invite.cseq
    assert cseq is not None
    fields.add("CSeq", f"{cseq.number} ACK")
    return Request("ACK", invite.uri.copy(), fields)


def next_hop(request: Request) -> Uri:
    """The URI to resolve (RFC 3263) to send `request` (RFC 3261 §8.1.2): the first Route
    when it is a loose router, the Request-URI otherwise (no Route, or strict routing where
    the Request-URI already holds the next hop)."""
    routes = request.headers.values("Route")
    if routes:
        first = parse_address(routes[0], "Route").uri
        if isinstance(first, SipUri) and first.lr:
            return first
    return request.uri


def warning_value(text: str, limit: int = 200) -> str:
    """A Warning header value (RFC 3261 §20.43) with code 399 (miscellaneous) and `text`, made
    printable and short, as its quoted string: why, for the remote party's user."""
    text = "".join(c if c >= " " and c != "\x7f" else " " for c in text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'399 sipd "{quoted}"'
