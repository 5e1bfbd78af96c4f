"""Where a sipd call setup spends its time: every packet of one call on `lo`, hop by hop.

    python -m bench.call_timeline              # 5 calls A -> B (auto answer), one timeline each
    python -m bench.call_timeline --calls 10 --quiet   # only the per-step medians

It starts two daemons as the call benchmark does (bench/call_bench.py: plain RTP, PCMU, B's
account `bob` auto-answers), makes one unmeasured warm-up call (it starts the media workers),
then watches `lo` with a packet socket (AF_PACKET: root or CAP_NET_RAW, like
bench/rtp_watch.py) while it places calls one by one. Each packet is labelled by who sent it
and who receives it: the benchmark's RPC client, daemon A or B, A's or B's media worker (which
process owns which port comes from /proc), and shown with its kernel time since the
`sessions.start` request was sent: the RPC request and reply (WebSocket frames, decoded), each
SIP message's first line, the doorbell datagrams that wake a worker's poll, the first RTP each
way and the `session.state established` event. The control channel between a daemon and its
worker is a socket pair, not on `lo`: the doorbell marks when a command went out, and what the
worker did next shows when it was read.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess

from .call_bench import Side, _end_calls, daemon_settings
from .procs import cpu_seconds
from .rtp_watch import ETH_P_IP, PACKET_HOST, SO_TIMESTAMPNS, _stamp


@dataclass
class Packet:
    time: float
    proto: str  # "tcp" | "udp"
    src: int
    dst: int
    payload: bytes


class LoCapture:
    """Every TCP/UDP packet with a payload delivered on lo, with the kernel's receive time."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._sock.bind(("lo", ETH_P_IP))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._read, name="lo-capture", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, address = self._sock.recvmsg(65536,
                                                                      socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_HOST or len(data) < 20:
                continue
            header = (data[0] & 0x0F) * 4
            if data[9] == 17:
                proto, payload_at = "udp", header + 8
            elif data[9] == 6:
                proto, payload_at = "tcp", header + (data[header + 12] >> 4) * 4
            else:
                continue
            payload = data[payload_at:]
            if proto == "tcp" and data[header + 13] & 0x12 == 0x02:
                payload = b"<SYN>"  # a connection being opened
            elif not payload:
                continue  # bare ACKs, FINs
            src, dst = struct.unpack("!HH", data[header:header + 4])
            self.packets.append(Packet(_stamp(ancillary), proto, src, dst, payload))


def socket_ports(pid: int) -> set[tuple[str, int]]:
    """(proto, local port) of every IPv4 socket process `pid` holds (from /proc)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for proto in ("tcp", "udp"):
        with open(f"/proc/net/{proto}") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add((proto, int(fields[1].rsplit(":", 1)[1], 16)))
    return ports


def describe(packet: Packet, rpc_port: int) -> str:
    data = packet.payload
    if data == b"<SYN>":
        return "TCP connect (SYN)"
    if packet.proto == "udp" and data in (b"\r\n", b"\r\n\r\n"):
        return "doorbell (CRLF)"
    if packet.proto == "udp" and len(data) >= 12 and data[0] >> 6 == 2:
        return "RTCP" if 192 <= data[1] <= 223 else "RTP"
    if rpc_port in (packet.src, packet.dst):
        return websocket_text(data)
    first, _, _ = data.partition(b"\r\n")
    text = first.decode(errors="replace")
    if text.startswith("SIP/2.0 "):
        cseq = next((line for line in data.split(b"\r\n")
                     if line.lower().startswith((b"cseq:", b"l:"))), b"")
        method = cseq.split()[-1].decode(errors="replace") if cseq.startswith(b"CSeq") else ""
        return f"{text[8:]} ({method})" if method else text[8:]
    return text.split(" sip")[0] if " sip" in text else text[:60]


def websocket_text(data: bytes) -> str:
    """The first WebSocket frame's JSON, shortened (client frames are masked)."""
    if len(data) < 2:
        return "ws ?"
    length, at = data[1] & 0x7F, 2
    if length == 126:
        length, at = struct.unpack("!H", data[2:4])[0], 4
    elif length == 127:
        length, at = struct.unpack("!Q", data[2:10])[0], 10
    payload = data[at:]
    if data[1] & 0x80:
        mask, payload = payload[:4], payload[4:]
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:length]))
    try:
        message = json.loads(payload[:length])
    except ValueError:
        return f"ws frame {length} B"
    if "method" in message and message["method"] == "event":
        params = message["params"]
        return f"event {params['name']} {params['data'].get('state', '')}".rstrip()
    if "method" in message:
        return f"request {message['method']}"
    return "reply" + (" (error)" if "error" in message else "")


