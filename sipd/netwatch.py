"""Notice when the host's network changes, so that registrations are renewed at once instead of
at their next refresh (a laptop that wakes on another network, a cable plugged back in).

Two layers, as elsewhere in sipd:
- sans-I/O: `parse_messages()` turns rtnetlink datagrams into `Link`, `Address` and `Route`
  records, `dump_request()` builds the requests for the kernel's tables, and `NetworkState`
  keeps what matters (links up or down, usable addresses, default routes of the main table)
  and says in words what a message changed;
- trio: `watch_network()` reads an rtnetlink socket bound to the link, address and route
  groups (`RtnetlinkSource`), waits until the messages stop for `quiet` seconds, re-reads the
  tables, probes the route to two documentation addresses (`probe_routes()`, a connected UDP
  socket that sends nothing) and calls `on_change(description)` when something relevant
  changed. Where rtnetlink cannot be opened (not Linux, a sandbox) it says so once and polls
  the route probe instead (`PollingSource`).

What counts: an address added or removed (IPv6 addresses still in duplicate address detection,
and link-local ones, do not), a link that comes up or goes down, a default route added or
removed, the source address the kernel picks for the internet changing (including "no route"
to "a route" and back). A message that restates what is already known (the lifetime refresh
of an IPv6 address after each router advertisement, a wireless statistics update) does not
count. A link that went down and came back within one quiet period counts: what was lost with
it (NAT bindings, a TCP connection to the registrar) is gone even if everything looks the same.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import trio

log = logging.getLogger(__name__)

QUIET = 2.0  # seconds without a message before the burst is over
MAX_DELAY = 20.0  # a burst that never ends is reported after this long anyway
POLL_INTERVAL = 30.0  # seconds between route probes when rtnetlink is unavailable
DUMP_TIMEOUT = 5.0  # seconds the kernel has to answer a dump request

# Documentation addresses (RFC 5737, RFC 3849): nothing is ever sent there, the kernel is only
# asked which source address a datagram to them would leave from.
PROBE_TARGETS = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))

# -- rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if.h) --

NETLINK_ROUTE = 0
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR
          | RTMGRP_IPV6_ROUTE)

IFLA_IFNAME = 3
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RT_SCOPE_LINK = 253
IFF_UP, IFF_RUNNING = 0x1, 0x40
AF_INET, AF_INET6 = 2, 10  # Linux values, as they appear in the messages

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_ATTR = struct.Struct("=HH")  # rtattr: length, type
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table,
#                                       protocol, scope, type, flags
_ERRNO = struct.Struct("=i")
_ADDRESS_LENGTHS = {AF_INET: 4, AF_INET6: 16}


class NetlinkFormatError(ValueError):
    """A datagram that is not a well-formed sequence of rtnetlink messages."""


# -- messages (sans-I/O) ------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    index: int
    name: str | None
    flags: int
    deleted: bool = False
    seq: int = 0

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP) and bool(self.flags & IFF_RUNNING)


@dataclass(frozen=True)
class Address:
    index: int
    family: int
    address: str
    prefixlen: int
    scope: int
    flags: int
    deleted: bool = False
    seq: int = 0

    @property
    def usable(self) -> bool:
        """Counts for reachability: not link-local, not (yet, or ever) failing DAD."""
        return self.scope != RT_SCOPE_LINK and not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)


@dataclass(frozen=True)
class Route:
    family: int
    dst_len: int
    table: int
    type: int
    gateway: str | None
    oif: int | None
    priority: int | None
    deleted: bool = False
    seq: int = 0

    @property
    def is_default(self) -> bool:
        return self.dst_len == 0 and self.table == RT_TABLE_MAIN and self.type == RTN_UNICAST


@dataclass(frozen=True)
class Done:
    seq: int


@dataclass(frozen=True)
class Error:
    seq: int
    errno: int  # positive; 0 is an acknowledgement


@dataclass(frozen=True)
class Overrun:
    seq: int


Message = Link | Address | Route | Done | Error | Overrun


def _align(length: int) -> int:
    return (length + 3) & ~3


def _attributes(data: bytes, offset: int) -> dict[int, bytes]:
    """The rtattr list from `offset` to the end of `data`: type -> value (the last wins)."""
    attrs: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size or offset + length > len(data):
            raise NetlinkFormatError(f"attribute of length {length} at {offset} of {len(data)}")
        attrs[kind & 0x3FFF] = data[offset + _ATTR.size:offset + length]  # no NESTED/BYTEORDER
        offset += _align(length)
    return attrs


def _address(family: int, value: bytes | None) -> str | None:
    if value is None or _ADDRESS_LENGTHS.get(family) != len(value):
        return None
    return str(ipaddress.ip_address(value))


def _u32(value: bytes | None) -> int | None:
    return struct.unpack("=I", value)[0] if value is not None and len(value) == 4 else None


def _need(payload: bytes, layout: struct.Struct, what: str) -> None:
    if len(payload) < layout.size:
        raise NetlinkFormatError(f"{what} of {len(payload)} bytes (needs {layout.size})")


def _decode(kind: int, seq: int, payload: bytes) -> Message | None:
    if kind in (RTM_NEWLINK, RTM_DELLINK):
        _need(payload, _IFINFO, "link message")
        _family, _type, index, flags, _change = _IFINFO.unpack_from(payload)
        name = _attributes(payload, _IFINFO.size).get(IFLA_IFNAME)
        return Link(index, name.split(b"\0", 1)[0].decode(errors="replace") if name else None,
                    flags, deleted=kind == RTM_DELLINK, seq=seq)
    if kind in (RTM_NEWADDR, RTM_DELADDR):
        _need(payload, _IFADDR, "address message")
        family, prefixlen, flags, scope, index = _IFADDR.unpack_from(payload)
        attrs = _attributes(payload, _IFADDR.size)
        # IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on point-to-point
        address = _address(family, attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS)))
        if address is None:
            return None  # another family (e.g. DECnet, MPLS): nothing of ours
        extended = _u32(attrs.get(IFA_FLAGS))
        return Address(index, family, address, prefixlen, scope,
                       extended if extended is not None else flags,
                       deleted=kind == RTM_DELADDR, seq=seq)
    if kind in (RTM_NEWROUTE, RTM_DELROUTE):
        _need(payload, _RTMSG, "route message")
        family, dst_len, _src, _tos, table, _proto, _scope, rtype, _flags = \
            _RTMSG.unpack_from(payload)
        if family not in _ADDRESS_LENGTHS:
            return None
        attrs = _attributes(payload, _RTMSG.size)
        return Route(family, dst_len, _u32(attrs.get(RTA_TABLE)) or table, rtype,
                     _address(family, attrs.get(RTA_GATEWAY)), _u32(attrs.get(RTA_OIF)),
                     _u32(attrs.get(RTA_PRIORITY)), deleted=kind == RTM_DELROUTE, seq=seq)
    if kind == NLMSG_DONE:
        return Done(seq)
    if kind == NLMSG_ERROR:
        _need(payload, _ERRNO, "error message")
        return Error(seq, -_ERRNO.unpack_from(payload)[0])
    if kind == NLMSG_OVERRUN:
        return Overrun(seq)
    return None  # NLMSG_NOOP, neighbours, rules... nothing we watch


def parse_messages(data: bytes) -> list[Message]:
    """The messages of one rtnetlink datagram that concern us, in order. Raises
    NetlinkFormatError for a datagram that is cut short or inconsistent."""
    messages: list[Message] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            raise NetlinkFormatError(f"{len(data) - offset} bytes left, less than a header")
        length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            raise NetlinkFormatError(f"message of length {length} at {offset} of {len(data)}")
        decoded = _decode(kind, seq, data[offset + _HEADER.size:offset + length])
        if decoded is not None:
            messages.append(decoded)
        offset += _align(length)
    return messages


def dump_request(kind: int, seq: int) -> bytes:
    """A request for the whole table `kind` (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) of
    every address family; the header is followed by the zeroed struct the kernel expects."""
    body = {RTM_GETLINK: _IFINFO, RTM_GETADDR: _IFADDR, RTM_GETROUTE: _RTMSG}[kind].size
    return _HEADER.pack(_HEADER.size + body, kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) \
        + bytes(body)


# -- what matters (sans-I/O) ----------------------------------------------------------------


@dataclass(frozen=True)
class _AddressKey:
    index: int
    family: int
    address: str
    prefixlen: int


@dataclass(frozen=True)
class _RouteKey:
    family: int
    gateway: str | None
    oif: int | None
    priority: int | None


@dataclass
class NetworkState:
    """Links (up or not, by index), usable addresses and default routes of the main table.

    `apply()` takes a message (an event or a line of a dump) and returns, in words, what it
    changed: an empty list for a message that restates what is known.
    """

    names: dict[int, str] = field(default_factory=dict)
    links_up: dict[int, bool] = field(default_factory=dict)
    addresses: set[_AddressKey] = field(default_factory=set)
    routes: set[_RouteKey] = field(default_factory=set)

    def name(self, index: int | None) -> str:
        if index is None:
            return "?"
        return self.names.get(index) or f"#{index}"

    def apply(self, message: Message) -> list[str]:
        if isinstance(message, Link):
            return self._apply_link(message)
        if isinstance(message, Address):
            return self._apply_address(message)
        if isinstance(message, Route):
            return self._apply_route(message)
        return []

    def apply_all(self, messages: Iterable[Message]) -> list[str]:
        changes: list[str] = []
        for message in messages:
            changes += self.apply(message)
        return changes

    def _apply_link(self, link: Link) -> list[str]:
        if link.name:
            self.names[link.index] = link.name
        name = self.name(link.index)
        was_up = self.links_up.get(link.index, False)
        if link.deleted:
            self.links_up.pop(link.index, None)
            self.names.pop(link.index, None)
            # IPv4 routes that go with a link are removed without a message of their own
            self.routes = {r for r in self.routes if r.oif != link.index}
            return [f"link {name} removed"] if was_up else []
        self.links_up[link.index] = link.up
        if link.up != was_up:
            return [f"link {name} is {'up' if link.up else 'down'}"]
        return []

    def _apply_address(self, address: Address) -> list[str]:
        key = _AddressKey(address.index, address.family, address.address, address.prefixlen)
        present = key in self.addresses
        text = f"address {address.address}/{address.prefixlen}"
        if address.deleted or not address.usable:
            if not present:
                return []
            self.addresses.discard(key)
            return [f"{text} removed from {self.name(address.index)}"]
        if present:
            return []  # a lifetime refresh, a flag such as "deprecated": nothing new
        self.addresses.add(key)
        return [f"{text} added on {self.name(address.index)}"]

    def _apply_route(self, route: Route) -> list[str]:
        if not route.is_default:
            return []  # the route probe sees what more specific routes do to us
        key = _RouteKey(route.family, route.gateway, route.oif, route.priority)
        present = key in self.routes
        text = self._describe_route(key)
        if route.deleted:
            if not present:
                return []
            self.routes.discard(key)
            return [f"{text} removed"]
        if present:
            return []
        self.routes.add(key)
        return [f"{text} added"]

    def _describe_route(self, key: _RouteKey) -> str:
        via = f" via {key.gateway}" if key.gateway else ""
        family = "IPv4" if key.family == AF_INET else "IPv6"
        return f"{family} default route{via} dev {self.name(key.oif)}"

    def differences(self, other: NetworkState) -> list[str]:
        """What changed from this state to `other` (e.g. a fresh dump), in words."""
        changes: list[str] = []
        for index in sorted(set(self.links_up) | set(other.links_up)):
            before, after = self.links_up.get(index, False), other.links_up.get(index, False)
            if before != after:
                name = other.name(index) if index in other.names else self.name(index)
                changes.append(f"link {name} is {'up' if after else 'down'}")
        for key in sorted(other.addresses - self.addresses, key=repr):
            changes.append(f"address {key.address}/{key.prefixlen} added on "
                           f"{other.name(key.index)}")
        for key in sorted(self.addresses - other.addresses, key=repr):
            changes.append(f"address {key.address}/{key.prefixlen} removed from "
                           f"{self.name(key.index)}")
        for route in sorted(other.routes - self.routes, key=repr):
            changes.append(f"{other._describe_route(route)} added")
        for route in sorted(self.routes - other.routes, key=repr):
            changes.append(f"{self._describe_route(route)} removed")
        return changes


# -- the route probe --------------------------------------------------------------------------

#: the source address towards the internet: (IPv4 or None, IPv6 or None)
RouteProbe = tuple[str | None, str | None]


def probe_routes() -> RouteProbe:
    """The source address the kernel would use towards the internet, per family, or None
    where there is no route. `connect()` on a UDP socket only looks the route up."""
    found: list[str | None] = []
    for family, target in PROBE_TARGETS:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                found.append(probe.getsockname()[0])
        except OSError:  # no route (ENETUNREACH), no such family on this host
            found.append(None)
    ipv4, ipv6 = found
    return ipv4, ipv6


def probe_differences(before: RouteProbe, after: RouteProbe) -> list[str]:
    changes = []
    for family, old, new in zip(("IPv4", "IPv6"), before, after, strict=True):
        if old == new:
            continue
        if old is None:
            changes.append(f"{family} internet route came back (from {new})")
        elif new is None:
            changes.append(f"{family} internet route went away")
        else:
            changes.append(f"{family} internet route now from {new} (was {old})")
    return changes


def summarize(changes: list[str], limit: int = 3) -> str:
    unique = list(dict.fromkeys(changes))
    text = "; ".join(unique[:limit])
    return text + (f" (and {len(unique) - limit} more)" if len(unique) > limit else "")


# -- sources of "something happened" (trio) ----------------------------------------------------


class Source(Protocol):
    async def receive(self) -> list[str]:
        """Wait for the next notification; what it changed (possibly nothing)."""

    async def resync(self) -> list[str]:
        """Read the whole state again; what it had missed."""

    def close(self) -> None: ...


def _netlink_socket(groups: int) -> socket.socket:
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        raise OSError(errno.EAFNOSUPPORT, "no AF_NETLINK on this platform")
    sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                         NETLINK_ROUTE)
    try:
        if groups:
            try:  # room for a burst (dozens of routes when a VPN comes up)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            except OSError:
                pass
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


class RtnetlinkSource:
    """Notifications of the kernel's link, address and route groups, and dumps of its tables
    (on a second socket of its own, so that answers and notifications never interleave)."""

    RECV_SIZE = 1 << 16

    def __init__(self) -> None:
        self._events = _netlink_socket(GROUPS)
        self.state = NetworkState()
        self._seq = 0

    def close(self) -> None:
        self._events.close()

    async def receive(self) -> list[str]:
        while True:
            await trio.lowlevel.wait_readable(self._events)
            try:
                data = self._events.recv(self.RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # we fell behind; resync() will catch up
                    log.debug("rtnetlink notifications were lost (ENOBUFS)")
                    return []
                raise
            try:
                return self.state.apply_all(parse_messages(data))
            except NetlinkFormatError as exc:
                log.debug("an rtnetlink notification could not be read (%s)", exc)
                return []

    async def resync(self) -> list[str]:
        fresh = NetworkState()
        with _netlink_socket(0) as sock, trio.fail_after(DUMP_TIMEOUT):
            for kind in (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE):
                self._seq += 1
                sock.send(dump_request(kind, self._seq))
                await self._read_dump(sock, self._seq, fresh)
        missed = self.state.differences(fresh)
        self.state = fresh
        return missed

    async def _read_dump(self, sock: socket.socket, seq: int, into: NetworkState) -> None:
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                data = sock.recv(self.RECV_SIZE)
            except BlockingIOError:
                continue
            for message in parse_messages(data):
                if message.seq != seq:
                    continue
                if isinstance(message, Done):
                    return
                if isinstance(message, Error):
                    if message.errno:
                        raise OSError(message.errno, f"rtnetlink dump refused: "
                                                     f"{errno.errorcode.get(message.errno)}")
                    return
                if isinstance(message, Overrun):
                    raise OSError(errno.EIO, "rtnetlink dump overrun")
                into.apply(message)


class PollingSource:
    """Where rtnetlink is unavailable: a tick every `interval` seconds; the route probe after
    each tick is all there is to compare."""

    def __init__(self, interval: float = POLL_INTERVAL) -> None:
        self.interval = interval

    async def receive(self) -> list[str]:
        await trio.sleep(self.interval)
        return []

    async def resync(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


# -- the watcher ------------------------------------------------------------------------------


async def watch_network(
    on_change: Callable[[str], object],
    *,
    quiet: float = QUIET,
    max_delay: float = MAX_DELAY,
    poll_interval: float = POLL_INTERVAL,
    open_source: Callable[[], Source] = RtnetlinkSource,
    probe: Callable[[], RouteProbe] = probe_routes,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled: call `on_change(description)` after each burst of network
    messages that changed something relevant, once the burst has been quiet for `quiet`
    seconds (or has gone on for `max_delay`). Started (for `nursery.start`) once the first
    state is known. A failure here is logged and ends the watch, never the caller's nursery."""
    source = await _open(open_source, poll_interval)
    try:
        await _watch(source, on_change, quiet, max_delay, probe, task_status)
    except Exception:
        log.exception("the network watch stopped on an error; registrations are renewed by "
                      "their refresh timers only")
    finally:
        source.close()


