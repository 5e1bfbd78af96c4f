"""RFC 4475 torture tests: each of the 49 messages, parsed as a UDP datagram.

Valid messages (§3.1.1, §3.3, §3.4) must parse with the right details; invalid ones (§3.1.2)
must raise SipParseError with the status the RFC asks for (or be dropped, for responses).
§3.3 messages are well-formed: what to answer them is checked with
`validate_request_for_uas`, as an endpoint (UA, not a registrar or proxy) would.
"""

from __future__ import annotations

import pytest

from sipd.sip.builder import error_response
from sipd.sip.errors import SipParseError
from sipd.sip.header_values import MAX_DELTA_SECONDS
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.parser import (
    KeepAlivePing,
    KeepAlivePong,
    MessageReceived,
    MessageRejected,
    StreamBroken,
    StreamFramer,
)
from sipd.sip.transaction import server_key
from sipd.sip.uri import AbsoluteUri, SipUri
from sipd.sip.validation import validate_request_for_uas

from .helpers import RFC4475, torture

ALL_FILES = sorted(p.stem for p in RFC4475.glob("*.dat"))

# An endpoint that is no registrar: REGISTER is known but not allowed here (405).
UA_METHODS = {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "SUBSCRIBE", "NOTIFY",
              "REFER", "UPDATE", "INFO", "PRACK"}


def parse(name: str):
    return parse_datagram(torture(name))


def test_all_49_messages_are_here_and_byte_exact():
    assert len(ALL_FILES) == 49
    # A few sizes from the RFC archive: line ends were not converted.
    assert len(torture("wsinv")) == 1001
    assert len(torture("mpart01")) == 1290
    assert len(torture("baddn")) == 331


# --- 3.1.1 valid messages ---------------------------------------------------------------------

