"""Is-composing (RFC 3994): the document, hostile XML, and the two timer state machines."""

from __future__ import annotations

import datetime
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.messages.iscomposing import (
    ISCOMPOSING_NAMESPACE,
    ComposingChange,
    ComposingIndicator,
    ComposingReceiver,
    IsComposing,
    IsComposingError,
    parse_iscomposing,
)

UTC = datetime.UTC

# As RFC 3994 §6 shows it (with its schemaLocation), and as linphone sends it.
RFC_ACTIVE = b"""<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing iscomposing.xsd">
  <state>active</state>
  <contenttype>text/plain</contenttype>
  <refresh>90</refresh>
</isComposing>
"""

IDLE_WITH_LASTACTIVE = b"""<?xml version='1.0' encoding='UTF-8'?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">
  <!-- the user stopped -->
  <state>idle</state>
  <lastactive>2003-01-27T10:43:00Z</lastactive>
  <contenttype>audio</contenttype>
</isComposing>"""


# --- the document ------------------------------------------------------------------------

def test_parse_active_with_refresh() -> None:
    assert parse_iscomposing(RFC_ACTIVE) == IsComposing("active", None, "text/plain", 90)


def test_parse_idle_with_lastactive() -> None:
    indication = parse_iscomposing(IDLE_WITH_LASTACTIVE)
    assert indication.state == "idle"
    assert indication.last_active == datetime.datetime(2003, 1, 27, 10, 43, tzinfo=UTC)
    assert indication.content_type == "audio"
    assert indication.refresh is None


def test_root_without_namespace_and_extensions_are_tolerated() -> None:
    indication = parse_iscomposing(
        b"<isComposing><state> active </state>"
        b"<x:mood xmlns:x='urn:example:ext'>happy</x:mood></isComposing>")
    assert indication == IsComposing("active")


@pytest.mark.parametrize("indication", [
    IsComposing("active"),
    IsComposing("active", content_type="text/html", refresh=60),
    IsComposing("idle", last_active=datetime.datetime(2024, 5, 1, 8, 30, 15, 250000, tzinfo=UTC),
                content_type="text/plain"),
])
def test_round_trip(indication: IsComposing) -> None:
    data = indication.encode()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert ISCOMPOSING_NAMESPACE.encode() in data
    assert parse_iscomposing(data) == indication


@settings(max_examples=200, deadline=None)
@given(
    state=st.sampled_from(["active", "idle"]),
    refresh=st.none() | st.integers(1, 10**9),
    content_type=st.none() | st.sampled_from(["text/plain", "text/html", "image/png",
                                              "text/plain;charset=utf-8"]),
    last_active=st.none() | st.datetimes(
        min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2100, 1, 1),
        timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
)
def test_round_trip_property(state, refresh, content_type, last_active) -> None:
    indication = IsComposing(state, last_active, content_type, refresh)
    assert parse_iscomposing(indication.encode()) == indication


@pytest.mark.parametrize("kwargs, problem", [
    ({"state": "typing"}, "state"),
    ({"state": "active", "refresh": 0}, "refresh"),
    ({"state": "active", "refresh": -5}, "refresh"),
    ({"state": "active", "refresh": True}, "refresh"),
    ({"state": "idle", "last_active": datetime.datetime(2024, 1, 1)}, "timezone"),
    ({"state": "active", "content_type": "not a type"}, "contenttype"),
])
def test_invalid_indications_cannot_be_made(kwargs: dict, problem: str) -> None:
    with pytest.raises(IsComposingError, match=problem):
        IsComposing(**kwargs)


def doc(inner: str) -> bytes:
    return (f'<isComposing xmlns="{ISCOMPOSING_NAMESPACE}">{inner}</isComposing>').encode()


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"not xml at all", "not well-formed"),
    (b"<isComposing><state>active</state>", "not well-formed"),
    (doc("<refresh>60</refresh>"), "no <state>"),
    (doc("<state>typing</state>"), "'active' or 'idle'"),
    (doc("<state>active</state><state>idle</state>"), "more than one"),
    (doc("<state><b>active</b></state>"), "must hold text"),
    (doc("<state>active</state><refresh>soon</refresh>"), "refresh"),
    (doc("<state>active</state><refresh>0</refresh>"), "refresh"),
    (doc("<state>active</state><refresh>-1</refresh>"), "refresh"),
    (doc("<state>active</state><refresh>" + "9" * 5000 + "</refresh>"), "refresh"),
    (doc("<state>idle</state><lastactive>last tuesday</lastactive>"), "lastactive"),
    (doc("<state>idle</state><lastactive>2024-01-01T10:00:00</lastactive>"), "time zone"),
    (doc("<state>active</state><contenttype>text/plain garbage</contenttype>"), "contenttype"),
    (b'<isComposing xmlns="urn:example:other"><state>active</state></isComposing>', "root"),
    (b"<presence><state>active</state></presence>", "root"),
    (b'<?xml version="1.0" encoding="klingon"?><isComposing/>', "XML"),
    (b"<a>" * 300 + b"</a>" * 300, "XML"),  # deeper than libxml2 allows without huge_tree
    (doc("<state>active</state>" + " " * 17000), "too large"),
])
def test_malformed_documents(data: bytes, problem: str) -> None:
    with pytest.raises(IsComposingError, match=problem):
        parse_iscomposing(data)