# The hops of a call setup: (who, from this step, to that one), steps as the timeline names
# them; the first occurrence of each in a call.
_STEP = "{:>8} -> {:<8} {}".format
HOPS = [
    ("A: sessions.start request -> doorbell to its worker",
     _STEP("client", "A", "request sessions.start"), _STEP("A", "A.worker", "doorbell (CRLF)")),
    ("A.worker: doorbell -> its INVITE",
     _STEP("A", "A.worker", "doorbell (CRLF)"), _STEP("A.worker", "A", "INVITE")),
    ("A: worker's INVITE -> INVITE to B",
     _STEP("A.worker", "A", "INVITE"), _STEP("A", "B", "INVITE")),
    ("B: INVITE -> INVITE to its worker",
     _STEP("A", "B", "INVITE"), _STEP("B", "B.worker", "INVITE")),
    ("B.worker: INVITE -> 200",
     _STEP("B", "B.worker", "INVITE"), _STEP("B.worker", "B", "200 OK (INVITE)")),
    ("B: worker's 200 -> 200 to A",
     _STEP("B.worker", "B", "200 OK (INVITE)"), _STEP("B", "A", "200 OK (INVITE)")),
    ("A: 200 -> session.state established (event time)",
     _STEP("B", "A", "200 OK (INVITE)"), "A's event time: session.state established"),
    ("A: established (event time) -> event sent to the client",
     "A's event time: session.state established",
     _STEP("A", "client", "event session.state established")),
]


class ProfiledSipd(SipdProcess):
    """A daemon under bench/profiled_sipd.py (cProfile, CPU time, between SIGUSR1 and
    SIGUSR2) or bench/traced_sipd.py (every trio task step, written at SIGUSR2)."""

    def __init__(self, *args: Any, profile: Path, runner: str = "bench.profiled_sipd",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile = profile
        self.runner = runner

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.runner, str(self.profile), *super().command()[3:]]


def task_steps(path: Path, since: float, until: float, label: str,
               shortest: float = 0.0001) -> list[tuple[float, str]]:
    """The trio task steps a traced daemon wrote, within [since, until], as timeline lines."""
    lines = []
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    except (OSError, ValueError):
        return []
    for began, length, name in rows:
        if since <= began <= until and length >= shortest:
            short = ".".join(name.split(".")[-2:])
            lines.append(((began - since) * 1000,
                          f"{'':>8}    {label:<8} runs {short} for {length * 1000:.2f} ms"))
    return lines


async def run(calls: int, quiet: bool, profile: Path | None, trace: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="sipd-timeline-") as tmp:
        settings = [daemon_settings(1) for _ in ("a", "b")]
        daemons: list[SipdProcess]
        if profile is not None:
            daemons = [ProfiledSipd(Path(tmp), s, name=n, profile=profile / f"{n}.prof")
                       for s, n in zip(settings, ("a", "b"), strict=True)]
        elif trace:
            daemons = [ProfiledSipd(Path(tmp), s, name=n, profile=Path(tmp) / f"{n}.steps",
                                    runner="bench.traced_sipd")
                       for s, n in zip(settings, ("a", "b"), strict=True)]
        else:
            daemons = [SipdProcess(Path(tmp), s, name=n)
                       for s, n in zip(settings, ("a", "b"), strict=True)]
        try:
            for daemon in daemons:
                daemon.start(wait=False)
            for daemon in daemons:
                daemon.wait_ready()
            await _calls(daemons, calls, quiet, profile is not None, trace)
        finally:
            for daemon in daemons:
                daemon.stop()
        if profile is not None:
            print(f"\nprofiles (CPU time, the timed calls only): {profile}/a.prof, b.prof")


