"""Resource list notifications (RFC 4662): MIME multipart/related bodies, RLMI documents with
versions, nested lists, and one presence state per contact out of it all."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.presence import multipart as mp
from sipd.presence.multipart import BodyPart, build_multipart, parse_multipart
from sipd.presence.payload import PayloadError
from sipd.presence.reader import PresenceReader
from sipd.presence.rlmi import parse_rlmi

BOUNDARY = "50UBfW7LSCVLtggUPe5z"
LIST_TYPE = (f'multipart/related;type="application/rlmi+xml";'
             f'start="<nXYxAE@pres.vancouver.example.com>";boundary="{BOUNDARY}"')


def pidf(entity: str, basic: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<presence '
            f'xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">\n  <tuple id="t1">'
            f"<status><basic>{basic}</basic></status></tuple>\n</presence>\n")


def rlmi(version: int, full: bool, resources: str, uri: str = "sip:adam-friends@"
         "pres.vancouver.example.com") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<list xmlns="urn:ietf:params:xml:ns:rlmi" '
            f'uri="{uri}" version="{version}" fullState="{str(full).lower()}">\n'
            f'  <name xml:lang="en">Buddy List at COM</name>\n{resources}</list>\n')


def part(cid: str, content_type: str, body: str, boundary: str = BOUNDARY) -> str:
    return (f"--{boundary}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n"
            f"Content-Type: {content_type}\r\n\r\n{body}\r\n")


# After RFC 4662 §6: four resources, two with state, one not subscribed yet, one a list
RFC_RESOURCES = """  <resource uri="sip:bob@vancouver.example.com"><name>Bob Smith</name>
    <instance id="juwigmtboe" state="active" cid="bUZBsM@pres.vancouver.example.com"/>
  </resource>
  <resource uri="sip:dave@vancouver.example.com"><name>Dave Jones</name>
    <instance id="hqzsuxtfyq" state="active" cid="ZvSvkz@pres.vancouver.example.com"/>
  </resource>
  <resource uri="sip:ed@dallas.example.net"><name>Ed at NET</name></resource>
  <resource uri="sip:adam-friends@stockholm.example.org">
    <name xml:lang="de">Meine Freunde an ORG</name>
    <instance id="cmpqweitlp" state="pending"/>
  </resource>
