"""The web audio jitter buffer (sipd/media/jitter.py), without pjsua2."""

from __future__ import annotations

from sipd.media.jitter import FrameBuffer


def frames(*names: str) -> list[bytes]:
    return [name.encode() for name in names]


def test_waits_for_its_prefill_then_plays_in_order() -> None:
    buffer = FrameBuffer(cap=3, prefill=2)
    buffer.push(b"a")
    assert buffer.pop() is None  # one frame is not slack enough yet
    buffer.push(b"b")
    assert [buffer.pop(), buffer.pop()] == frames("a", "b")


def test_drops_the_oldest_past_its_cap() -> None:
    buffer = FrameBuffer(cap=3, prefill=2)
    for name in "abcde":
        buffer.push(name.encode())
    assert buffer.dropped == 2
    assert [buffer.pop() for _ in range(3)] == frames("c", "d", "e")


def test_an_underrun_waits_for_the_prefill_again() -> None:
    buffer = FrameBuffer(cap=3, prefill=2)
    buffer.push(b"a")
    buffer.push(b"b")
    buffer.pop()
    buffer.pop()
    assert buffer.pop() is None and buffer.missing == 1
    buffer.push(b"c")
    assert buffer.pop() is None
    buffer.push(b"d")
    assert buffer.pop() == b"c"
