"""The event bus without a daemon: replay buffer bounds, resume points, catching up."""

from __future__ import annotations

from sipd.event_seq import SeqReservation
from sipd.events import ALL_TOPICS, EventBus, Gap

SETTINGS = frozenset({"settings"})


def publish(bus, count, name="settings.changed", data=None):
    return [bus.publish(name, data or {"n": i}).seq for i in range(count)]


def test_buffer_is_bounded_in_events_and_in_bytes():
    bus = EventBus(replay_size=10, replay_bytes=10**9)
    publish(bus, 25)
    assert bus.oldest == 16 and bus.seq == 25
    bus = EventBus(replay_size=1000, replay_bytes=64 * 1024)
    publish(bus, 50, data={"value": "x" * 10_000})
    assert 2 <= bus.seq - bus.oldest + 1 <= 7
    bus.resize(replay_bytes=10**9)
    publish(bus, 20, data={"value": "x" * 10_000})
    assert bus.seq - bus.oldest + 1 >= 20


def test_resume_and_read_after_walk_the_buffer_with_a_gap_first():
    bus = EventBus(replay_size=5)
    publish(bus, 3, name="session.state")
    publish(bus, 5)
    resume = bus.resume(0, SETTINGS)
    assert resume.gap == Gap(1, 3) and resume.buffered == 5 and resume.after == 0
    after, seen = resume.after, []
    while (found := bus.read_after(after, SETTINGS)) is not None:
        seen.append(found)
        after = found.last if isinstance(found, Gap) else found.seq
    assert seen[0] == Gap(1, 3) and [e.seq for e in seen[1:]] == [4, 5, 6, 7, 8]


def test_read_after_skips_other_topics():
    bus = EventBus()
    publish(bus, 2, name="session.state")
    publish(bus, 1)
    found = bus.read_after(0, SETTINGS)
    assert found.seq == 3 and bus.read_after(3, SETTINGS) is None


def test_a_since_of_another_run_is_a_gap():
    bus = EventBus(first_seq=1002)
    publish(bus, 3)
    assert bus.resume(1000, ALL_TOPICS).gap == Gap(1001, 1001)  # the previous run's last
    assert bus.resume(5000, ALL_TOPICS).gap == Gap(1001, 1001)  # ahead: not this run
    named = bus.resume(1003, ALL_TOPICS, boot="another")
    assert named.gap == Gap(1001, 1001) and named.buffered == 3
    assert bus.resume(1003, ALL_TOPICS, boot=bus.boot).gap is None


def test_numbers_keep_rising_across_runs(tmp_path):
    first = SeqReservation(tmp_path, block=10)
    bus = EventBus(first_seq=first.first_seq(), reserve=first.reserve)
    seqs = publish(bus, 25)  # past two reservations
    assert seqs == list(range(1, 26))  # the first run starts at 1
    second = SeqReservation(tmp_path, block=10)
    assert second.first_seq() > seqs[-1] + 1
    (tmp_path / "event-seq").write_text("garbage")
    assert SeqReservation(tmp_path).first_seq() == 2
