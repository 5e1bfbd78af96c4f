"""sipd/netwatch.py: the rtnetlink parser and the state it keeps (captured and crafted bytes),
the debounce with a fake source and a virtual clock, the fallback to polling, and the real
thing inside a network namespace that has only loopback (`unshare --net`): the watcher alone,
then a sipd daemon registered with a sipp registrar that registers again when the namespace's
network changes, long before its refresh timer (expires 3600).

The namespace parts run this module as a driver script (`python -m tests.test_netwatch MODE
DIR`) inside the namespace; it prints its findings as one JSON line and the test checks them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from sipd import netwatch
from sipd.netwatch import (
    AF_INET,
    AF_INET6,
    IFF_RUNNING,
    IFF_UP,
    Address,
    Done,
    Error,
    Link,
    NetlinkFormatError,
    NetworkState,
    Route,
    dump_request,
    parse_messages,
    probe_differences,
    summarize,
    watch_network,
)

ROOT = Path(__file__).resolve().parent.parent
RESULT_MARK = "NETWATCH-RESULT "

# -- bytes: captured from a kernel (6.x, a fresh namespace with `ip route add default dev lo`
#    and `ip addr add 127.0.0.2/8 dev lo`), and crafted ------------------------------------

CAPTURED_ADDR_V4 = bytes.fromhex(  # RTM_NEWADDR 127.0.0.1/8 on lo (index 1), scope host
    "4c000000140002000200000040710000020880fe01000000080001007f000001080002007f000001"
    "070003006c6f0000080008008000000014000600ffffffffffffffff704e0700704e0700")
CAPTURED_ADDR_V6 = bytes.fromhex(  # RTM_NEWADDR ::1/128 on lo; ends with a 5-byte attribute
    "500000001400020002000000407100000a8080fe01000000140001000000000000000000000000000000"
    "000114000600ffffffffffffffff704e0700704e0700080008008000000005000b0001000000")
CAPTURED_DEFAULT_ROUTE = bytes.fromhex(  # RTM_NEWROUTE default dev lo, table main
    "2c00000018000200030000004071000002000000fe03fd010000000008000f00fe0000000800040001000000")
CAPTURED_LOCAL_ROUTE = bytes.fromhex(  # RTM_NEWROUTE local 127.0.0.1 dev lo, table local
    "3c00000018000200030000004071000002200000ff02fe020000000008000f00ff000000080001007f00"
    "0001080007007f0000010800040001000000")
CAPTURED_DONE = bytes.fromhex("1400000003000200010000004071000000000000")  # NLMSG_DONE seq 1

HEADER = struct.Struct("=IHHII")


def attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + bytes(-length % 4)


def message(kind: int, payload: bytes, seq: int = 0, flags: int = 0) -> bytes:
    return HEADER.pack(16 + len(payload), kind, flags, seq, 0) + payload + bytes(-len(payload) % 4)


def link_msg(index: int, name: str, flags: int, *, deleted: bool = False) -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0xFFFFFFFF) + attr(3, name.encode() + b"\0")
    return message(17 if deleted else 16, body)


def addr_msg(index: int, address: str, prefixlen: int, *, family: int = AF_INET,
             scope: int = 0, flags: int = 0x80, deleted: bool = False,
             extended_flags: int | None = None) -> bytes:
    packed = ipaddress.ip_address(address).packed
    body = struct.pack("=BBBBI", family, prefixlen, flags & 0xFF, scope, index)
    body += attr(1, packed) + (attr(2, packed) if family == AF_INET else b"")
    if extended_flags is not None:
        body += attr(8, struct.pack("=I", extended_flags))
    return message(21 if deleted else 20, body)


def route_msg(*, family: int = AF_INET, dst_len: int = 0, table: int = 254, gateway: str | None,
              oif: int, priority: int | None = None, deleted: bool = False) -> bytes:
    body = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, 4, 0, 1, 0)
    body += attr(15, struct.pack("=I", table)) + attr(4, struct.pack("=I", oif))
    if gateway:
        body += attr(5, ipaddress.ip_address(gateway).packed)
    if priority is not None:
        body += attr(6, struct.pack("=I", priority))
    return message(25 if deleted else 24, body)


UP = IFF_UP | IFF_RUNNING


def state_with(*datagrams: bytes) -> NetworkState:
    state = NetworkState()
    for data in datagrams:
        state.apply_all(parse_messages(data))
    return state


# -- the parser ------------------------------------------------------------------------------


def test_captured_kernel_messages_parse():
    datagram = (CAPTURED_ADDR_V4 + CAPTURED_ADDR_V6 + CAPTURED_DEFAULT_ROUTE
                + CAPTURED_LOCAL_ROUTE + CAPTURED_DONE)
    v4, v6, default, local, done = parse_messages(datagram)
    assert v4 == Address(1, AF_INET, "127.0.0.1", 8, 0xFE, 0x80, seq=2)
    assert v6.address == "::1" and v6.prefixlen == 128 and v6.family == AF_INET6
    assert v6.usable and not v6.deleted
    assert isinstance(default, Route) and default.is_default
    assert (default.gateway, default.oif, default.table) == (None, 1, 254)
    assert isinstance(local, Route) and not local.is_default  # table local, a host route
    assert done == Done(1)


def test_crafted_messages_parse():
    link, = parse_messages(link_msg(3, "eth0", UP))
    assert link == Link(3, "eth0", UP) and link.up
    gone, = parse_messages(link_msg(3, "eth0", IFF_UP, deleted=True))
    assert gone.deleted and not gone.up
    route, = parse_messages(route_msg(gateway="192.0.2.254", oif=3, priority=100))
    assert (route.gateway, route.oif, route.priority, route.is_default) == \
        ("192.0.2.254", 3, 100, True)
    tentative, = parse_messages(addr_msg(3, "2001:db8::7", 64, family=AF_INET6,
                                         extended_flags=0x40))
    assert not tentative.usable  # IFA_FLAGS (32 bit) wins over the 8-bit field
    error, = parse_messages(message(2, struct.pack("=i", -16) + bytes(16), seq=9))
    assert error == Error(9, 16)


def test_messages_we_do_not_watch_are_skipped():
    neighbour = message(28, bytes(12))  # RTM_NEWNEIGH
    noop = message(1, b"")
    assert parse_messages(neighbour + noop + CAPTURED_DONE) == [Done(1)]


@pytest.mark.parametrize("data", [
    CAPTURED_ADDR_V4[:10],  # less than a header
    CAPTURED_ADDR_V4[:-4],  # the header says more than there is
    HEADER.pack(8, 20, 0, 0, 0),  # a length shorter than the header itself
    message(20, bytes(4)),  # an address message without its ifaddrmsg
    message(20, struct.pack("=BBBBI", 2, 8, 0, 0, 1) + struct.pack("=HH", 40, 1) + bytes(4)),
], ids=["short", "cut", "tiny-length", "short-body", "attribute-overflow"])
def test_malformed_datagrams_are_refused(data):
    with pytest.raises(NetlinkFormatError):
        parse_messages(data)


def test_dump_requests():
    request = dump_request(netwatch.RTM_GETADDR, 7)
    length, kind, flags, seq, pid = HEADER.unpack_from(request)
    assert (length, kind, flags, seq, pid) == (len(request), 22, 0x301, 7, 0)
    assert request[16:] == bytes(8)  # an ifaddrmsg of zeros: every family, every link
    assert len(dump_request(netwatch.RTM_GETLINK, 1)) == 32
    assert len(dump_request(netwatch.RTM_GETROUTE, 1)) == 28


# -- what counts as a change -----------------------------------------------------------------


def test_a_restated_address_changes_nothing():
    state = state_with(link_msg(2, "wlan0", UP), addr_msg(2, "192.0.2.10", 24))
    assert state.apply_all(parse_messages(addr_msg(2, "192.0.2.10", 24))) == []
    # deprecated (0x20) is a flag, not another address
    assert state.apply_all(parse_messages(addr_msg(2, "192.0.2.10", 24, flags=0xA0))) == []
    assert state.apply_all(parse_messages(link_msg(2, "wlan0", UP))) == []


def test_addresses_added_and_removed():
    state = state_with(link_msg(1, "lo", UP | 0x8), CAPTURED_ADDR_V4)
    assert state.apply_all(parse_messages(addr_msg(1, "127.0.0.2", 8, scope=0xFE))) == \
        ["address 127.0.0.2/8 added on lo"]
    assert state.apply_all(parse_messages(addr_msg(1, "127.0.0.2", 8, deleted=True))) == \
        ["address 127.0.0.2/8 removed from lo"]
    assert state.apply_all(parse_messages(addr_msg(1, "127.0.0.2", 8, deleted=True))) == []


def test_link_local_and_tentative_addresses_do_not_count_until_usable():
    state = state_with(link_msg(2, "eth0", UP))
    assert state.apply_all(parse_messages(addr_msg(2, "fe80::1", 64, family=AF_INET6,
                                                   scope=253))) == []
    assert state.apply_all(parse_messages(addr_msg(2, "2001:db8::7", 64, family=AF_INET6,
                                                   extended_flags=0x40))) == []
    # duplicate address detection is over: now it is an address
    assert state.apply_all(parse_messages(addr_msg(2, "2001:db8::7", 64, family=AF_INET6,
                                                   extended_flags=0x100))) == \
        ["address 2001:db8::7/64 added on eth0"]


def test_link_up_down_and_removed():
    state = state_with(link_msg(2, "eth0", IFF_UP))  # up but no carrier
    assert state.apply_all(parse_messages(link_msg(2, "eth0", UP))) == ["link eth0 is up"]
    assert state.apply_all(parse_messages(link_msg(2, "eth0", IFF_UP))) == ["link eth0 is down"]
    state.apply_all(parse_messages(link_msg(2, "eth0", UP) + route_msg(gateway="10.0.0.1",
                                                                      oif=2)))
    assert state.apply_all(parse_messages(link_msg(2, "eth0", UP, deleted=True))) == \
        ["link eth0 removed"]
    assert not state.routes  # IPv4 routes go with their link without a message


def test_default_routes_count_and_other_routes_do_not():
    state = state_with(link_msg(2, "eth0", UP))
    assert state.apply_all(parse_messages(CAPTURED_LOCAL_ROUTE)) == []
    assert state.apply_all(parse_messages(route_msg(dst_len=24, gateway=None, oif=2))) == []
    assert state.apply_all(parse_messages(route_msg(gateway="10.0.0.1", oif=2))) == \
        ["IPv4 default route via 10.0.0.1 dev eth0 added"]
    assert state.apply_all(parse_messages(route_msg(gateway="10.0.0.1", oif=2))) == []
    assert state.apply_all(parse_messages(route_msg(table=100, gateway="10.9.9.9", oif=2))) == []
    assert state.apply_all(parse_messages(route_msg(gateway="10.0.0.1", oif=2,
                                                    deleted=True))) == \
        ["IPv4 default route via 10.0.0.1 dev eth0 removed"]


def test_differences_between_two_states():
    before = state_with(link_msg(2, "eth0", UP), addr_msg(2, "192.0.2.10", 24),
                        route_msg(gateway="192.0.2.1", oif=2))
    after = state_with(link_msg(2, "eth0", UP), link_msg(3, "wlan0", UP),
                       addr_msg(3, "198.51.100.7", 24), route_msg(gateway="198.51.100.1", oif=3))
    assert before.differences(after) == [
        "link wlan0 is up",
        "address 198.51.100.7/24 added on wlan0",
        "address 192.0.2.10/24 removed from eth0",
        "IPv4 default route via 198.51.100.1 dev wlan0 added",
        "IPv4 default route via 192.0.2.1 dev eth0 removed",
    ]
    assert after.differences(after) == []


def test_route_probe_differences_and_summary():
    assert probe_differences((None, None), ("10.0.0.5", None)) == \
        ["IPv4 internet route came back (from 10.0.0.5)"]
    assert probe_differences(("10.0.0.5", "2001:db8::5"), (None, "2001:db8::5")) == \
        ["IPv4 internet route went away"]
    assert probe_differences(("10.0.0.5", None), ("10.0.0.6", None)) == \
        ["IPv4 internet route now from 10.0.0.6 (was 10.0.0.5)"]
    assert summarize(["a", "b", "a", "c", "d", "e"]) == "a; b; c (and 2 more)"


def test_the_route_probe_answers_without_sending():
    v4, v6 = netwatch.probe_routes()  # whatever this host has: an address or None
    for found in (v4, v6):
        assert found is None or isinstance(found, str)


# -- the debounce, with a fake source and a virtual clock --------------------------------------


class FakeSource:
    """Stands in for rtnetlink: each `push` is one notification with what it changed."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[list[str]](100)
        self.missed: list[str] = []
        self.resyncs = 0
        self.closed = False

    def push(self, *changes: str) -> None:
        self._send.send_nowait(list(changes))

    async def receive(self) -> list[str]:
        return await self._receive.receive()

    async def resync(self) -> list[str]:
        self.resyncs += 1
        missed, self.missed = self.missed, []
        return missed

    def close(self) -> None:
        self.closed = True


