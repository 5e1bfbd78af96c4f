"""The MSRP core's refuse_incoming (added for file transfer): the receiver gives a message up
after its chunks were answered 200 (a full disk); the sender learns it from a failure REPORT,
and later chunks are answered 413."""

from __future__ import annotations

from sipd.msrp.events import (
    ChunkReceived,
    MessageAnswered,
    MessageDelivered,
    MessageFailed,
    ReportReceived,
)
from tests.msrp.helpers import Pair


def test_a_refused_message_fails_at_the_sender_with_the_reason():
    pair = Pair(deliver_chunks=True, chunk_size=1000)
    message_id = pair.alice.send_message(b"x" * 1000, "application/octet-stream")
    pair.pump()
    assert pair.of(pair.bob_events, ChunkReceived)
    pair.bob.refuse_incoming(message_id, 413, "disk full (No space left on device)")
    pair.pump()
    failed = pair.of(pair.alice_events, MessageFailed)
    reports = pair.of(pair.alice_events, ReportReceived)
    assert reports and reports[0].status.code == 413
    assert failed and failed[0].code == 413 and "disk full" in failed[0].reason


def test_later_chunks_of_a_refused_message_get_413():
    pair = Pair(deliver_chunks=True, chunk_size=100)
    message_id = pair.alice.send_message(b"y" * 1000, "application/octet-stream")
    # the first chunk only, then the refusal, then the rest
    pair.bob.receive_data(pair.alice.data_to_send(0.0, limit=50), 0.0)
    pair.bob.refuse_incoming(message_id, 413, "no room")
    pair.pump()
    chunks = pair.of(pair.bob.events(), ChunkReceived) + pair.of(pair.bob_events, ChunkReceived)
    assert sum(len(c.data) for c in chunks) < 1000
    failed = pair.of(pair.alice_events, MessageFailed)
    assert len(failed) == 1 and failed[0].code == 413 and failed[0].reason == "no room"


def test_the_owner_confirms_a_stored_message():
    pair = Pair(deliver_chunks=True, owner_confirms=True, chunk_size=300)
    message_id = pair.alice.send_message(b"z" * 1000, "application/octet-stream",
                                         success_report=True)
    pair.pump()
    assert sum(len(c.data) for c in pair.of(pair.bob_events, ChunkReceived)) == 1000
    assert not pair.of(pair.alice_events, MessageDelivered)  # stored? not yet said
    assert pair.bob.confirm_incoming(message_id)
    assert not pair.bob.confirm_incoming(message_id)
    pair.pump()
    delivered = pair.of(pair.alice_events, MessageDelivered)
    assert len(delivered) == 1 and delivered[0].by_report


def test_refusing_a_complete_unconfirmed_message_reports_its_size():
    pair = Pair(deliver_chunks=True, owner_confirms=True)
    message_id = pair.alice.send_message(b"z" * 10, "text/plain", success_report=True)
    pair.pump()
    pair.bob.refuse_incoming(message_id, 413, "hash mismatch")
    pair.pump()
    reports = pair.of(pair.alice_events, ReportReceived)
    assert str(reports[0].byte_range) == "1-10/10"
    failed = pair.of(pair.alice_events, MessageFailed)
    assert failed[0].reason == "hash mismatch" and not pair.of(pair.alice_events,
                                                                MessageDelivered)


def test_a_message_whose_chunks_are_all_answered_says_so_before_its_report():
    pair = Pair(deliver_chunks=True, owner_confirms=True, chunk_size=300)
    message_id = pair.alice.send_message(b"w" * 1000, "application/octet-stream",
                                         success_report=True)
    pair.pump()
    answered = pair.of(pair.alice_events, MessageAnswered)
    assert [a.message_id for a in answered] == [message_id]
    assert not pair.of(pair.alice_events, MessageDelivered)  # the report is still awaited
    pair.bob.confirm_incoming(message_id)
    pair.pump()
    assert pair.of(pair.alice_events, MessageDelivered)


def test_a_message_without_a_success_report_asked_is_not_said_answered():
    pair = Pair(deliver_chunks=True, chunk_size=300)
    pair.alice.send_message(b"v" * 1000, "application/octet-stream")
    pair.pump()
    assert not pair.of(pair.alice_events, MessageAnswered)
