"""When did a call's media start flowing? The first RTP packet of each new stream, seen on lo.

Neither sipd's RPC nor baresip's ctrl_tcp tells when the first RTP packet of a call arrived in
a way both share (sipd has no RTP counters; baresip has CALL_RTPESTAB, sipd nothing like it), so
the call benchmark watches the loopback interface itself, the same way for both: a packet
socket (AF_PACKET, needs CAP_NET_RAW) gets a copy of every IPv4 packet delivered on `lo`, with
the kernel's receive time (SO_TIMESTAMPNS, the wall clock, so it compares with sipd's event
`time` and with time.time() in the benchmark).

A stream is an RTP SSRC sent to one port. It *starts* with its first packet, or with a packet
after a pause of more than GAP (pjsua may reuse a call slot's SSRC and ports for the next call;
RTP otherwise comes every 20 ms): "the first stream start at a port of side X after the call
was started" is the first RTP X received for that call. The benchmark leaves more than GAP
between one call's end and the next call's start, so stray packets of the call before do not
count. RTCP (packet types 192-223) shares the port ranges and is left out.

Under the load of many calls, Python reading every packet would take CPU from the processes
being measured: the benchmark watches during the sequential setup calls, and under load only
for a moment after the CPU window, to check that audio flows both ways (`by_side`, `ports`).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

ETH_P_IP = 0x0800
PACKET_HOST = 0  # the copy delivered to the receiving socket (lo also shows the outgoing one)
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SOL_PACKET = 263
PACKET_STATISTICS = 6
GAP = 0.1  # seconds without packets after which a stream's next packet is a new start


@dataclass(frozen=True)
class Start:
    side: str  # whose port range the packets go to
    port: int
    ssrc: int
    time: float  # kernel receive time of its first packet (time.time() clock)


class RtpWatch:
    """Records the first packet of every RTP stream sent to one of the named port ranges."""

    def __init__(self, ranges: dict[str, range]) -> None:
        self.ranges = ranges
        self.starts: list[Start] = []
        self._last: dict[tuple[int, int], float] = {}  # (port, ssrc) -> its last packet
        self.packets = 0
        self.by_side: dict[str, int] = {side: 0 for side in ranges}  # RTP packets received
        self.ports: dict[str, set[int]] = {side: set() for side in ranges}  # ... at these ports
        # (side, port) -> [RTP packets, of them carrying sound]: a packet whose payload is one
        # byte repeated (PCMU/PCMA silence, or pjsua's zero frames) is not sound
        self.per_port: dict[tuple[str, int], list[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._drops = 0
        self.error = ""  # why nothing can be seen (no permission), else empty

    def __enter__(self) -> RtpWatch:
        """Start watching; without CAP_NET_RAW `error` says why and nothing is ever seen."""
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        except OSError as error:
            self.error = (f"cannot watch RTP on lo ({error.strerror}): a packet socket needs "
                          "root or CAP_NET_RAW")
            return self
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            # hundreds of calls send tens of thousands of packets a second: room for bursts
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
            sock.bind(("lo", ETH_P_IP))
            sock.settimeout(0.2)  # to notice the stop flag
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="rtp-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()

    def _side(self, port: int) -> str | None:
        for side, ports in self.ranges.items():
            if port in ports:
                return side
        return None

    def _read(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, address = self._sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_HOST or len(data) < 20 or data[9] != 17:  # UDP only
                continue
            header = (data[0] & 0x0F) * 4
            payload = data[header + 8:]
            if len(payload) < 12 or payload[0] >> 6 != 2 or 192 <= payload[1] <= 223:
                continue  # not RTP version 2, or RTCP
            port = int.from_bytes(data[header + 2:header + 4], "big")
            side = self._side(port)
            if side is None:
                continue
            ssrc = int.from_bytes(payload[8:12], "big")
            stamp = _stamp(ancillary)
            media = payload[12:]  # no CSRC or extension from pjsua or baresip
            sound = len(media) > 1 and media.count(media[:1]) != len(media)
            with self._lock:
                self.packets += 1
                self.by_side[side] += 1
                self.ports[side].add(port)
                counts = self.per_port.setdefault((side, port), [0, 0])
                counts[0] += 1
                counts[1] += sound
                last = self._last.get((port, ssrc))
                self._last[(port, ssrc)] = stamp
                if last is None or stamp - last > GAP:
                    self.starts.append(Start(side, port, ssrc, stamp))

    def sounding_ports(self, side: str, least: int) -> int:
        """How many ports of `side` received at least `least` RTP packets carrying sound."""
        with self._lock:
            return sum(1 for (where, _), (_, sound) in self.per_port.items()
                       if where == side and sound >= least)

    def dropped(self) -> int:
        """Packets the kernel dropped for this socket because it read too slowly (so far;
        PACKET_STATISTICS resets on each read)."""
        if self._sock is None:
            return 0
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return 0
        _packets, drops = struct.unpack("II", raw)
        self._drops += drops
        return self._drops

    def first_since(self, side: str, since: float) -> float | None:
        """Receive time of the earliest stream start at `side` since `since`."""
        with self._lock:
            times = [s.time for s in self.starts if s.side == side and s.time >= since]
        return min(times, default=None)

    def firsts(self, since: float) -> dict[str, float | None]:
        """Per side, the first RTP of a stream started since `since` (None: none yet)."""
        return {side: self.first_since(side, since) for side in self.ranges}

    def started(self, since: float) -> bool:
        """Every side has received RTP of a stream started since `since`."""
        return all(t is not None for t in self.firsts(since).values())

    def wait_firsts(self, since: float, timeout: float) -> dict[str, float | None]:
        """firsts, once every side has some or `timeout` is over (blocking; the times are
        the kernel's, so polling does not delay them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.error and not self.started(since):
            time.sleep(0.005)
        return self.firsts(since)


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return time.time()  # no kernel stamp: our receive time, a little later


def port_range(text: str) -> range:
    """'20000-20063' -> range(20000, 20064)."""
    low, _, high = text.partition("-")
    return range(int(low), int(high or low) + 1)
