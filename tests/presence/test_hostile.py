"""Hostile and broken bodies for every payload reader: each one is refused with PayloadError
and a reason, never with another exception, never by expanding an entity, reading a file or
opening a connection."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipd.presence.dialog_info import parse_dialog_info
from sipd.presence.message_summary import parse_message_summary
from sipd.presence.multipart import parse_multipart
from sipd.presence.payload import PayloadError
from sipd.presence.pidf import parse_pidf
from sipd.presence.reader import (
    DialogInfoReader,
    MessageSummaryReader,
    PresenceReader,
    WatcherInfoReader,
)
from sipd.presence.rlmi import parse_rlmi
from sipd.presence.winfo import parse_watcherinfo

ROOTS = {
    "pidf": ("presence", "urn:ietf:params:xml:ns:pidf", parse_pidf),
    "winfo": ("watcherinfo", "urn:ietf:params:xml:ns:watcherinfo", parse_watcherinfo),
    "rlmi": ("list", "urn:ietf:params:xml:ns:rlmi", parse_rlmi),
    "dialog": ("dialog-info", "urn:ietf:params:xml:ns:dialog-info", parse_dialog_info),
}
XML_PARSERS = [pytest.param(parse, id=name) for name, (_, _, parse) in ROOTS.items()]


def read_as_presence(body: bytes) -> object:
    return PresenceReader("sip:x@y").read("application/pidf+xml", body)


def read_as_list(body: bytes) -> object:
    return PresenceReader("sip:x@y").read(
        'multipart/related;type="application/rlmi+xml";boundary=b', body)


ALL_PARSERS = XML_PARSERS + [
    pytest.param(parse_message_summary, id="message-summary"),
    pytest.param(read_as_presence, id="reader-pidf"),
    pytest.param(read_as_list, id="reader-list"),
    pytest.param(lambda body: parse_multipart(body, "multipart/related;boundary=b"),
                 id="multipart"),
    pytest.param(lambda body: WatcherInfoReader().read("application/watcherinfo+xml", body)
                 or 1, id="reader-winfo"),
    pytest.param(lambda body: DialogInfoReader().read("application/dialog-info+xml", body)
                 or 1, id="reader-dialog"),
    pytest.param(lambda body: MessageSummaryReader().read(
        "application/simple-message-summary", body) or 1, id="reader-mwi"),
]
READERS_TAKING_EMPTY = ("reader-pidf", "reader-list", "reader-winfo", "reader-dialog",
                        "reader-mwi")


def laughs(root: str, namespace: str) -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'
        for n in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE {root} [{entities}]>'
            f'<{root} xmlns="{namespace}">&lol9;</{root}>').encode()


@pytest.mark.parametrize("name", ROOTS)
def test_billion_laughs(name):
    root, namespace, parse = ROOTS[name]
    with pytest.raises(PayloadError, match="DOCTYPE|entity"):  # libxml2 may refuse first
        parse(laughs(root, namespace))


@pytest.mark.parametrize("name", ROOTS)
def test_external_entity_is_not_read(name, tmp_path):
    root, namespace, parse = ROOTS[name]
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET")
    body = (f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "file://{secret}">]>'
            f'<{root} xmlns="{namespace}" version="0" state="full">&x;</{root}>').encode()
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert "TOP-SECRET" not in caught.value.reason and "DOCTYPE" in caught.value.reason


@pytest.mark.parametrize("name", ROOTS)
def test_no_network_for_an_external_dtd_or_entity(name):
    root, namespace, parse = ROOTS[name]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.3)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
        for body in (f'<!DOCTYPE {root} SYSTEM "{url}.dtd"><{root} xmlns="{namespace}"/>',
                     f'<!DOCTYPE {root} [<!ENTITY % p SYSTEM "{url}.ent"> %p;]>'
                     f'<{root} xmlns="{namespace}"/>',
                     f'<{root} xmlns="{namespace}" xmlns:xi="http://www.w3.org/2001/XInclude">'
                     f'<xi:include href="{url}.xml"/></{root}>'):
            try:
                parse(body.encode())
            except PayloadError:
                pass
        with pytest.raises(TimeoutError):
            listener.accept()


@pytest.mark.parametrize("parse", ALL_PARSERS)
def test_five_megabytes_of_nesting(parse):
    body = b"<a>" * (5 * 1024 * 1024 // 3)
    with pytest.raises(PayloadError, match="too large"):
        parse(body)


@pytest.mark.parametrize("name", ROOTS)
def test_deep_nesting_below_the_size_limit(name):
    root, namespace, parse = ROOTS[name]
    body = (f'<{root} xmlns="{namespace}" version="0" state="full" fullState="true">'
            + "<x>" * 5000 + "</x>" * 5000 + f"</{root}>").encode()
    with pytest.raises(PayloadError, match="depth"):
        parse(body)


@pytest.mark.parametrize("name", ROOTS)
def test_wrong_namespace_or_root(name):
    root, namespace, parse = ROOTS[name]
    with pytest.raises(PayloadError, match="namespace"):
        parse(f'<{root} xmlns="urn:ietf:params:xml:ns:other"/>'.encode())
    other = "presence" if root != "presence" else "watcherinfo"
    with pytest.raises(PayloadError, match=f"root element is {other}"):
        parse(f'<{other} xmlns="{namespace}"/>'.encode())


@pytest.mark.parametrize("parse", ALL_PARSERS)
@pytest.mark.parametrize("body", [
    b"", b"   ", b"\x00\xff\xfe garbage", b"<", b"<a></b>", "<presence>é</presence>".encode(
        "latin-1"), b'<?xml version="1.0" encoding="no-such"?><a/>', b"\xef\xbb\xbf",
    b"--b\r\n\r\n", b"--b--", b"Messages-Waiting: perhaps",
])
def test_garbage(parse, body, request):
    if not body and any(f"-{name}]" in request.node.name for name in READERS_TAKING_EMPTY):
        parse(body)  # a NOTIFY without body (pending) says nothing, and is no error
        return
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert caught.value.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=600))
@pytest.mark.parametrize("parse", ALL_PARSERS)
def test_random_bytes_raise_nothing_but_payload_error(parse, body):
    try:
        parse(body)
    except PayloadError:
        pass


_FRAGMENTS = st.sampled_from([
    "<", ">", "/>", "</", "presence", "tuple", "status", "basic", "open", "closed", "note",
    'xmlns="urn:ietf:params:xml:ns:pidf"', 'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
    'xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"', "dm:person", "r:activities", "r:away",
    "r:other", "timestamp", "2024-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59", 'id="x"', 'priority="2e308"', 'entity="sip:a@b"', " ", "&amp;",
    "&#0;", "&#x1F600;", "<![CDATA[x]]>", "<!-- c -->", '<?pi x?>', "watcherinfo", "watcher",
    'version="1"', 'state="partial"', 'status="active"', "list", "resource", "instance",
    'fullState="false"', 'uri="sip:x@y"', "dialog-info", "dialog", "\u00e9", "\ud7ff",
])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(_FRAGMENTS, max_size=40))
@pytest.mark.parametrize("parse", XML_PARSERS + [pytest.param(read_as_presence, id="reader")])
def test_xml_like_noise_raises_nothing_but_payload_error(parse, parts):
    try:
        parse("".join(parts).encode("utf-8", "surrogatepass"))
    except PayloadError:
        pass


def test_one_hostile_part_of_a_list_costs_that_contact_only():
    good = (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@x"><tuple id="t">'
            b'<status><basic>open</basic></status></tuple></presence>')
    rlmi = (b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@x" version="0" '
            b'fullState="true"><resource uri="sip:a@x"><instance id="1" state="active" '
            b'cid="a@x"/></resource><resource uri="sip:b@x"><instance id="2" state="active" '
            b'cid="b@x"/></resource></list>')
    body = b"".join([
        b"--b\r\nContent-Type: application/rlmi+xml\r\nContent-ID: <root@x>\r\n\r\n", rlmi,
        b"\r\n--b\r\nContent-Type: application/pidf+xml\r\nContent-ID: <a@x>\r\n\r\n", good,
        b"\r\n--b\r\nContent-Type: application/pidf+xml\r\nContent-ID: <b@x>\r\n\r\n",
        laughs("presence", "urn:ietf:params:xml:ns:pidf"), b"\r\n--b--\r\n"])
    update = PresenceReader("sip:l@x").read(
        'multipart/related;type="application/rlmi+xml";start="<root@x>";boundary="b"', body)
    a, b = update.contacts
    assert a.view is not None and a.view.status == "open" and a.error is None
    assert b.view is None and ("DOCTYPE" in (b.error or "") or "entity" in (b.error or ""))
