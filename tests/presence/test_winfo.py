"""Watcher information (RFC 3857/3858): documents, full and partial state, versions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.presence.payload import PayloadError
from sipd.presence.reader import WatcherInfoReader
from sipd.presence.winfo import (
    WATCHER_STATUSES,
    Watcher,
    WatcherInfoDocument,
    WatcherInfoState,
    WatcherList,
    build_watcherinfo,
    parse_watcherinfo,
)

# RFC 3858 §5
FULL = b"""<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
  <watcher-list resource="sip:professor@example.net" package="presence">
    <watcher status="active" id="8ajksjda7s" duration-subscribed="509"
        event="approved">sip:userA@example.net</watcher>
    <watcher status="pending" id="hh8juja87s997-ass7" display-name="Mr. Subscriber"
        event="subscribe">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>
"""


def partial(version: int, *watchers: str) -> bytes:
    return (f'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="{version}" '
            f'state="partial"><watcher-list resource="sip:professor@example.net" '
            f'package="presence">{"".join(watchers)}</watcher-list></watcherinfo>').encode()


def test_the_rfc_example():
    document = parse_watcherinfo(FULL)
    assert (document.version, document.full) == (0, True)
    a, b = document.lists[0].watchers
    assert (a.uri, a.status, a.event, a.duration) == ("sip:userA@example.net", "active",
                                                      "approved", 509)
    assert (b.status, b.display_name, b.resource, b.package) == (
        "pending", "Mr. Subscriber", "sip:professor@example.net", "presence")
    assert b.data()["watcher"] == "sip:userB@example.org"


def test_full_then_partial_updates():
    state = WatcherInfoState()
    first = state.apply(parse_watcherinfo(FULL))
    assert [w.status for w in first.changed] == ["active", "pending"] and not first.resync
    approved = state.apply(parse_watcherinfo(partial(
        1, '<watcher status="active" id="hh8juja87s997-ass7" event="approved">'
           'sip:userB@example.org</watcher>')))
    assert [(w.uri, w.status, w.event) for w in approved.changed] == [
        ("sip:userB@example.org", "active", "approved")]
    gone = state.apply(parse_watcherinfo(partial(
        2, '<watcher status="terminated" id="8ajksjda7s" event="timeout">'
           'sip:userA@example.net</watcher>')))
    assert [(w.uri, w.status) for w in gone.changed] == [("sip:userA@example.net",
                                                          "terminated")]
    assert [w.uri for w in state.watchers.values()] == ["sip:userB@example.org"]
    # the same version again, an older one: nothing
    assert state.apply(parse_watcherinfo(partial(2))).changed == ()
    assert state.apply(parse_watcherinfo(partial(1))).changed == ()


def test_a_gap_or_a_partial_first_asks_for_full_state():
    assert WatcherInfoState().apply(parse_watcherinfo(partial(3))).resync
    state = WatcherInfoState()
    state.apply(parse_watcherinfo(FULL))
    assert state.apply(parse_watcherinfo(partial(2))).resync
    assert state.version == 0


def test_a_new_full_state_reports_who_left():
    state = WatcherInfoState()
    state.apply(parse_watcherinfo(FULL))
    update = state.apply(parse_watcherinfo(
        b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="5" state="full">'
        b'<watcher-list resource="sip:professor@example.net" package="presence">'
        b'<watcher status="pending" id="hh8juja87s997-ass7" event="subscribe">'
        b'sip:userB@example.org</watcher></watcher-list></watcherinfo>'))
    assert [(w.uri, w.status) for w in update.changed] == [("sip:userA@example.net",
                                                            "terminated")]


@pytest.mark.parametrize("body, problem", [
    (b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" state="full"/>', "version"),
    (b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="x" state="full"/>',
     "not a number"),
    (b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="1" state="all"/>',
     "state"),
    (partial(1, '<watcher status="happy" id="a">sip:a@b</watcher>'), "status"),
    (partial(1, '<watcher status="active">sip:a@b</watcher>'), "without id"),
])
def test_refusals(body, problem):
    with pytest.raises(PayloadError, match=problem):
        parse_watcherinfo(body)


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(version=st.integers(0, 2**31), full=st.booleans(),
       watchers=st.lists(st.tuples(_token, st.sampled_from(sorted(WATCHER_STATUSES)),
                                   st.sampled_from(["subscribe", "approved", "timeout"]),
                                   st.none() | st.text(max_size=20).filter(
                                       lambda t: t.strip() == t and t.isprintable())),
                         max_size=6, unique_by=lambda w: w[0]))
def test_what_we_build_reads_back(version, full, watchers):
    document = WatcherInfoDocument(version, full, (WatcherList("sip:me@x", "presence", tuple(
        Watcher(id=i, uri=f"sip:{i}@example.com", status=s, event=e, display_name=d or None,
                resource="sip:me@x", package="presence") for i, s, e, d in watchers)),))
    assert parse_watcherinfo(build_watcherinfo(document)) == document


def test_the_reader_checks_the_type():
    reader = WatcherInfoReader()
    assert reader.read(None, b"").changed == ()
    assert len(reader.read("application/watcherinfo+xml", FULL).changed) == 2
    with pytest.raises(PayloadError, match="cannot read a application/pidf\\+xml body"):
        reader.read("application/pidf+xml", FULL)
