"""How fast sipd reads SIP messages, against the least any reader of the same bytes must do.

Each message of the corpus (bench/sip_corpus.py) is read over and over by:
- `parse_datagram` (sipd/sip/message.py): what the UDP transport does with every datagram,
  its values never seen before (sipd/sip/parsed_headers.py keeps the addresses and Vias
  parsed lately, by text: the reading empties that table first);
- "again": the same without emptying it, as for a message whose From, To and Via were in an
  earlier message of its dialog (they are copied, not parsed);
- the same as the first, then the accessors the transaction layer reads for every message
  (top Via, CSeq, Call-ID, From, To): they copy the values parsing checked and kept
  (sipd/sip/parsed_headers.py) rather than parse their header again;
- baseline "split lines": `data.split(b"\\r\\n")`, the floor of any line-based reader;
- baseline "header dict": split the head into lines, decode it, partition each line on ':'
  and strip, into a dict: a reader that checks nothing.

The stream framer (`StreamFramer`, TCP/TLS) reads the corpus concatenated many times, fed in
4 KiB chunks, against the split of the same stream into lines.

Times are CPU time of this process (time.process_time), so being preempted by other processes
is not in them; each reading runs `repeats` times, alternating, and the best repeat counts
(as timeit does: the noise of a shared machine only ever adds time).
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sipd.sip.message import parse_datagram
from sipd.sip.parsed_headers import forget
from sipd.sip.parser import MessageReceived, StreamFramer

from .sip_corpus import CORPUS

ROOT = Path(__file__).resolve().parent.parent

CHUNK = 4096  # bytes per receive_data() call: a typical TCP read
STREAM_COPIES = 40  # the corpus this many times over makes the stream
MAX_ITERATIONS = 1_000_000  # a bound per timed loop; the time budget ends it long before


def split_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def header_dict(data: bytes) -> dict[str, str]:
    head, _, _body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def parse_fresh(data: bytes) -> object:
    forget()
    return parse_datagram(data)


def parse_with_accessors(data: bytes) -> object:
    forget()
    message = parse_datagram(data)
    return message.top_via, message.cseq, message.call_id, message.from_, message.to


READERS: dict[str, Callable[[bytes], object]] = {
    "parse": parse_fresh,
    "again": parse_datagram,
    "accessors": parse_with_accessors,
    "split": split_lines,
    "dict": header_dict,
}


@dataclass(frozen=True)
class MessageRate:
    """Best CPU seconds per reading of one message, by reader (READERS' keys)."""
    name: str
    size: int
    seconds: dict[str, float]

    def rate(self, reader: str) -> float:
        return 1.0 / self.seconds[reader]

    def times(self, reader: str, baseline: str) -> float:
        """How many times the baseline's time `reader` takes."""
        return self.seconds[reader] / self.seconds[baseline]


@dataclass(frozen=True)
class StreamRate:
    messages: int  # messages in the stream
    size: int  # its bytes
    framer_seconds: float  # best CPU seconds to frame (and parse) the whole stream
    split_seconds: float  # best CPU seconds to split it into lines

    @property
    def rate(self) -> float:
        return self.messages / self.framer_seconds

    @property
    def split_rate(self) -> float:
        return self.messages / self.split_seconds


@dataclass(frozen=True)
class ParseResults:
    messages: list[MessageRate]
    stream: StreamRate
    repeats: int
    budget: float  # CPU seconds per timed loop

    def corpus_seconds(self, reader: str) -> float:
        """CPU seconds to read each message of the corpus once."""
        return sum(m.seconds[reader] for m in self.messages)

    def corpus_rate(self, reader: str) -> float:
        return len(self.messages) / self.corpus_seconds(reader)


def _timed(function: Callable[[bytes], object], data: bytes, iterations: int) -> float:
    clock = time.process_time
    start = clock()
    for _ in range(iterations):
        function(data)
    return (clock() - start) / iterations


def _iterations(function: Callable[[bytes], object], data: bytes, budget: float) -> int:
    """How many readings fill `budget` CPU seconds (from a short trial)."""
    trial = 10
    per_call = max(_timed(function, data, trial), 1e-8)
    return max(trial, min(MAX_ITERATIONS, int(budget / per_call)))


def measure_message(name: str, data: bytes, budget: float, repeats: int) -> MessageRate:
    counts = {reader: _iterations(function, data, budget)
              for reader, function in READERS.items()}
    best: dict[str, float] = {}
    for _ in range(repeats):  # the readers alternate, so a noisy moment hits each alike
        for reader, function in READERS.items():
            seconds = _timed(function, data, counts[reader])
            best[reader] = min(best.get(reader, seconds), seconds)
    return MessageRate(name, len(data), best)


def frame_stream(stream: bytes) -> int:
    framer = StreamFramer(max_message_size=len(stream))
    count = 0
    for offset in range(0, len(stream), CHUNK):
        forget()  # the corpus repeats: each chunk's values as if new (see parse_fresh)
        for event in framer.receive_data(stream[offset:offset + CHUNK]):
            if not isinstance(event, MessageReceived):
                raise RuntimeError(f"the framer rejected the benchmark's stream: {event}")
            count += 1
    return count


def measure_stream(budget: float, repeats: int) -> StreamRate:
    stream = b"".join(CORPUS.values()) * STREAM_COPIES
    expected = len(CORPUS) * STREAM_COPIES
    framed = frame_stream(stream)
    if framed != expected:
        raise RuntimeError(f"the framer found {framed} messages in a stream of {expected}")
    split_count = _iterations(split_lines, stream, budget)
    frame_count = max(1, min(1000, int(budget / max(_timed(frame_stream, stream, 1), 1e-6))))
    frame_best = split_best = float("inf")
    for _ in range(repeats):
        frame_best = min(frame_best, _timed(frame_stream, stream, frame_count))
        split_best = min(split_best, _timed(split_lines, stream, split_count))
    return StreamRate(expected, len(stream), frame_best, split_best)


def measure(budget: float, repeats: int, say: Callable[[str], None] = print) -> ParseResults:
    for data in CORPUS.values():  # a corpus the parser refuses would measure errors
        parse_datagram(data)
    messages = []
    for name, data in CORPUS.items():
        rate = measure_message(name, data, budget, repeats)
        messages.append(rate)
        say(f"  {name:28} {rate.size:5} B: parse_datagram {rate.rate('parse'):9,.0f}/s "
            f"({rate.seconds['parse'] * 1e6:6.1f} µs; values seen before "
            f"{rate.seconds['again'] * 1e6:6.1f} µs), split lines "
            f"{rate.rate('split'):11,.0f}/s, header dict {rate.rate('dict'):9,.0f}/s; parse = "
            f"{rate.times('parse', 'split'):.0f}× split, {rate.times('parse', 'dict'):.1f}× dict")
    stream = measure_stream(budget, repeats)
    say(f"  stream of {stream.messages} messages ({stream.size:,} B, {CHUNK} B reads): "
        f"StreamFramer {stream.rate:,.0f} msgs/s, split lines {stream.split_rate:,.0f} msgs/s")
    return ParseResults(messages, stream, repeats, budget)


def profile(seconds: float = 3.0, top: int = 25) -> str:
    """parse_datagram over the corpus under cProfile (CPU time): where the parser's time goes."""
    datagrams = list(CORPUS.values())
    # cProfile (with a CPU-time clock) slows the parser about 10×: aim at `seconds` with it.
    per_round = sum(_timed(parse_fresh, d, 20) for d in datagrams)
    rounds = max(1, int(seconds / max(per_round, 1e-6) / 10))
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(rounds):
        for data in datagrams:
            parse_fresh(data)
    profiler.disable()
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in table.values())
    lines = [f"parse_datagram over the corpus, {rounds} rounds of {len(datagrams)} messages, "
             f"{total:.2f} CPU s under cProfile", "", f"top {top} functions by own time:"]
    for tt, calls, (filename, line, name) in sorted(
            ((v[2], v[1], k) for k, v in table.items()), reverse=True)[:top]:
        lines.append(f"  {tt / total:6.1%}  {calls:9d} calls  {_short(filename)}:{line} {name}")
    lines += ["", f"top {top} sipd functions by cumulative time:"]
    for ct, calls, (filename, line, name) in sorted(
            ((v[3], v[1], k) for k, v in table.items() if "/sipd/" in k[0]), reverse=True)[:top]:
        lines.append(f"  {ct / total:6.1%}  {calls:9d} calls  {_short(filename)}:{line} {name}")
    return "\n".join(lines)


def _short(filename: str) -> str:
    """A path under the repository relative to it ('sipd/sip/uri.py'), others as they are."""
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else filename