"""
RFC_BODY = (
    "preamble, to be ignored\r\n"
    + part("nXYxAE@pres.vancouver.example.com", 'application/rlmi+xml;charset="UTF-8"',
           rlmi(1, True, RFC_RESOURCES))
    + part("bUZBsM@pres.vancouver.example.com", 'application/pidf+xml;charset="UTF-8"',
           pidf("sip:bob@vancouver.example.com", "open"))
    + part("ZvSvkz@pres.vancouver.example.com", 'application/pidf+xml;charset="UTF-8"',
           pidf("sip:dave@vancouver.example.com", "closed"))
    + f"--{BOUNDARY}--\r\nepilogue\r\n").encode()


def contacts(update):
    return [(c.contact, c.state, c.reason, c.view.status if c.view else None)
            for c in update.contacts]


def test_the_rfc_example_gives_one_state_per_contact():
    reader = PresenceReader("sip:adam-friends@pres.vancouver.example.com")
    update = reader.read(LIST_TYPE, RFC_BODY)
    assert not update.resync
    assert contacts(update) == [
        ("sip:bob@vancouver.example.com", "active", None, "open"),
        ("sip:dave@vancouver.example.com", "active", None, "closed"),
        ("sip:ed@dallas.example.net", "pending", None, None),
        ("sip:adam-friends@stockholm.example.org", "pending", None, None),
    ]


def partial_body(version: int, resources: str, parts: str = "") -> bytes:
    return (part("nXYxAE@pres.vancouver.example.com", "application/rlmi+xml",
                 rlmi(version, False, resources)) + parts + f"--{BOUNDARY}--\r\n").encode()


def test_partial_notifications_and_versions():
    reader = PresenceReader("sip:adam-friends@pres.vancouver.example.com")
    reader.read(LIST_TYPE, RFC_BODY)
    changed = reader.read(LIST_TYPE, partial_body(2, (
        '<resource uri="sip:dave@vancouver.example.com"><instance id="hqzsuxtfyq" '
        'state="active" cid="d2@x"/></resource>'),
        part("d2@x", "application/pidf+xml", pidf("sip:dave@vancouver.example.com", "open"))))
    assert contacts(changed) == [("sip:dave@vancouver.example.com", "active", None, "open")]
    rejected = reader.read(LIST_TYPE, partial_body(3, (
        '<resource uri="sip:bob@vancouver.example.com"><instance id="juwigmtboe" '
        'state="terminated" reason="rejected"/></resource>')))
    assert contacts(rejected) == [("sip:bob@vancouver.example.com", "terminated", "rejected",
                                   None)]
    assert "sip:bob@vancouver.example.com" not in reader.lists.resources
    # repeated, then a gap
    assert reader.read(LIST_TYPE, partial_body(3, "")).contacts == ()
    assert reader.read(LIST_TYPE, partial_body(5, "")).resync


def test_a_partial_notification_first_asks_for_full_state():
    assert PresenceReader("sip:l@x").read(LIST_TYPE, partial_body(7, "")).resync


def test_a_new_full_state_reports_who_left():
    reader = PresenceReader("sip:adam-friends@pres.vancouver.example.com")
    reader.read(LIST_TYPE, RFC_BODY)
    body = (part("nXYxAE@pres.vancouver.example.com", "application/rlmi+xml", rlmi(
        9, True, '<resource uri="sip:ed@dallas.example.net"/>')) + f"--{BOUNDARY}--").encode()
    update = reader.read(LIST_TYPE, body)
    assert sorted(c.contact for c in update.contacts if c.state == "terminated") == [
        "sip:adam-friends@stockholm.example.org", "sip:bob@vancouver.example.com",
        "sip:dave@vancouver.example.com"]


def test_a_nested_list_is_flattened():
    inner_boundary = "inner-b"
    inner = (part("in-root@x", "application/rlmi+xml", rlmi(
        0, True, '<resource uri="sip:olga@stockholm.example.org"><instance id="o" '
                 'state="active" cid="olga@x"/></resource>',
        uri="sip:adam-friends@stockholm.example.org"), inner_boundary)
             + part("olga@x", "application/pidf+xml",
                    pidf("sip:olga@stockholm.example.org", "open"), inner_boundary)
             + f"--{inner_boundary}--\r\n")
    outer = (part("nXYxAE@pres.vancouver.example.com", "application/rlmi+xml", rlmi(
        1, True, '<resource uri="sip:adam-friends@stockholm.example.org"><instance id="l" '
                 'state="active" cid="sub@x"/></resource>'))
             + part("sub@x", f'multipart/related;type="application/rlmi+xml";'
                             f'start="<in-root@x>";boundary="{inner_boundary}"', inner)
             + f"--{BOUNDARY}--\r\n").encode()
    update = PresenceReader("sip:adam-friends@pres.vancouver.example.com").read(
        LIST_TYPE, outer)
    assert contacts(update) == [
        ("sip:olga@stockholm.example.org", "active", None, "open"),
        ("sip:adam-friends@stockholm.example.org", "active", None, None)]


def test_a_single_document_is_the_target_s_state():
    update = PresenceReader("sip:bob@x").read("application/pidf+xml",
                                              pidf("sip:bob@x", "open").encode())
    assert contacts(update) == [("sip:bob@x", "active", None, "open")]
    with pytest.raises(PayloadError, match="cannot read a text/plain body"):
        PresenceReader("sip:bob@x").read("text/plain", b"hi")
    with pytest.raises(PayloadError, match="without Content-Type"):
        PresenceReader("sip:bob@x").read(None, b"hi")


def test_rlmi_document():
    document = parse_rlmi(rlmi(4, False, RFC_RESOURCES).encode())
    assert (document.version, document.full, document.name) == (4, False, "Buddy List at COM")
    assert document.resources[0].instances[0].cid == "bUZBsM@pres.vancouver.example.com"
    assert document.resources[2].instances == ()
    with pytest.raises(PayloadError, match="fullState"):
        parse_rlmi(b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x" version="1"/>')
    with pytest.raises(PayloadError, match="version"):
        parse_rlmi(b'<list xmlns="urn:ietf:params:xml:ns:rlmi" version="-1" fullState="1"/>')
    with pytest.raises(PayloadError, match="instance state"):
        parse_rlmi(rlmi(1, True, '<resource uri="sip:a@b"><instance id="1" state="on"/>'
                                 '</resource>').encode())


# --- the multipart parser ------------------------------------------------------------------------

def test_multipart_details():
    body = (b"--b\nContent-Type: text/plain\nContent-ID: <one@X.example>\n\nfirst\n"
            b"--b\n\nno headers\n"
            b"--b   \r\nContent-Transfer-Encoding: base64\r\nContent-Type: application/x\r\n"
            b"\r\n" + base64.b64encode(b"\x00binary\xff") + b"\r\n"
            b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n"
            b"--b\r\nContent-Type: application/y;\r\n a=1\r\n\r\nnot at a line start: --b--"
            b"\r\n--b--")
    parsed = parse_multipart(body, 'multipart/related;boundary=b;start="<one@x.example>"')
    first, bare, binary, qp, folded = parsed.parts
    assert first.body == b"first" and parsed.root is first
    assert parsed.part_by_cid("cid:one@x.example") is first  # case folded as a last resort
    assert bare.headers == () and bare.body == b"no headers" and bare.mime == "text/plain"
    assert binary.body == b"\x00binary\xff" and qp.body == "café".encode()
    assert folded.header("content-type") == "application/y; a=1"
    assert folded.body == b"not at a line start: --b--"


@pytest.mark.parametrize("body, content_type, problem", [
    (b"--b\r\n\r\nx\r\n--b--", "multipart/related", "boundary"),
    (b"--b\r\n\r\nx\r\n--b--", 'multipart/related;boundary=" "', "boundary"),
    (b"--b\r\n\r\nx\r\n--b--", "application/pidf+xml;boundary=b", "not a multipart"),
    (b"no boundary here", "multipart/related;boundary=b", "does not occur"),
    (b"--b\r\n\r\nx\r\n", "multipart/related;boundary=b", "close delimiter"),
    (b"--bX\r\n\r\nx\r\n--b--", "multipart/related;boundary=b", "trailing text"),
    (b"--b--", "multipart/related;boundary=b", "no parts"),
    (b"--b\r\nno colon\r\n\r\nx\r\n--b--", "multipart/related;boundary=b", "name: value"),
    (b"--b\r\nContent-Type: a/b\r\nx\r\n--b--", "multipart/related;boundary=b", "empty line"),
    ("--b\r\nX-Ü: 1\r\n\r\nx\r\n--b--".encode(), "multipart/related;boundary=b", "ASCII"),
    (b"--b\r\nContent-Transfer-Encoding: x-uu\r\n\r\nx\r\n--b--", "multipart/related;boundary=b",
     "Content-Transfer-Encoding"),
    (b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n--b--",
     "multipart/related;boundary=b", "base64"),
    (b"--b\r\nContent-ID: <a>\r\n\r\nx\r\n--b--", 'multipart/related;boundary=b;start="<z>"',
     "start Content-ID"),
    (b"--b\r\n" + b"X-A: 1\r\n" * 40 + b"\r\nx\r\n--b--", "multipart/related;boundary=b",
     "more than 32 headers"),
])
def test_multipart_refusals(body, content_type, problem):
    with pytest.raises(PayloadError, match=problem):
        parse_multipart(body, content_type).root  # noqa: B018 - reading it raises


def test_multipart_limits(monkeypatch):
    many = b"".join(b"--b\r\n\r\nx\r\n" for _ in range(mp.MAX_PARTS + 1)) + b"--b--"
    with pytest.raises(PayloadError, match="more than"):
        parse_multipart(many, "multipart/related;boundary=b")
    with pytest.raises(PayloadError, match="nested more than"):
        parse_multipart(b"--b\r\n\r\nx\r\n--b--", "multipart/related;boundary=b",
                        depth=mp.MAX_DEPTH + 1)


_header_value = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30)


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(["Content-Type", "Content-ID", "X-Note"]),
                       _header_value), max_size=3),
    st.binary(max_size=200)), min_size=1, max_size=6))
def test_what_build_multipart_makes_parses_back(parts):
    originals = [BodyPart(tuple(headers), body) for headers, body in parts]
    content_type, body = build_multipart(originals, params=(("type", "application/rlmi+xml"),))
    parsed = parse_multipart(body, content_type)
    assert [p.body for p in parsed.parts] == [p.body for p in originals]
    assert [p.headers for p in parsed.parts] == [p.headers for p in originals]
    assert parsed.content_type.params.get_unquoted("type") == "application/rlmi+xml"