def check_wsinv(m: Request):
    assert m.method == "INVITE"
    assert m.uri.params.names() == ["unknownparam"]
    assert m.to.tag == "1918181833n" and str(m.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    vias = m.vias
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    [contact] = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params.names() == ["newparam", "secondparam", "q"]
    assert contact.params.get("newparam") == "newvalue" and contact.q == 0.33
    [route] = m.routes
    assert route.uri.lr and route.uri.params.get("unknownwith") == "value"
    assert m.content_type.mime == "application/sdp" and len(m.body) == 150


def check_intmeth(m: Request):
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq.method == m.method and m.cseq.number == 139122385
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.params.get_unquoted("fromParam''~+*_!.-%") == "работающий"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.max_forwards == 255


def check_esc01(m: Request):
    # Escapes decoded once: the user part holds a colon and an at-sign.
    assert m.uri.user == "sips:user@example.com" and m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.to.uri == SipUri("example.com", "user")
    assert m.from_.uri.user == "I have spaces"
    [contact] = m.contacts
    assert contact.uri.user == "caller"
    assert contact.uri.params.items() == [("lr", None), ("name", "value%41")]
    assert contact.uri.params.get("name") != "valueA"


def check_escnull(m: Request):
    assert m.to.uri.user == "null-\x00-null"
    first, second = m.contacts
    assert first.uri.user == "\x00" and second.uri.user == "\x00\x00"
    assert first.uri != second.uri


def check_esc02(m: Request):
    assert m.method == "RE%47IST%45R" and m.method != "REGISTER"
    assert [str(c.uri) for c in m.contacts] == ["sip:alias1@host1.example.com",
                                                 "sip:alias3@host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.to.display_name == "%Z%45"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"


def check_lwsdisp(m: Request):
    assert m.from_.display_name == "caller" and m.from_.uri.user == "caller"
    assert m.from_.tag == "323"


def check_longreq(m: Request):
    assert m.to.display_name.startswith("I have a user name of extremeextreme")
    assert m.to.uri.port == 6000 and len(m.to.uri.params) == 3
    assert m.from_.tag.startswith("12982982982")
    assert len(m.vias) == 34
    assert m.vias[-1].received == "192.0.2.5"
    assert m.headers.count("Via") == 34 and len(m.body) == 150
    assert len(m.headers.get("Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLong"
                             "LongLongLongLongLong-Name")) > 200


def check_dblreq(m: Request):
    assert m.method == "REGISTER" and m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def check_semiuri(m: Request):
    assert m.uri.user == "user;par=u@example.net" and m.uri.host == "example.com"
    assert not m.uri.params
    assert [t.mime for t in m.accept] == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed",
        "message/sip", "message/sipfrag"]


def check_transports(m: Request):
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def check_mpart01(m: Request):
    assert m.method == "MESSAGE"
    assert m.content_type.mime == "multipart/mixed"
    assert m.content_type.params.get("boundary") == "7a9cbec02ceef655"
    assert len(m.body) == 553 and b"\x00" in m.body
    assert m.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert m.body.endswith(b"--7a9cbec02ceef655--\r\n")


def check_unreason(m: Response):
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(m.body) == 154


def check_noreason(m: Response):
    assert (m.status, m.reason) == (100, "")


VALID_3_1_1 = {
    "wsinv": check_wsinv, "intmeth": check_intmeth, "esc01": check_esc01,
    "escnull": check_escnull, "esc02": check_esc02, "lwsdisp": check_lwsdisp,
    "longreq": check_longreq, "dblreq": check_dblreq, "semiuri": check_semiuri,
    "transports": check_transports, "mpart01": check_mpart01, "unreason": check_unreason,
    "noreason": check_noreason,
}


@pytest.mark.parametrize("name", sorted(VALID_3_1_1))
def test_valid_message_parses_with_its_details(name):
    message = parse(name)
    VALID_3_1_1[name](message)


@pytest.mark.parametrize("name", sorted(VALID_3_1_1))
def test_valid_message_survives_a_serialisation_round_trip(name):
    message = parse(name)
    again = parse_datagram(message.to_bytes())
    assert type(again) is type(message)
    assert list(again.headers) == list(message.headers)
    assert again.body == message.body
    VALID_3_1_1[name](again)


# --- 3.1.2 invalid messages ------------------------------------------------------------------

# name -> (status to answer, or None to drop the response; a word of the error's detail)
INVALID_3_1_2 = {
    "badinv01": (400, "Via"),
    "clerr": (400, "larger than"),
    "ncl": (400, "negative"),
    "scalar02": (400, "CSeq"),
    "scalarlg": (None, "CSeq"),
    "quotbal": (400, "unterminated quoted string"),
    "ltgtruri": (400, "Request-URI"),
    "lwsruri": (400, "Request-Line"),
    "lwsstart": (400, "Request-Line"),
    "trws": (400, "Request-Line"),
    "escruri": (400, "headers"),
    "regbadct": (400, "Contact"),
    "badaspec": (400, "whitespace inside <...>"),
    "baddn": (400, "empty line"),  # the archive's copy never ends its header section
    "badvers": (505, "version"),
    "bigcode": (None, "status code"),
}


@pytest.mark.parametrize("name", sorted(INVALID_3_1_2))
def test_invalid_message_raises_parse_error(name):
    status, word = INVALID_3_1_2[name]
    with pytest.raises(SipParseError) as info:
        parse(name)
    error = info.value
    assert error.status == status
    assert word.lower() in error.detail.lower()
    answer = error_response(error)
    if status is None:
        assert answer is None and not error.is_request
    else:
        # Requests are answered, copying Via/From/To/Call-ID/CSeq even when malformed.
        assert answer is not None and answer.status == status
        assert answer.headers.get("Call-ID") == error.headers.get("Call-ID")
        assert answer.headers.get_all("Via") == error.headers.get_all("Via")
        assert answer.headers.get("CSeq") == error.headers.get("CSeq")


def test_baddn_with_the_missing_empty_line_added_fails_on_its_display_name():
    # The RFC's point for this message; the archive copy lacks the final CRLF (README).
    with pytest.raises(SipParseError) as info:
        parse_datagram(torture("baddn") + b"\r\n")
    assert info.value.status == 400 and "From" in info.value.detail
    assert error_response(info.value).status == 400


def test_baddate_parses_but_its_date_is_rejected_when_read():
    # §3.1.2.12: reject only if the Date matters; a UA ignores it, so parsing succeeds.
    message = parse("baddate")
    with pytest.raises(SipParseError, match="GMT"):
        message.date  # noqa: B018 - parses
    assert validate_request_for_uas(message, supported_methods=UA_METHODS) is None


def test_mismatch_messages_parse_and_are_rejected_by_validation():
    mismatch01 = validate_request_for_uas(parse("mismatch01"), supported_methods=UA_METHODS)
    assert mismatch01.status == 400
    mismatch02 = validate_request_for_uas(parse("mismatch02"), supported_methods=UA_METHODS)
    assert mismatch02.status == 501 and mismatch02.headers[0][0] == "Allow"


def test_clerr_and_ncl_on_a_stream_break_the_connection():
    for name in ("ncl", "mcl01"):
        events = StreamFramer().receive_data(torture(name))
        assert len(events) == 1 and isinstance(events[0], StreamBroken), name
        assert events[0].error.fatal and error_response(events[0].error).status == 400
    # clerr over TCP: wait for the rest of the body, which never comes.
    framer = StreamFramer()
    assert framer.receive_data(torture("clerr")) == []
    assert framer.buffered == len(torture("clerr"))


# --- 3.2 transaction layer -------------------------------------------------------------------

def test_badbranch_falls_back_to_rfc2543_matching():
    message = parse("badbranch")
    assert message.top_via.branch == "z9hG4bK"
    key = server_key(message)
    assert key[0] == "2543"


# --- 3.3 application-layer semantics ---------------------------------------------------------

# name -> expected (status, reason word) from validate_request_for_uas for an endpoint, or None.
APPLICATION_3_3 = {
    "insuf": (400, "Missing"),
    "unkscm": (416, "Scheme"),
    "novelsc": (416, "Scheme"),
    "unksm2": (405, "Not Allowed"),  # REGISTER at an endpoint
    "bext01": (420, "Extension"),
    "invut": (415, "Media Type"),
    "regaut01": (405, "Not Allowed"),
    "multi01": (400, "Multiple"),
    "zeromf": None,  # an endpoint processes Max-Forwards 0
    "cparam01": (405, "Not Allowed"),
    "cparam02": (405, "Not Allowed"),
    "regescrt": (405, "Not Allowed"),
    "sdp01": (406, "Acceptable"),
}


@pytest.mark.parametrize("name", sorted(APPLICATION_3_3))
def test_application_level_answer(name):
    message = parse(name)
    assert isinstance(message, Request)
    rejection = validate_request_for_uas(message, supported_methods=UA_METHODS)
    expected = APPLICATION_3_3[name]
    if expected is None:
        assert rejection is None
    else:
        assert (rejection.status, expected[1] in rejection.reason) == (expected[0], True)


def test_bext01_lists_every_unsupported_require_option():
    rejection = validate_request_for_uas(parse("bext01"), supported_methods=UA_METHODS)
    assert rejection.headers == [("Unsupported", "nothingSupportsThis, nothingSupportsThisEither")]


def test_invut_and_intmeth_and_esc02_answers_carry_accept_or_allow():
    invut = validate_request_for_uas(parse("invut"), supported_methods=UA_METHODS)
    assert invut.headers == [("Accept", "application/sdp")]
    for name in ("intmeth", "esc02"):
        rejection = validate_request_for_uas(parse(name), supported_methods=UA_METHODS)
        assert rejection.status == 501
        assert rejection.headers == [("Allow", ", ".join(sorted(UA_METHODS)))]


def test_registrar_accepts_the_register_messages_and_keeps_contact_params_apart():
    registrar = UA_METHODS | {"REGISTER"}
    for name in ("cparam01", "cparam02", "regescrt", "regaut01"):
        assert validate_request_for_uas(parse(name), supported_methods=registrar) is None, name
    # cparam01: `unknownparam` is a header (contact) parameter, not a URI parameter.
    [contact] = parse("cparam01").contacts
    assert "unknownparam" in contact.params and not contact.uri.params
    # cparam02: inside <> it is a URI parameter.
    [contact] = parse("cparam02").contacts
    assert "unknownparam" in contact.uri.params and not contact.params
    # regescrt: the escaped Route stays a header of the contact URI.
    [contact] = parse("regescrt").contacts
    assert contact.uri.headers == [("Route", "<sip:sip.example.com>")]
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def test_unknown_schemes_parse_as_opaque_uris():
    assert parse("unkscm").uri == AbsoluteUri("nobodyKnowsThisScheme", "totallyopaquecontent")
    assert str(parse("novelsc").uri) == "soap.beep://192.0.2.103:3002"
    unksm2 = parse("unksm2")
    assert str(unksm2.to.uri) == "isbn:2983792873"
    assert str(unksm2.from_.uri) == "http://www.example.com" and unksm2.from_.tag == "3234233"
    assert str(unksm2.contacts[0].uri) == "name:John_Smith"


def test_mcl01_multiple_content_length_is_an_error():
    # §3.3.9: treated like an invalid Content-Length, so already at parse time.
    with pytest.raises(SipParseError, match="Content-Length") as info:
        parse("mcl01")
    assert info.value.status == 400 and error_response(info.value).status == 400


def test_bcast_response_parses():
    message = parse("bcast")
    assert isinstance(message, Response) and message.status == 200
    assert message.vias[1].host == "255.255.255.255"


def test_regaut01_authorization_scheme_is_kept_as_is():
    assert parse("regaut01").headers.get("Authorization") == \
        "NoOneKnowsThisScheme opaque-data=here"


def test_scalar02_oversized_expiries_would_be_clamped():
    # Were the CSeq valid, Expires of 10**100 would read as the largest delta-seconds.
    data = torture("scalar02").replace(b"36893488147419103232", b"1")
    message = parse_datagram(data)
    assert message.expires == MAX_DELTA_SECONDS
    assert message.contacts[0].expires == 280297596632815 or \
        message.contacts[0].expires == MAX_DELTA_SECONDS
    assert message.max_forwards == 300


# --- 3.4 backward compatibility --------------------------------------------------------------

def test_inv2543_parses_with_body_up_to_the_end_of_the_datagram():
    message = parse("inv2543")
    assert message.top_via.branch is None and message.from_.tag is None
    assert message.max_forwards is None and "Content-Length" not in message.headers
    assert message.body.startswith(b"v=0") and len(message.body) == 105
    # Without <>, `;user=phone` belongs to the To header; inside <> (From) to the URI.
    assert message.to.params.get("user") == "phone" and not message.to.uri.params
    assert message.from_.uri.params.get("user") == "phone"
    assert validate_request_for_uas(message, supported_methods=UA_METHODS) is None
    assert server_key(message)[0] == "2543"


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_message_on_a_stream_gives_only_framer_events(name):
    data = torture(name)
    events = StreamFramer().receive_data(data + b"\r\n" if name == "baddn" else data)
    if name == "inv2543":
        # No Content-Length: fine in a datagram, but a stream cannot be framed without it.
        [event] = events
        assert isinstance(event, StreamBroken) and "Content-Length" in event.error.detail
        return
    assert all(isinstance(e, (MessageReceived, MessageRejected, StreamBroken, KeepAlivePing,
                              KeepAlivePong)) for e in events)
    if name in VALID_3_1_1:
        assert isinstance(events[0], MessageReceived)
        VALID_3_1_1[name](events[0].message)
    if name in INVALID_3_1_2 and name != "clerr":  # clerr waits for a body that never comes
        assert not isinstance(events[0], MessageReceived)