async def _open(open_source: Callable[[], Source], poll_interval: float) -> Source:
    """The rtnetlink source with its first dump read, else (said once) the polling one."""
    source: Source | None = None
    try:
        source = open_source()
        await source.resync()
        return source
    except (OSError, trio.TooSlowError) as exc:
        if source is not None:
            source.close()
        reason = (exc.strerror if isinstance(exc, OSError) else None) or repr(exc)
        log.info("cannot watch the network through rtnetlink (%s); checking the route every "
                 "%g s instead", reason, poll_interval)
        return PollingSource(poll_interval)


async def _watch(source: Source, on_change: Callable[[str], object], quiet: float,
                 max_delay: float, probe: Callable[[], RouteProbe],
                 task_status: trio.TaskStatus[None]) -> None:
    routes = probe()
    log.info("watching the network (%s); the internet is reached from %s (IPv4) and %s "
             "(IPv6)", type(source).__name__, *(address or "nowhere" for address in routes))
    task_status.started()
    while True:
        changes = await source.receive()
        deadline = trio.current_time() + max_delay
        while trio.current_time() < deadline:
            with trio.move_on_after(max(0.0, min(quiet, deadline - trio.current_time()))) as pause:
                changes += await source.receive()
            if pause.cancelled_caught:
                break
        try:
            changes += await source.resync()
        except (OSError, trio.TooSlowError) as exc:
            log.debug("re-reading the network tables failed (%r); trusting the messages", exc)
        now_routes = probe()
        changes += probe_differences(routes, now_routes)
        routes = now_routes
        if not changes:
            log.debug("network messages settled; nothing relevant changed")
            continue
        description = summarize(changes)
        log.info("network changed: %s", description)
        try:
            on_change(description)
        except Exception:
            log.exception("reacting to a network change failed")