class FakeProbe:
    def __init__(self) -> None:
        self.routes: tuple[str | None, str | None] = ("10.0.0.5", None)

    def __call__(self) -> tuple[str | None, str | None]:
        return self.routes


async def start_watch(nursery: trio.Nursery, calls: list[str], source: Any,
                      probe: FakeProbe, **kwargs: Any) -> None:
    await nursery.start(partial(watch_network, calls.append, open_source=lambda: source,
                                probe=probe, **kwargs))


async def test_a_burst_is_reported_once_when_it_has_been_quiet(autojump_clock):
    source, probe, calls = FakeSource(), FakeProbe(), []
    async with trio.open_nursery() as nursery:
        await start_watch(nursery, calls, source, probe)
        for n in range(5):  # messages closer together than the quiet period
            source.push(f"change {n}")
            await trio.sleep(netwatch.QUIET / 2)
        assert calls == []
        await trio.sleep(netwatch.QUIET + 1)
        assert calls == ["change 0; change 1; change 2 (and 2 more)"]
        nursery.cancel_scope.cancel()
    assert source.closed


async def test_messages_that_change_nothing_are_not_reported(autojump_clock, caplog):
    source, probe, calls = FakeSource(), FakeProbe(), []
    caplog.set_level(logging.DEBUG, logger="sipd.netwatch")
    async with trio.open_nursery() as nursery:
        await start_watch(nursery, calls, source, probe)
        resyncs = source.resyncs
        source.push()
        source.push()
        await trio.sleep(netwatch.QUIET * 3)
        assert calls == []
        assert source.resyncs == resyncs + 1  # it looked once more, after the burst
        assert "nothing relevant changed" in caplog.text
        nursery.cancel_scope.cancel()