async def _calls(daemons: list[SipdProcess], calls: int, quiet: bool, profile: bool,
                 trace: bool) -> None:
    async with connect(daemons[0].endpoint) as rpc_a, connect(daemons[1].endpoint) as rpc_b, \
            trio.open_nursery() as nursery:
        a, b = Side(daemons[0], rpc_a), Side(daemons[1], rpc_b)
        for side in (a, b):
            nursery.start_soon(side.collect)
            await side.rpc.call("events.subscribe", {"topics": ["sessions"]})
        await b.rpc.call("accounts.add", {"aor": "sip:bob@127.0.0.1", "register": False,
                                          "auto_answer": True})
        port = (await b.rpc.call("system.state", {}))["sip"]["ports"]["udp"]
        to = f"sip:bob@127.0.0.1:{port}"
        session = (await a.rpc.call("sessions.start", {"account": "local", "to": to,
                                                       "streams": ["audio"]}))["id"]
        await a.wait("session.state", id=session, state="established")
        await _end_calls(a, [session])
        names: dict[tuple[str, int], str] = {}
        rpc_ports = {int(d.endpoint.url.rstrip("/").rsplit(":", 1)[1]) for d in daemons}
        if profile:
            for daemon in daemons:
                daemon.signal(signal.SIGUSR1)
        steps: dict[str, list[float]] = {}
        a_pids, b_pids = await a.pids(), await b.pids()
        pids = {"A": a_pids[0], "A.worker": a_pids[1], "B": b_pids[0], "B.worker": b_pids[1]}
        cpu = dict.fromkeys(pids, 0.0)
        for number in range(1, calls + 1):
            await trio.sleep(0.3)
            capture = LoCapture()
            try:
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                sent = time.time()
                session = (await a.rpc.call("sessions.start", {
                    "account": "local", "to": to, "streams": ["audio"]}))["id"]
                event = await a.wait("session.state", id=session, state="established")
                await trio.sleep(0.1)  # the first RTP, the ACKs
                for name, pid in pids.items():
                    cpu[name] += cpu_seconds(pid) - before[name]
            finally:
                capture.close()
            # Who owns which port, while the call's connections are still open.
            for label, side in (("A", a), ("B", b)):
                owners = await side.pids()
                for proto_port in socket_ports(owners[0]):
                    names[proto_port] = label
                for pid in owners[1:]:
                    for proto_port in socket_ports(pid):
                        names[proto_port] = f"{label}.worker"
            lines = _timeline(capture.packets, sent, names, rpc_ports)
            established = (event["time"] - sent) * 1000 if event else float("nan")
            lines.append((established, "A's event time: session.state established"))
            if trace:
                for daemon in daemons:
                    daemon.signal(signal.SIGUSR2)
                await trio.sleep(0.3)
                for daemon, label in zip(daemons, ("A", "B"), strict=True):
                    assert isinstance(daemon, ProfiledSipd)
                    lines += task_steps(daemon.profile, sent, sent + established / 1000 + 0.005,
                                        label)
            lines.sort()
            if not quiet:
                print(f"\ncall {number}: ms since sessions.start was sent (delta to previous)")
                last = 0.0
                for at, text in lines:
                    print(f"  {at:7.2f}  (+{at - last:5.2f})  {text}")
                    last = at
            seen: dict[str, int] = {}
            for at, text in lines:
                seen[text] = seen.get(text, 0) + 1
                key = text if seen[text] == 1 else f"{text} #{seen[text]}"
                steps.setdefault(key, []).append(at)
            await _end_calls(a, [session])
        if profile:
            for daemon in daemons:
                daemon.signal(signal.SIGUSR2)
        print("\nCPU per call setup (from sessions.start to 0.1 s after established; clock "
              "ticks, so only the average over many calls means something): " + ", ".join(
                  f"{name} {cpu[name] / calls * 1000:.1f} ms" for name in pids))
        print(f"\nwho takes how long over {calls} calls (ms): median, 10th percentile")
        for name, start, end in HOPS:
            gaps = [e - b for b, e in zip(steps.get(start, []), steps.get(end, []), strict=False)]
            if len(gaps) == calls:
                low = sorted(gaps)[len(gaps) // 10]
                print(f"  {statistics.median(gaps):6.2f}  {low:6.2f}  {name}")
        print(f"\nmedian over {calls} calls (ms since sessions.start was sent):")
        for key, times in sorted(steps.items(), key=lambda kv: statistics.median(kv[1])):
            if len(times) * 2 >= calls:
                print(f"  {statistics.median(times):7.2f}  {key}  [{len(times)}]")
        nursery.cancel_scope.cancel()


def _timeline(packets: list[Packet], since: float, names: dict[tuple[str, int], str],
              rpc_ports: set[int]) -> list[tuple[float, str]]:
    lines = []
    rtp_seen = set()
    for packet in packets:
        src = names.get((packet.proto, packet.src), "client" if packet.dst in rpc_ports else "?")
        dst = names.get((packet.proto, packet.dst), "client" if packet.src in rpc_ports else "?")
        rpc_port = next((p for p in (packet.src, packet.dst) if p in rpc_ports), 0)
        if src == "?" and dst == "?":
            continue  # someone else's traffic on lo
        what = describe(packet, rpc_port)
        if what in ("RTP", "RTCP"):
            if (what, src, dst) in rtp_seen or what == "RTCP":
                continue
            rtp_seen.add((what, src, dst))
            what = "first RTP"
        lines.append(((packet.time - since) * 1000, f"{src:>8} -> {dst:<8} {what}"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--quiet", action="store_true", help="only the medians")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run both daemons under cProfile over the timed calls and write "
                             "DIR/a.prof and DIR/b.prof")
    parser.add_argument("--trace", action="store_true",
                        help="run both daemons under bench/traced_sipd.py and show, in each "
                             "call's timeline, every trio task step of theirs (what each "
                             "daemon was busy with between two packets)")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    trio.run(run, args.calls, args.quiet, args.profile, args.trace)


if __name__ == "__main__":
    main()