def test_non_bytes_is_an_error() -> None:
    with pytest.raises(IsComposingError):
        parse_iscomposing("<isComposing><state>active</state></isComposing>")  # type: ignore


# --- hostile XML -------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE isComposing [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">
  <state>active</state><contenttype>&lol9;</contenttype>
</isComposing>"""


def test_billion_laughs_is_refused_without_expansion() -> None:
    # libxml2 may stop it already (entity amplification limit); if not, the DOCTYPE check does.
    with pytest.raises(IsComposingError) as info:
        parse_iscomposing(BILLION_LAUGHS)
    assert "lollol" not in str(info.value)


def test_any_doctype_is_refused_even_a_harmless_one() -> None:
    for data in (
        b'<!DOCTYPE isComposing [<!ENTITY s "active">]>'
        b'<isComposing><state>&s;</state></isComposing>',
        b"<!DOCTYPE isComposing><isComposing><state>active</state></isComposing>",
    ):
        with pytest.raises(IsComposingError, match="DOCTYPE"):
            parse_iscomposing(data)


def test_external_file_entity_is_never_read(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE isComposing [\n'
            f'  <!ENTITY xxe SYSTEM "file://{secret}">\n]>\n'
            f'<isComposing xmlns="{ISCOMPOSING_NAMESPACE}">'
            f'<state>active</state><contenttype>&xxe;</contenttype></isComposing>').encode()
    with pytest.raises(IsComposingError) as info:
        parse_iscomposing(data)
    assert "TOP-SECRET-MARKER" not in str(info.value)


def test_no_network_access_for_external_dtd_or_entity() -> None:
    # Recent libxml2 builds have no HTTP client at all; this guards the builds that do.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        for data in (
            (f'<?xml version="1.0"?>\n<!DOCTYPE isComposing SYSTEM '
             f'"http://127.0.0.1:{port}/iscomposing.dtd">\n'
             f'<isComposing xmlns="{ISCOMPOSING_NAMESPACE}"><state>active</state>'
             f'</isComposing>').encode(),
            (f'<?xml version="1.0"?>\n<!DOCTYPE isComposing [\n'
             f'  <!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/evil.dtd"> %remote;\n'
             f'  <!ENTITY net SYSTEM "http://127.0.0.1:{port}/x">\n]>\n'
             f'<isComposing xmlns="{ISCOMPOSING_NAMESPACE}"><state>active</state>'
             f'<contenttype>&net;</contenttype></isComposing>').encode(),
        ):
            with pytest.raises(IsComposingError):
                parse_iscomposing(data)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_undefined_entity_without_dtd_is_an_error() -> None:
    with pytest.raises(IsComposingError, match="not well-formed"):
        parse_iscomposing(doc("<state>&idle;</state>"))


def test_predefined_entities_and_character_references_are_fine() -> None:
    indication = parse_iscomposing(doc(
        "<state>&#97;ctive</state>"
        "<contenttype>text/plain;a=&quot;b&amp;c&quot;</contenttype>"))
    assert indication.state == "active"
    assert indication.content_type == 'text/plain;a="b&c"'


@settings(max_examples=800, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from([b"<isComposing>", b"</isComposing>", b"<state>", b"</state>",
                              b"active", b"idle", b"<refresh>", b"</refresh>", b"60", b"&amp;",
                              b"<!DOCTYPE x>", b"<!ENTITY a 'b'>", b"&a;", b"<![CDATA[",
                              b"]]>", b"\xff", b"<lastactive>", b"</lastactive>",
                              f' xmlns="{ISCOMPOSING_NAMESPACE}"'.encode()]),
             max_size=12).map(b"".join),
))
def test_fuzz_only_iscomposing_error_escapes(data: bytes) -> None:
    try:
        parse_iscomposing(data)
    except IsComposingError as exc:
        assert exc.reason


# --- sender: ComposingIndicator ----------------------------------------------------------

def test_first_keystroke_sends_active_with_refresh() -> None:
    indicator = ComposingIndicator()
    assert indicator.next_deadline() is None
    sent = indicator.typed(100.0)
    assert sent == IsComposing("active", content_type="text/plain", refresh=60)
    assert indicator.state == "active"
    # Further typing within the interval sends nothing.
    assert indicator.typed(101.0) is None
    assert indicator.typed(105.0) is None


def test_idle_after_fifteen_seconds_without_typing() -> None:
    indicator = ComposingIndicator()
    indicator.typed(100.0)
    indicator.typed(110.0)
    assert indicator.next_deadline() == 125.0  # last keystroke + 15 s
    assert indicator.tick(124.9) is None
    assert indicator.tick(125.0) == IsComposing("idle", content_type="text/plain")
    assert indicator.state == "idle"
    assert indicator.next_deadline() is None
    assert indicator.tick(200.0) is None
    # Typing again starts over with a fresh active.
    assert indicator.typed(201.0).state == "active"


def test_active_is_refreshed_before_the_interval_runs_out_while_typing() -> None:
    indicator = ComposingIndicator(refresh=60, refresh_margin=5)
    indicator.typed(0.0)
    sent = []
    now = 0.0
    while now < 130.0:  # a keystroke every 2 s for over two minutes
        now += 2.0
        for moment in (now - 1.0, now):
            deadline = indicator.next_deadline()
            assert deadline is not None
            if deadline <= moment:
                if (out := indicator.tick(deadline)) is not None:
                    sent.append((deadline, out))
        if (out := indicator.typed(now)) is not None:
            sent.append((now, out))
    assert [(t, i.state) for t, i in sent] == [(55.0, "active"), (110.0, "active")]
    assert indicator.state == "active"


def test_refresh_also_happens_on_a_keystroke_past_the_refresh_time() -> None:
    indicator = ComposingIndicator(refresh=60, refresh_margin=5, idle_timeout=30)
    indicator.typed(0.0)
    indicator.typed(29.0)
    indicator.typed(56.0)  # past 55 s: the refresh is due (nobody ticked)
    assert indicator.next_deadline() == 56.0 + 30  # refresh rescheduled at 111 s
    indicator2 = ComposingIndicator(refresh=60, refresh_margin=5, idle_timeout=30)
    indicator2.typed(0.0)
    indicator2.typed(29.0)
    assert indicator2.typed(56.0) == IsComposing("active", content_type="text/plain", refresh=60)


def test_idle_wins_when_both_timers_are_due() -> None:
    indicator = ComposingIndicator(refresh=60, refresh_margin=5, idle_timeout=15)
    indicator.typed(0.0)
    indicator.typed(50.0)
    # At 70 s both the refresh (55 s) and the idle timeout (65 s) are due: the user stopped.
    assert indicator.tick(70.0).state == "idle"


def test_sending_the_message_ends_composition_silently() -> None:
    indicator = ComposingIndicator()
    indicator.typed(0.0)
    indicator.message_sent(3.0)
    assert indicator.state == "idle"
    assert indicator.next_deadline() is None
    assert indicator.tick(100.0) is None  # no idle indication follows the message
    assert indicator.typed(4.0).state == "active"  # the next message starts a new one


def test_clearing_the_draft_sends_idle_once() -> None:
    indicator = ComposingIndicator(content_type=None)
    assert indicator.cleared(0.0) is None
    indicator.typed(1.0)
    assert indicator.cleared(2.0) == IsComposing("idle")
    assert indicator.cleared(3.0) is None


@pytest.mark.parametrize("kwargs", [{"idle_timeout": 0}, {"refresh": 0}, {"refresh": 1.5},
                                    {"refresh": 10, "refresh_margin": 10}])
def test_indicator_rejects_nonsense_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ComposingIndicator(**kwargs)


# --- receiver: ComposingReceiver ---------------------------------------------------------

def test_active_then_idle_indication() -> None:
    receiver = ComposingReceiver()
    change = receiver.indication(IsComposing("active", content_type="text/plain", refresh=60), 10.0)
    assert change == ComposingChange("active", "text/plain", None, "indication")
    assert receiver.next_deadline() == 70.0
    last = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    change = receiver.indication(IsComposing("idle", last_active=last), 20.0)
    assert change == ComposingChange("idle", "text/plain", last, "indication")
    assert receiver.next_deadline() is None


def test_active_without_refresh_expires_after_120_seconds() -> None:
    receiver = ComposingReceiver()
    receiver.indication(IsComposing("active"), 0.0)
    assert receiver.next_deadline() == 120.0
    assert receiver.tick(119.0) is None
    assert receiver.tick(120.0) == ComposingChange("idle", None, None, "timeout")
    assert receiver.state == "idle"
    assert receiver.tick(500.0) is None


def test_refresh_extends_active_without_reporting_a_change() -> None:
    receiver = ComposingReceiver()
    receiver.indication(IsComposing("active", refresh=60), 0.0)
    assert receiver.indication(IsComposing("active", refresh=60), 50.0) is None
    assert receiver.next_deadline() == 110.0
    assert receiver.tick(60.0) is None
    assert receiver.state == "active"


def test_message_arrival_ends_active() -> None:
    receiver = ComposingReceiver()
    assert receiver.message_received(0.0) is None  # already idle
    receiver.indication(IsComposing("active", content_type="image/png"), 1.0)
    assert receiver.message_received(2.0) == ComposingChange("idle", "image/png", None, "message")
    assert receiver.next_deadline() is None


def test_a_huge_refresh_is_capped() -> None:
    receiver = ComposingReceiver(max_refresh=600)
    receiver.indication(IsComposing("active", refresh=10**9), 0.0)
    assert receiver.next_deadline() == 600.0


def test_content_type_change_while_active_is_reported() -> None:
    receiver = ComposingReceiver()
    receiver.indication(IsComposing("active", content_type="text/plain"), 0.0)
    change = receiver.indication(IsComposing("active", content_type="audio"), 1.0)
    assert change is not None and change.content_type == "audio"