async def test_no_route_then_a_route_is_reported_from_the_probe(autojump_clock):
    source, probe, calls = FakeSource(), FakeProbe(), []
    probe.routes = (None, None)
    async with trio.open_nursery() as nursery:
        await start_watch(nursery, calls, source, probe)
        probe.routes = ("192.0.2.77", None)
        source.push()  # a route message the state does not keep (not a default route)
        await trio.sleep(netwatch.QUIET * 3)
        assert calls == ["IPv4 internet route came back (from 192.0.2.77)"]
        probe.routes = (None, None)
        source.push()
        await trio.sleep(netwatch.QUIET * 3)
        assert calls[1:] == ["IPv4 internet route went away"]
        nursery.cancel_scope.cancel()


async def test_what_the_messages_missed_is_found_by_the_resync(autojump_clock):
    source, probe, calls = FakeSource(), FakeProbe(), []
    async with trio.open_nursery() as nursery:
        await start_watch(nursery, calls, source, probe)
        source.missed = ["address 192.0.2.9/24 added on eth0"]
        source.push()  # e.g. the notifications overflowed (ENOBUFS)
        await trio.sleep(netwatch.QUIET * 3)
        assert calls == ["address 192.0.2.9/24 added on eth0"]
        nursery.cancel_scope.cancel()


