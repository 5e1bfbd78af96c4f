"""The xcap-diff event package's core (sipd/xcap/diffevent.py): the SUBSCRIBE's list of
documents, and which of the account's documents a NOTIFY names, with what ETag."""

from __future__ import annotations

import pytest

from sipd.presence.subscriber import Subscriber, SubscribeTarget
from sipd.sip.header_values import parse_address
from sipd.xcap.diffevent import (
    SUBSCRIBE_CONTENT_TYPE,
    ChangedDocument,
    changed_documents,
    subscription_body,
)
from sipd.xcap.documents import DocumentKey
from sipd.xcap.errors import XcapDocumentError
from sipd.xcap.resourcelists import parse_resource_lists

ROOT = "https://xcap.example.com/xcap-root"
ME = "sip:alice@example.com"
LISTS = f"{ROOT}/resource-lists/users/{ME}/index"
RULES = f"{ROOT}/pres-rules/users/{ME}/index"


def diff(*children: str, root: str = "http://elsewhere.example.com/root/") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="{root}">'
            + "".join(children) + "</xcap-diff>").encode()


def test_the_subscribe_body_lists_the_documents() -> None:
    body = subscription_body([LISTS, RULES])
    lists = parse_resource_lists(body)
    assert [entry.uri for entry in lists.lists[0].entries] == [LISTS, RULES]


def test_the_initial_subscribe_carries_the_list_and_refreshes_do_not() -> None:
    target = SubscribeTarget(parse_address(f"<{ME}>").uri, from_=parse_address(f"<{ME}>"),
                             contact=parse_address("<sip:alice@127.0.0.1:5099>"),
                             body=subscription_body([LISTS]),
                             content_type=SUBSCRIBE_CONTENT_TYPE)
    sub = Subscriber(target, event="xcap-diff", accept=("application/xcap-diff+xml",))
    request = next(a.request for a in sub.start(0.0) if hasattr(a, "request"))
    assert request.headers.get("Content-Type") == SUBSCRIBE_CONTENT_TYPE
    assert LISTS.encode() in request.body and request.headers.get("Event") == "xcap-diff"
    moved = sub.update_contact(parse_address("<sip:alice@127.0.0.1:5100>"), 1.0)
    assert sub.target.body == target.body and moved == []  # no dialog yet: nothing to refresh


def test_documents_of_the_account_with_their_etags() -> None:
    body = diff(
        f'<document sel="resource-lists/users/{ME}/index" previous-etag="a" new-etag="b"/>',
        # percent-encoded XUI, quoted ETag
        '<document sel="pres-rules/users/sip%3Aalice%40example.com/index" new-etag="&quot;'
        'r2&quot;"/>',
        # gone
        f'<document sel="pidf-manipulation/users/{ME}/index" previous-etag="p"/>',
        # someone else's, the global tree, an element: not ours to reload
        '<document sel="resource-lists/users/sip:bob@example.com/index" new-etag="x"/>',
        '<document sel="xcap-caps/global/index" new-etag="y"/>',
        f'<element sel="resource-lists/users/{ME}/index/~~/resource-lists/list" exists="0"/>')
    assert changed_documents("application/xcap-diff+xml", body, root=ROOT, xui=ME) == [
        ChangedDocument(DocumentKey("resource-lists", "index"), "b"),
        ChangedDocument(DocumentKey("pres-rules", "index"), "r2"),
        ChangedDocument(DocumentKey("pidf-manipulation", "index"), None, removed=True),
    ]


def test_a_notify_without_a_body_says_nothing() -> None:
    assert changed_documents(None, b"", root=ROOT, xui=ME) == []
    assert changed_documents("application/xcap-diff+xml", b"  \r\n", root=ROOT, xui=ME) == []


@pytest.mark.parametrize(("content_type", "body", "reason"), [
    ("application/pidf+xml", b"<presence/>", r"not application/xcap-diff\+xml"),
    ("application/xcap-diff+xml", b"<xcap-diff", "refused"),
    ("application/xcap-diff+xml",
     b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa">]>'
     b'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff">&a;</xcap-diff>', "refused"),
    ("application/xcap-diff+xml",
     b'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff">' + b"<a>" * 200 + b"</a>" * 200
     + b"</xcap-diff>", "nested deeper"),
    ("application/xcap-diff+xml", b"<resource-lists/>", "root element"),
])
def test_unreadable_bodies_are_refused_with_the_reason(content_type: str, body: bytes,
                                                       reason: str) -> None:
    with pytest.raises(XcapDocumentError, match=reason):
        changed_documents(content_type, body, root=ROOT, xui=ME)
