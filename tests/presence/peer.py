"""The far end of the presence machines in unit tests: what a notifier or a presence server
sends back, built from the request our machine produced and passed through the wire format
(serialised and parsed again), so that nothing reaches a machine that a real peer could not
send."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sipd.sip.builder import build_request, build_response, new_branch
from sipd.sip.header_values import Address, parse_address
from sipd.sip.headers import Headers
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.uri import parse_uri

ALICE = Address(parse_uri("sip:alice@example.com"), "Alice")
ALICE_CONTACT = Address(parse_uri("sip:alice@192.0.2.1:5060"))
BOB_URI = parse_uri("sip:bob@example.com")
NOTIFIER_CONTACT = "<sip:bob@192.0.2.2:5062>"


def wire(message: Request | Response) -> Any:
    """The message as its receiver parses it (with a Via when it had none: the stack adds
    one to every request it sends)."""
    if isinstance(message, Request) and not message.headers.values("Via"):
        message = message.copy()
        message.headers.add("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={new_branch()}")
    return parse_datagram(message.to_bytes())


def reply(request: Request, status: int, *, tag: str | None = "bobtag",
          headers: Iterable[tuple[str, str]] = (), contact: str | None = NOTIFIER_CONTACT,
          record_route: Iterable[str] = (), body: bytes = b"",
          content_type: str | None = None) -> Response:
    """A response to `request` (as sent on the wire), with To tag `tag`."""
    sent = wire(request)
    fields = list(headers)
    if contact is not None and 200 <= status < 300:
        fields.append(("Contact", contact))
    if 100 < status < 300:
        for route in record_route:
            sent.headers.add("Record-Route", route)
    response = build_response(sent, status, to_tag=tag, headers=fields, body=body,
                              content_type=content_type)
    if tag is None:
        to = parse_address(sent.headers.get("To"), "To")
        response.headers.set("To", str(to))
    return wire(response)


def notify(subscribe: Request, *, tag: str = "bobtag", cseq: int = 1,
           state: str | None = "active;expires=3600", event: str = "presence",
           body: bytes = b"", content_type: str | None = None,
           contact: str | None = NOTIFIER_CONTACT, record_route: Iterable[str] = (),
           call_id: str | None = None, to_tag: str | None = None) -> Request:
    """The NOTIFY a notifier sends for our SUBSCRIBE (From: its To with `tag`)."""
    sent = wire(subscribe)
    ours = sent.from_
    theirs = sent.to
    theirs.tag = tag
    if to_tag is not None:
        ours.tag = to_tag
    target = sent.contacts[0].uri if sent.contacts else ours.uri
    headers = [("Event", event)]
    if state is not None:
        headers.append(("Subscription-State", state))
    for route in record_route:
        headers.append(("Record-Route", route))
    request = build_request("NOTIFY", target, from_=theirs, to=ours,
                            call_id=call_id or sent.call_id, cseq=cseq,
                            contact=parse_address(contact) if contact else None,
                            headers=headers, body=body, content_type=content_type)
    return wire(request)


def in_dialog(request: Request) -> Headers:
    return wire(request).headers