async def test_a_burst_that_never_ends_is_reported_after_max_delay(autojump_clock):
    source, probe, calls = FakeSource(), FakeProbe(), []
    async with trio.open_nursery() as nursery:
        await start_watch(nursery, calls, source, probe, quiet=2.0, max_delay=10.0)

        async def churn() -> None:
            while True:
                source.push("link wlan0 is up")
                await trio.sleep(1.0)

        nursery.start_soon(churn)
        await trio.sleep(10.5)
        assert calls == ["link wlan0 is up"]  # once, though the churn goes on
        nursery.cancel_scope.cancel()


async def test_a_failing_callback_does_not_end_the_watch(autojump_clock):
    source, probe, seen = FakeSource(), FakeProbe(), []

    def on_change(description: str) -> None:
        seen.append(description)
        raise RuntimeError("boom")

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(watch_network, on_change, open_source=lambda: source,
                                    probe=probe))
        for n in range(2):
            source.push(f"change {n}")
            await trio.sleep(netwatch.QUIET * 3)
        assert seen == ["change 0", "change 1"]
        nursery.cancel_scope.cancel()


async def test_without_rtnetlink_it_says_so_once_and_polls_the_route(autojump_clock, caplog):
    probe, calls = FakeProbe(), []
    caplog.set_level(logging.INFO, logger="sipd.netwatch")

    def unavailable() -> Any:
        raise PermissionError(13, "Permission denied")

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(watch_network, calls.append, open_source=unavailable,
                                    probe=probe))
        await trio.sleep(netwatch.POLL_INTERVAL * 3)
        assert calls == []
        probe.routes = (None, None)  # the network went away...
        await trio.sleep(netwatch.POLL_INTERVAL * 2)
        probe.routes = ("10.0.0.9", None)  # ... and came back elsewhere
        await trio.sleep(netwatch.POLL_INTERVAL * 2)
        assert calls == ["IPv4 internet route went away",
                         "IPv4 internet route came back (from 10.0.0.9)"]
        nursery.cancel_scope.cancel()
    notes = [r for r in caplog.records if "cannot watch the network" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert "Permission denied" in notes[0].getMessage()


async def test_a_source_whose_first_dump_fails_falls_back_to_polling(autojump_clock):
    source, probe = FakeSource(), FakeProbe()

    async def refuse() -> list[str]:
        raise OSError(95, "Operation not supported")

    source.resync = refuse  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(watch_network, lambda _: None, open_source=lambda: source,
                                    probe=probe))
        nursery.cancel_scope.cancel()
    assert source.closed


