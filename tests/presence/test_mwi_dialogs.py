"""Message summaries (RFC 3842) and dialog state (RFC 4235): reading, building, versions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.presence.dialog_info import (
    DIALOG_STATES,
    DialogEntry,
    DialogInfoDocument,
    DialogInfoState,
    Participant,
    build_dialog_info,
    parse_dialog_info,
)
from sipd.presence.message_summary import (
    MESSAGE_CLASSES,
    MessageCounts,
    MessageSummary,
    build_message_summary,
    parse_message_summary,
)
from sipd.presence.payload import PayloadError
from sipd.presence.reader import DialogInfoReader, MessageSummaryReader

# RFC 3842 §3.3
RFC3842 = (b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n"
           b"Voice-Message: 4/8 (1/2)\r\n\r\nTo: <alice@atlanta.example.com>\r\n"
           b"From: <bob@biloxi.example.com>\r\nSubject: carpool tomorrow?\r\n")


def test_the_rfc_example():
    summary = parse_message_summary(RFC3842)
    assert summary.waiting and summary.account == "sip:alice@vmail.example.com"
    assert summary.counts == {"voice-message": MessageCounts(4, 8, 1, 2)}
    assert summary.data() == {"waiting": True, "new": 4, "old": 8,
                              "message_account": "sip:alice@vmail.example.com"}


def test_liberal_reading():
    summary = parse_message_summary(b"\nmessages-waiting:NO\nfax-message:  1 / 2\n"
                                    b"X-Vendor: whatever\ntext-message: 3/0\n")
    assert not summary.waiting and (summary.new, summary.old) == (4, 2)
    assert parse_message_summary(b"Messages-Waiting: yes").counts == {}


@pytest.mark.parametrize("body, problem", [
    (b"Voice-Message: 1/2\r\n", "Messages-Waiting line is missing"),
    (b"Messages-Waiting: maybe\r\n", "yes or no"),
    (b"Messages-Waiting: yes\r\nVoice-Message: lots\r\n", "new/old"),
    (b"Messages-Waiting: yes\r\nno colon here\r\n", "name: value"),
    (b"Messages-Waiting: yes\xff\r\n", "UTF-8"),
    (b"Messages-Waiting: yes\r\n" + b"X: y\r\n" * 20000, "too large"),
])
def test_message_summary_refusals(body, problem):
    with pytest.raises(PayloadError, match=problem):
        parse_message_summary(body)


@settings(max_examples=100, deadline=None)
@given(waiting=st.booleans(), account=st.none() | st.just("sip:vm@example.com"),
       counts=st.dictionaries(st.sampled_from(MESSAGE_CLASSES), st.builds(
           MessageCounts, *[st.integers(0, 10**6)] * 4), max_size=3))
def test_message_summary_round_trip(waiting, account, counts):
    summary = MessageSummary(waiting, account, counts)
    assert parse_message_summary(build_message_summary(summary)) == summary


# RFC 4235 §5.2 (shortened): a call alice made, confirmed, and a partial update ending it
FULL = b"""<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"
    entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774"
      remote-tag="456g" direction="initiator">
    <state event="remote-bye" code="200">confirmed</state>
    <duration>274</duration>
    <local><identity display="Alice">sip:alice@example.com</identity>
      <target uri="sip:alice@pc33.example.com"/></local>
    <remote><identity display="Bob">sip:bob@example.org</identity>
      <target uri="sip:bobster@phone21.example.org"/></remote>
  </dialog>
