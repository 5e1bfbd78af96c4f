"""Free ports on 127.0.0.1 for the peers the tests start.

Ports are drawn at random below the kernel's ephemeral range (so an outgoing connection of some
other program cannot take one between the check and the peer's bind), checked by binding UDP
and TCP, and remembered for the life of the test process so two peers never get the same one.
There is still a window between the check and the peer's own bind; the randomness keeps
collisions with other test runs on the same host rare.
"""

from __future__ import annotations

import random
import socket
import threading

HOST = "127.0.0.1"

_lock = threading.Lock()
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _search_range() -> tuple[int, int]:
    low, _ = _ephemeral_range()
    # Stay clear of the well-known SIP ports and of the ephemeral range.
    if low > 12000:
        return 10000, low - 1
    return 40000, 65000


def is_free(port: int, *, udp: bool = True, tcp: bool = True) -> bool:
    """True when `port` can be bound on 127.0.0.1 for the asked protocols right now."""
    kinds = []
    if udp:
        kinds.append(socket.SOCK_DGRAM)
    if tcp:
        kinds.append(socket.SOCK_STREAM)
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:
                # Servers set SO_REUSEADDR, so a TIME_WAIT left by an earlier test is no conflict;
                # a listening socket still is.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port_block(count: int = 1, *, udp: bool = True, tcp: bool = True) -> int:
    """First port of `count` consecutive ports free on 127.0.0.1 for UDP and TCP.

    The whole block is reserved for this process, so blocks never overlap.
    """
    low, high = _search_range()
    with _lock:
        for _ in range(2000):
            base = random.randint(low, high - count)
            block = range(base, base + count)
            if any(p in _handed_out for p in block):
                continue
            if all(is_free(p, udp=udp, tcp=tcp) for p in block):
                _handed_out.update(block)
                return base
    raise RuntimeError(f"no block of {count} free ports found on {HOST}")


def free_port(*, udp: bool = True, tcp: bool = True) -> int:
    """One port free on 127.0.0.1 for UDP and TCP (both by default)."""
    return free_port_block(1, udp=udp, tcp=tcp)


def rtp_port_range(size: int = 64) -> str:
    """`size` consecutive UDP ports below the ephemeral range that look free right now, as an
    `rtp.port_range` value (sampled every 7th port: a range, not a promise)."""
    for _ in range(50):
        low = random.randrange(20000, 32000 - size, 2)
        if all(is_free(port, tcp=False) for port in range(low, low + size, 7)):
            return f"{low}-{low + size - 1}"
    raise RuntimeError("no free RTP port range found")