async def test_the_host_tables_can_be_read():
    """A real dump of this host's links, addresses and routes (reads only)."""
    try:
        source = netwatch.RtnetlinkSource()
    except OSError as exc:
        pytest.skip(f"no rtnetlink here: {exc}")
    try:
        await source.resync()
        assert source.state.names, "every Linux host has at least a loopback link"
    finally:
        source.close()


# -- inside a network namespace with loopback only ---------------------------------------------


def namespace_prefix() -> list[str]:
    """The command that runs something in a new network namespace with lo up; skips (fails in
    CI) where that cannot be done."""
    unshare = shutil.which("unshare")
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    problem = None
    if not unshare or not ip:
        problem = "unshare (util-linux) and ip (iproute2) are needed"
    else:
        prefix = [unshare, "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
        try:
            check = subprocess.run(prefix + [ip, "link", "set", "lo", "up"],
                                   capture_output=True, timeout=20)
            if check.returncode != 0:
                problem = check.stderr.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = repr(exc)
    if problem is not None:
        message = f"cannot make a network namespace: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return prefix


def run_in_namespace(mode: str, base: Path, timeout: float = 150) -> dict[str, Any]:
    """Run this module's driver `mode` in a fresh namespace; its JSON result."""
    base.mkdir(parents=True, exist_ok=True)
    script = 'ip link set lo up && exec "$0" -m tests.test_netwatch "$@"'
    argv = namespace_prefix() + ["sh", "-c", script, sys.executable, mode, str(base)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the {mode} driver did not finish in {timeout} s:\n"
                    f"{output.decode(errors='replace')[-8000:]}")
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        pytest.fail(f"the {mode} driver failed ({proc.returncode}):\n{text[-12000:]}")
    lines = [line for line in text.splitlines() if line.startswith(RESULT_MARK)]
    assert lines, text[-8000:]
    return json.loads(lines[-1][len(RESULT_MARK):])


def test_the_watcher_sees_the_namespace_change(tmp_path):
    result = run_in_namespace("watcher", tmp_path)
    assert result["route to another network"] == [], result  # nothing relevant
    assert any("127.0.0.2/8 added on lo" in c for c in result["address added"]), result
    assert any("IPv4 internet route came back" in c for c in result["default route added"])
    assert any("IPv4 internet route went away" in c for c in result["default route removed"])
    # down and up again within one quiet period: the same in the end, reported all the same
    flap = result["lo down and up"]
    assert len(flap) == 1 and "link lo is down" in flap[0], result


@pytest.mark.interop
def test_sipd_registers_again_when_the_network_changes(tmp_path):
    from tests.peers.proc import require_binary
    require_binary("sipp")
    result = run_in_namespace("daemon", tmp_path, timeout=180)
    first, *others = result["registers"]
    assert first["expires"] == "3600"
    # a route to another network: messages, but nothing that matters to the registration
    assert result["after unrelated route"] == 1
    # an address added, then "no route" -> "a route": a REGISTER each, before any refresh
    assert result["after address added"] == 2
    assert result["after default route added"] == 3
    assert all(r["call_id"] == first["call_id"] for r in others)
    cseqs = [r["cseq"] for r in result["registers"]]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs)
    assert result["state"] == "registered"
    assert any("127.0.0.2/8 added on lo" in line for line in result["changes logged"])