</dialog-info>
"""


def dialog_partial(version: int, state: str, dialog_id: str = "as7d900as8") -> bytes:
    return (f'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" '
            f'state="partial" entity="sip:alice@example.com"><dialog id="{dialog_id}">'
            f'<state event="local-bye">{state}</state></dialog></dialog-info>').encode()


def test_dialog_info():
    document = parse_dialog_info(FULL)
    (dialog,) = document.dialogs
    assert (document.entity, document.version, document.full) == (
        "sip:alice@example.com", 0, True)
    assert (dialog.state, dialog.direction, dialog.code, dialog.duration) == (
        "confirmed", "initiator", 200, 274)
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == (
        "a84b4c76e66710", "1928301774", "456g")
    assert dialog.remote == Participant("sip:bob@example.org", "Bob",
                                        "sip:bobster@phone21.example.org")
    assert dialog.data()["remote_display"] == "Bob"


def test_dialog_versions_and_the_busy_lamp():
    calls = DialogInfoState()
    first = calls.apply(parse_dialog_info(FULL))
    assert [d.state for d in first.changed] == ["confirmed"] and calls.busy
    ringing = calls.apply(parse_dialog_info(dialog_partial(1, "early", "second")))
    assert [(d.id, d.state) for d in ringing.changed] == [("second", "early")]
    ended = calls.apply(parse_dialog_info(dialog_partial(2, "terminated")))
    assert [(d.id, d.state, d.event) for d in ended.changed] == [
        ("as7d900as8", "terminated", "local-bye")]
    assert list(calls.dialogs) == ["second"]
    assert calls.apply(parse_dialog_info(dialog_partial(2, "confirmed"))).changed == ()
    assert calls.apply(parse_dialog_info(dialog_partial(4, "confirmed"))).resync
    idle = calls.apply(parse_dialog_info(
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="9" state="full" '
        b'entity="sip:alice@example.com"/>'))
    assert [(d.id, d.state) for d in idle.changed] == [("second", "terminated")]
    assert not calls.busy


@pytest.mark.parametrize("body, problem", [
    (dialog_partial(1, "ringing"), "dialog state"),
    (b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" state="full"/>', "version"),
    (b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1"/>', "state"),
    (b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full">'
     b'<dialog><state>early</state></dialog></dialog-info>', "without id"),
])
def test_dialog_info_refusals(body, problem):
    with pytest.raises(PayloadError, match=problem):
        parse_dialog_info(body)


_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@settings(max_examples=100, deadline=None)
@given(version=st.integers(0, 10**9), full=st.booleans(), dialogs=st.lists(st.builds(
    DialogEntry, id=_word, state=st.sampled_from(DIALOG_STATES),
    direction=st.none() | st.sampled_from(["initiator", "recipient"]),
    call_id=st.none() | _word, local_tag=st.none() | _word, remote_tag=st.none() | _word,
    event=st.none() | st.sampled_from(["rejected", "local-bye", "remote-bye"]),
    code=st.none() | st.integers(100, 699), duration=st.none() | st.integers(0, 10**6),
    local=st.builds(Participant, st.none() | _word.map(lambda w: f"sip:{w}@x"),
                    st.none() | _word, st.none() | _word.map(lambda w: f"sip:{w}@h")).filter(
        lambda p: p.identity is not None or p.display is None),  # a display needs an identity
    remote=st.just(Participant("sip:bob@y", "Bob"))), max_size=4, unique_by=lambda d: d.id))
def test_dialog_info_round_trip(version, full, dialogs):
    document = DialogInfoDocument("sip:alice@example.com", version, full, tuple(dialogs))
    assert parse_dialog_info(build_dialog_info(document)) == document


def test_readers_check_the_type_and_take_empty_bodies():
    mwi = MessageSummaryReader()
    assert mwi.read(None, b"") is None
    assert mwi.read("application/simple-message-summary", RFC3842).new == 4
    with pytest.raises(PayloadError, match="cannot read a text/plain body"):
        mwi.read("text/plain", RFC3842)
    with pytest.raises(PayloadError, match="without Content-Type"):
        mwi.read(None, RFC3842)
    calls = DialogInfoReader()
    assert calls.read("application/dialog-info+xml", FULL).changed[0].state == "confirmed"
    assert calls.read(None, b"").changed == ()
    with pytest.raises(PayloadError, match="cannot read"):
        calls.read("application/pidf+xml", FULL)
