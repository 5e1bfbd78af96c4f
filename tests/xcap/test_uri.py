"""XCAP URIs and node selectors (RFC 4825 §6)."""

from __future__ import annotations

import pytest
from lxml import etree

from sipd.xcap.errors import XcapUriError
from sipd.xcap.selector import NodeSelector, Step, quote_value
from sipd.xcap.uri import XcapUri, escape_selector, parse_xmlns_query

ROOT = "https://xcap.example.com/services"


def test_document_uri_in_users_and_global_trees() -> None:
    uri = XcapUri(ROOT + "/", "resource-lists", "index", "sip:alice@example.com")
    assert str(uri) == f"{ROOT}/resource-lists/users/sip:alice@example.com/index"
    caps = XcapUri(ROOT, "xcap-caps", "index")
    assert str(caps) == f"{ROOT}/xcap-caps/global/index"
    odd = XcapUri(ROOT, "resource-lists", "dir/my list", "sip:a b/c?d#e%@example.com")
    assert str(odd) == (f"{ROOT}/resource-lists/users/sip:a%20b%2Fc%3Fd%23e%25@example.com/"
                        "dir/my%20list")
    assert XcapUri.parse(str(odd), ROOT) == odd


def test_rfc4825_example_selector() -> None:
    # RFC 4825 §6.3's example, percent-encoded as in §6.
    text = ('http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/'
            'resource-lists/list%5b@name=%22l1%22%5d/entry%5b@uri=%22sip:bob@example.com%22%5d')
    uri = XcapUri.parse(text, "http://xcap.example.com")
    assert uri.xui == "sip:joe@example.com" and uri.document == "index"
    assert uri.node == NodeSelector((Step("resource-lists"), Step("list", None, ("name", "l1")),
                                     Step("entry", None, ("uri", "sip:bob@example.com"))))
    assert XcapUri.parse(str(uri), "http://xcap.example.com") == uri


@pytest.mark.parametrize("selector", [
    "resource-lists",
    "resource-lists/list[2]",
    'resource-lists/list[@name="friends"]/entry[3][@uri="sip:a@b"]',
    "resource-lists/*[1]/@name",
    "ruleset/cr:rule/namespace::*",
    "resource-lists/list[@name='a \"quoted\" name']",
    'resource-lists/list[@name="both \' and &quot;"]',
    'resource-lists/list[@name="a/b[c]"]/entry',
])
def test_selectors_round_trip(selector) -> None:
    parsed = NodeSelector.parse(selector)
    assert NodeSelector.parse(str(parsed)) == parsed
    namespaces = {"cr": "urn:ietf:params:xml:ns:common-policy"} if "cr:" in selector else {}
    uri = XcapUri(ROOT, "resource-lists", "index", "sip:a@b", parsed, namespaces)
    assert XcapUri.parse(str(uri), ROOT) == uri
    assert "[" not in str(uri).split("~~", 1)[1] and '"' not in str(uri)


def test_values_with_slashes_and_quotes() -> None:
    step = Step("entry", attribute=("uri", 'sip:"x"/y@z'))
    assert str(step) == "entry[@uri='sip:\"x\"/y@z']"
    assert quote_value("a&b<c") == '"a&amp;b&lt;c"'
    assert escape_selector('list[@name="a/b"]/entry') == "list%5B@name=%22a%2Fb%22%5D/entry"
    parsed = NodeSelector.parse('list[@name="a&#x2F;&#47;&amp;"]')
    assert parsed.steps[0].attribute == ("name", "a//&")


@pytest.mark.parametrize("selector", [
    "", "/resource-lists", "resource-lists//list", "resource-lists/list[0]",
    "resource-lists/list[@name=unquoted]", 'resource-lists/list[@name="open]',
    "resource-lists/1list", "resource-lists/@name/list",
])
def test_malformed_selectors(selector) -> None:
    with pytest.raises(XcapUriError):
        NodeSelector.parse(selector)


def test_namespace_bindings() -> None:
    assert parse_xmlns_query("xmlns(a=urn:a)xmlns(b=urn:b)") == {"a": "urn:a", "b": "urn:b"}
    with pytest.raises(XcapUriError):
        parse_xmlns_query("foo=bar")
    with pytest.raises(XcapUriError, match="no namespace binding"):
        XcapUri(ROOT, "pres-rules", "index", "sip:a@b", NodeSelector.parse("cr:ruleset"))


@pytest.mark.parametrize("uri", [
    f"{ROOT}/resource-lists/users/sip:a@b",        # no document
    f"{ROOT}/resource-lists/elsewhere/x/index",    # neither users nor global
    "https://other.example.com/resource-lists/global/index",
    f"{ROOT}/resource-lists/users/sip:a@b/../x",
])
def test_not_xcap_uris(uri) -> None:
    with pytest.raises(XcapUriError):
        XcapUri.parse(uri, ROOT)


def test_roots_must_be_http() -> None:
    with pytest.raises(XcapUriError):
        XcapUri("ftp://x/y", "resource-lists", "index", "sip:a@b")


def test_select_in_a_document() -> None:
    root = etree.fromstring(
        b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:x">'
        b'<list name="a"><entry uri="sip:1@x"/><x:ext/><entry uri="sip:2@x"/></list>'
        b'<list name="b"><entry uri="sip:3@x" x:tag="t"/></list></resource-lists>')
    ns = "urn:ietf:params:xml:ns:resource-lists"
    pick = NodeSelector.parse
    assert [e.get("uri") for e in pick("resource-lists/list/entry[2]").select(root, ns)] == [
        "sip:2@x"]
    assert [e.get("uri") for e in pick('resource-lists/list[@name="b"]/entry').select(root, ns)] \
        == ["sip:3@x"]
    assert len(pick("resource-lists/list[1]/*").select(root, ns)) == 3
    assert len(pick("resource-lists/list/y:ext").select(root, ns, {"y": "urn:x"})) == 1
    assert len(pick('resource-lists/list/entry[@y:tag="t"]').select(root, ns, {"y": "urn:x"})) == 1
    assert pick("other/list").select(root, ns) == []
    with pytest.raises(XcapUriError):
        pick("resource-lists/z:list").select(root, ns)
