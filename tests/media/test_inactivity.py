"""The RTP inactivity watch's rules (sipd.media.inactivity), fed counters and times."""

from __future__ import annotations

from sipd.media.inactivity import RtpInactivity, expects_media


def test_a_silent_receiving_call_is_reported_once_after_the_timeout() -> None:
    watch = RtpInactivity(30)
    assert not watch.observe(1, 100, True, now=0)
    assert not watch.observe(1, 100, True, now=29)
    assert watch.observe(1, 100, True, now=30)
    assert watch.silent_for(1, now=30) == 30
    assert not watch.observe(1, 100, True, now=60)  # said once
    # Packets again, then silence again: reported again.
    assert not watch.observe(1, 150, True, now=61)
    assert not watch.observe(1, 150, True, now=90)
    assert watch.observe(1, 150, True, now=91)


def test_packets_hold_and_renegotiation_restart_the_clock() -> None:
    watch = RtpInactivity(10)
    watch.observe(1, 0, True, now=0)
    assert not watch.observe(1, 5, True, now=9)  # packets came
    assert not watch.observe(1, 5, True, now=18)
    assert not watch.observe(1, 5, False, now=25)  # on hold: not watched
    assert not watch.observe(1, 5, True, now=30)  # hold over: counts from here
    assert not watch.observe(1, 5, True, now=39)
    watch.media_changed(1, now=39)  # a re-INVITE: a new stream, its counter from 0
    assert not watch.observe(1, 0, True, now=45)
    assert not watch.observe(1, 0, True, now=54)
    assert watch.observe(1, 0, True, now=55)


def test_no_stream_and_off_are_never_reported() -> None:
    off = RtpInactivity(0)
    off.observe(1, 7, True, now=0)
    assert not off.observe(1, 7, True, now=10_000)
    watch = RtpInactivity(5)
    watch.observe(2, None, True, now=0)
    assert not watch.observe(2, None, True, now=100)
    watch.forget(2)
    assert watch.silent_for(2, now=100) == 0


def test_only_an_active_receiving_stream_expects_media() -> None:
    assert expects_media("active", "sendrecv") and expects_media("active", "recvonly")
    for status, direction in (("active", "sendonly"), ("active", "inactive"),
                              ("local_hold", "sendonly"), ("remote_hold", "recvonly"),
                              ("remote_hold", "inactive"), ("none", "inactive")):
        assert not expects_media(status, direction), (status, direction)