# -- the drivers (run inside the namespace by the tests above) --------------------------------

REGISTRAR_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A registrar that answers every REGISTER with 200 OK and a binding of 3600 s. -->
<scenario name="REGISTER, 200 OK, again and again">
  <label id="next"/>
  <recv request="REGISTER" timeout="170000" ontimeout="end"/>
  <send next="next">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]reg[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=3600
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
</scenario>
"""


def _ip(*args: str) -> None:
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin") or "ip"
    subprocess.run([ip, *args], check=True, timeout=10)


async def drive_watcher(base: Path) -> dict[str, Any]:
    """watch_network alone: what each change of the namespace made it report."""
    settled = 0

    class Settled(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            nonlocal settled
            if "nothing relevant changed" in record.getMessage():
                settled += 1

    logger = logging.getLogger("sipd.netwatch")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Settled())
    calls: list[str] = []
    steps = {
        "route to another network": [("route", "add", "198.51.100.0/24", "dev", "lo")],
        "address added": [("addr", "add", "127.0.0.2/8", "dev", "lo")],
        "default route added": [("route", "add", "default", "dev", "lo")],
        "default route removed": [("route", "del", "default", "dev", "lo")],
        "lo down and up": [("link", "set", "lo", "down"), ("link", "set", "lo", "up")],
    }
    result: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(watch_network, calls.append, quiet=0.5))
        for name, commands in steps.items():
            before, settled_before = len(calls), settled
            for command in commands:
                _ip(*command)
            with trio.fail_after(20):
                while len(calls) == before and settled == settled_before:
                    await trio.sleep(0.05)
            result[name] = calls[before:]
        nursery.cancel_scope.cancel()
    return result


async def drive_daemon(base: Path) -> dict[str, Any]:
    """A sipd daemon registered (expires 3600) with a sipp registrar; the REGISTERs that
    reach the registrar after each change of the namespace's network."""
    from tests.harness.registration import running_sipd
    from tests.harness.sipp import header, received_so_far
    from tests.harness.waits import off_loop, wait_until
    from tests.peers.sipp import Sipp

    scenario = base / "registrar_200_always.xml"
    scenario.write_text(REGISTRAR_SCENARIO)
    uas = Sipp(base).start(scenario, timeout=170)
    result: dict[str, Any] = {}
    try:
        async with running_sipd(base) as (daemon, client, regs):
            await off_loop(wait_until, lambda: "watching the network" in daemon.log(),
                           timeout=20, what="sipd watching the network")
            account = await client.call("accounts.add", {
                "aor": "sip:alice@example.test", "expires": 3600,
                "registrar": f"sip:127.0.0.1:{uas.local_port}"})
            await regs.wait(account["id"], "registered")

            async def registers_reach(count: int, what: str) -> int:
                await off_loop(wait_until, lambda: len(received_so_far(uas)) >= count,
                               timeout=20, what=what)
                return len(received_so_far(uas))

            await registers_reach(1, "the first REGISTER")

            settled = daemon.log().count("nothing relevant changed")
            _ip("route", "add", "198.51.100.0/24", "dev", "lo")
            await off_loop(wait_until,
                           lambda: daemon.log().count("nothing relevant changed") > settled,
                           timeout=20, what="the watcher to settle on an unrelated route")
            result["after unrelated route"] = len(received_so_far(uas))

            _ip("addr", "add", "127.0.0.2/8", "dev", "lo")
            result["after address added"] = await registers_reach(2, "a REGISTER after the "
                                                                  "address was added")
            _ip("route", "add", "default", "dev", "lo")
            result["after default route added"] = await registers_reach(
                3, "a REGISTER after the default route came")
            state = await client.call("accounts.get", {"id": account["id"]})
            result["state"] = state["registration"]["state"]
            result["registers"] = [
                {"expires": header(r, "Expires"), "call_id": header(r, "Call-ID"),
                 "cseq": int((header(r, "CSeq") or "0").split()[0])}
                for r in received_so_far(uas)]
            result["changes logged"] = [line for line in daemon.log().splitlines()
                                        if "network changed:" in line]
    finally:
        uas.stop()
    return result


DRIVERS = {"watcher": drive_watcher, "daemon": drive_daemon}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    found = trio.run(DRIVERS[sys.argv[1]], Path(sys.argv[2]))
    print(RESULT_MARK + json.dumps(found), flush=True)
