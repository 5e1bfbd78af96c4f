"""How fast sipd reads and writes the SDP of a call setup, against a plain split of the same bytes.

    python -m bench.sdp_parse            # a table: µs per operation and × the split baseline
    python -m bench.sdp_parse --profile  # and where parse_sdp's time goes (cProfile)

What a call setup does with SDP, on descriptions shaped like the real ones (pjsua's offer
and answer, as a media worker writes them; a phone's offer, as a remote party sends it):
- "parse": `parse_sdp(bytes)` (sipd/sessions/sdp/parse.py), every line validated;
- "write": `bytes(description)`, the serialisation of a parsed description;
- "offer": `sipd.sessions.streams.audio.sdp.outside_offer`, our offer to the remote party
  from the worker's (parse of the worker's SDP not included: it is timed as "parse");
- "answer": `sipd.sessions.streams.audio.sdp.outside_answer` from the remote offer and the
  worker's answer;
- "for worker": `sipd.sessions.streams.audio.sdp.for_worker`, the audio part of a remote
  offer for the worker;
- baseline "split": `data.split(b"\\r\\n")`, the floor of any line-based reader;
- baseline "lines": split, decode, partition each line on '=': a reader that checks nothing.

Descriptions differ per call in their o= version and ports: each timed reading takes the next
of a set of variants, so a cache keyed on the whole text cannot make a reading free that a
real call would pay for. CPU time of this process (time.process_time), best of `repeats`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable

from sipd.sessions.sdp import SessionVersion, parse_sdp
from sipd.sessions.streams.audio import sdp as b2bua_sdp

VARIANTS = 64  # distinct versions/ports of each description


def _worker_offer(i: int) -> bytes:
    return ("v=0\r\n"
            f"o=- 3950{i:06d} 3950{i:06d} IN IP4 127.0.0.1\r\n"
            "s=pjmedia\r\n"
            "b=AS:84\r\n"
            "t=0 0\r\n"
            "a=X-nat:0\r\n"
            f"m=audio {4000 + 2 * i} RTP/AVP 0 8 101\r\n"
            "c=IN IP4 127.0.0.1\r\n"
            "b=TIAS:64000\r\n"
            f"a=rtcp:{4001 + 2 * i} IN IP4 127.0.0.1\r\n"
            "a=sendrecv\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-16\r\n"
            f"a=ssrc:{123456789 + i} cname:1a2b3c4d5e6f7a8b\r\n").encode()


def _phone_offer(i: int) -> bytes:
    return ("v=0\r\n"
            f"o=alice {2890844526 + i} {2890844526 + i} IN IP4 127.0.0.1\r\n"
            "s=-\r\n"
            "c=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\n"
            f"m=audio {50000 + 2 * i} RTP/AVP 0 8 9 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:9 G722/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-16\r\n"
            "a=ptime:20\r\n"
            "a=sendrecv\r\n"
            f"a=rtcp:{50001 + 2 * i}\r\n").encode()


def _worker_answer(i: int) -> bytes:
    return _worker_offer(i).replace(b" 0 8 101\r\n", b" 0 101\r\n").replace(
        b"a=rtpmap:8 PCMA/8000\r\n", b"")


WORKER_OFFERS = [_worker_offer(i) for i in range(VARIANTS)]
PHONE_OFFERS = [_phone_offer(i) for i in range(VARIANTS)]
WORKER_ANSWERS = [_worker_answer(i) for i in range(VARIANTS)]


def split_lines(data: bytes) -> object:
    return data.split(b"\r\n")


def plain_lines(data: bytes) -> object:
    return [line.partition("=") for line in data.decode().split("\r\n") if line]


def _cycling(function: Callable[[int], object]) -> Callable[[], object]:
    state = [0]

    def run() -> object:
        i = state[0] = (state[0] + 1) % VARIANTS
        return function(i)
    return run


def operations() -> dict[str, Callable[[], object]]:
    parsed_offers = [parse_sdp(d) for d in WORKER_OFFERS]
    parsed_phone = [parse_sdp(d) for d in PHONE_OFFERS]
    parsed_answers = [parse_sdp(d) for d in WORKER_ANSWERS]

    def offer(i: int) -> object:
        return b2bua_sdp.outside_offer(parsed_offers[i].copy(),
                                       SessionVersion("127.0.0.1", session_id=i + 1))

    def answer(i: int) -> object:
        return b2bua_sdp.outside_answer(parsed_phone[i], parsed_answers[i].copy(),
                                        SessionVersion("127.0.0.1", session_id=i + 1))

    def for_worker(i: int) -> object:
        return b2bua_sdp.for_worker(parsed_phone[i], SessionVersion("127.0.0.1",
                                                                    session_id=i + 1))

    return {
        "split": _cycling(lambda i: split_lines(PHONE_OFFERS[i])),
        "lines": _cycling(lambda i: plain_lines(PHONE_OFFERS[i])),
        "parse": _cycling(lambda i: parse_sdp(PHONE_OFFERS[i])),
        "parse worker": _cycling(lambda i: parse_sdp(WORKER_OFFERS[i])),
        "write": _cycling(lambda i: bytes(parsed_phone[i])),
        "offer": _cycling(offer),
        "answer": _cycling(answer),
        "for worker": _cycling(for_worker),
    }


def _timed(function: Callable[[], object], iterations: int) -> float:
    clock = time.process_time
    start = clock()
    for _ in range(iterations):
        function()
    return (clock() - start) / iterations


def measure(budget: float = 0.2, repeats: int = 5) -> dict[str, float]:
    ops = operations()
    counts = {name: max(20, int(budget / max(_timed(op, 20), 1e-8))) for name, op in ops.items()}
    best: dict[str, float] = {}
    for _ in range(repeats):  # alternating, so a noisy moment hits each alike
        for name, op in ops.items():
            seconds = _timed(op, counts[name])
            best[name] = min(best.get(name, seconds), seconds)
    return best


def profile(seconds: float = 2.0, top: int = 20) -> str:
    ops = operations()
    chosen = [ops[name] for name in ("parse", "parse worker", "offer", "answer", "for worker")]
    rounds = max(1, int(seconds / max(sum(_timed(op, 20) for op in chosen), 1e-6) / 10))
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(rounds):
        for op in chosen:
            op()
    profiler.disable()
    table = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in table.values())
    lines = [f"top {top} functions by own time ({rounds} rounds):"]
    for tt, calls, (filename, line, name) in sorted(
            ((v[2], v[1], k) for k, v in table.items()), reverse=True)[:top]:
        lines.append(f"  {tt / total:6.1%} {calls:8d}  {filename.rsplit('/', 2)[-1]}:{line} {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.2, help="CPU seconds per timed loop")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    best = measure(args.budget, args.repeats)
    split = best["split"]
    print(f"SDP of a call setup ({len(PHONE_OFFERS[0])} B phone offer, "
          f"{len(WORKER_OFFERS[0])} B worker offer); CPU µs per operation, best of "
          f"{args.repeats}:")
    for name, seconds in best.items():
        print(f"  {name:13} {seconds * 1e6:8.1f} µs  {seconds / split:7.1f}× split")
    if args.profile:
        print(profile())


if __name__ == "__main__":
    main()
