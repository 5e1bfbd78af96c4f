"""Fuzzing the SDP parser and helpers: whatever the input, parse_sdp returns a description or
raises SDPError; what it returns never makes an accessor or an offer/answer helper raise, and
is written back unchanged.

Bounded to a few seconds per test by default; SIPD_FUZZ_EXAMPLES=<n> runs n examples per
test instead (e.g. 20000 for a long session).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipd.sessions.sdp import (
    Origin,
    SDPError,
    SessionDescription,
    SessionVersion,
    changed_media,
    held_by_remote,
    media_changed,
    merge_answer,
    merge_offer,
    parse_sdp,
    sanitize_worker_sdp,
    set_hold,
    split_media,
)

from .test_sdp_samples import SAMPLES

EXAMPLES = int(os.environ.get("SIPD_FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize="SIPD_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEEDS = [text.encode() for text in SAMPLES.values()]
TOKENS = [b"\r\n", b"\n", b"\r", b" ", b"  ", b"\t", b":", b"/", b"=", b"a=", b"m=", b"c=",
          b"o=", b"v=0\r\n", b"t=0 0", b"\x00", b"\xff", b"\xc3\xa9", b"-1", b"0", b"65536",
          b"99999999999999999999999", b"IN IP6 ::", b"0.0.0.0", b"a=sendonly\r\n",
          b"a=rtpmap:", b"a=fmtp:", b"a=crypto:", b"inline:", b"|2^20|1:32", b"a=path:",
          b"msrp://", b"a=file-selector:", b'name:"', b"%", b"size:", b"hash:sha-1:",
          b"a=accept-types:", b"*", b"m=message 0 TCP/MSRP *\r\n", b"m=audio 0 RTP/AVP\r\n",
          b"/127/3", b"a=rtcp:", b"a=ptime:", b".5", b"a=setup:"]
OURS = Origin("-", "1", 1, "IN", "IP4", "203.0.113.5")


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "token", "truncate", "dup",
                                       "swap-lines"]))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 40))]
        elif action == "token":
            data[position:position] = draw(st.sampled_from(TOKENS))
        elif action == "truncate":
            del data[position:]
        elif action == "dup":
            data[position:position] = data[position:position + draw(st.integers(1, 80))]
        elif action == "swap-lines":
            lines = bytes(data).split(b"\r\n")
            first = draw(st.integers(0, len(lines) - 1))
            second = draw(st.integers(0, len(lines) - 1))
            lines[first], lines[second] = lines[second], lines[first]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


LINE_VALUE = st.text(alphabet=st.characters(blacklist_characters="\r\n\x00"), max_size=30)


@st.composite
def line_soup(draw) -> str:
    """Lines of plausible types with random values after a valid head."""
    head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    lines = draw(st.lists(st.tuples(st.sampled_from("vosiuepcbtrzkamx"), LINE_VALUE),
                          max_size=12))
    return head + "".join(f"{kind}={value}\r\n" for kind, value in lines)


def exercise(sdp: SessionDescription) -> None:
    """Everything a caller may do with a parsed description; none of it may raise."""
    # The bare expressions read properties: reading is what is tested.
    assert parse_sdp(bytes(sdp)) == sdp
    sdp.origin, sdp.session_name, sdp.timing, sdp.connection, sdp.bandwidths, sdp.attributes  # noqa: B018
    sdp.uri, sdp.emails, sdp.phones, sdp.information, sdp.direction  # noqa: B018
    for index, media in enumerate(sdp.media):
        media.m, media.connections, media.bandwidths, media.is_secure, media.is_msrp  # noqa: B018
        media.codecs(), media.fmtps(), media.crypto, media.rtcp, media.ptime, media.maxptime
        media.candidates, media.path, media.accept_types, media.accept_wrapped_types  # noqa: B018
        media.max_size, media.setup, media.file_selector, media.file_transfer_id  # noqa: B018
        [(key.key_salt, key.lifetime, key.mki) for crypto in media.crypto for key in crypto.keys]
        sdp.connection_of(index), sdp.direction_of(index), media.rejected()
    split = split_media(sdp)
    worker = sanitize_worker_sdp(split.worker) if split.worker else None
    for index, media in split.others.items():  # our streams carry their own address
        media.connection = media.connection or sdp.connection_of(index)
    answer = merge_answer(sdp, split.worker, split.others, origin=OURS)
    assert len(answer.media) == len(sdp.media)
    assert parse_sdp(bytes(answer)) == answer
    merge_offer(worker, [split.others.get(index) for index in range(split.count)], origin=OURS)
    held_by_remote(sdp)
    changed_media(sdp, answer), media_changed(sdp, answer)
    copy = sdp.copy()
    set_hold(copy, True)
    SessionVersion("192.0.2.1").stamp(copy, only_if_changed=True)
    assert parse_sdp(bytes(copy)) == copy


def check(data: bytes | str) -> None:
    try:
        sdp = parse_sdp(data)
    except SDPError as error:
        assert error.line is None or error.line >= 1
        return
    if isinstance(data, bytes) and b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b""):
        text = data.rstrip(b"\r\n") + b"\r\n"
        if b"\r\n\r\n" not in text:
            assert bytes(sdp) == text  # CRLF input comes back byte for byte
    exercise(sdp)


@FUZZ
@given(mutated())
def test_mutated_samples(data):
    check(data)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    check(data)
    check(b"v=0\r\n" + data)


@FUZZ
@given(line_soup())
def test_line_soup(text):
    check(text)
    check(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    check(text)
