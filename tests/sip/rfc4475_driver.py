"""Sends the 49 RFC 4475 torture messages to a real sipd and prints what it answered (JSON).

The messages name foreign hosts (Via, Contact, Route at example.com, 192.0.2.x...), so this
runs only inside a network namespace that has nothing but loopback:

    unshare --net -- sh -c 'ip link set lo up && exec python tests/sip/rfc4475_driver.py --base DIR'

It refuses to run when the namespace has any interface besides `lo`. tests/sip/
test_rfc4475_daemon.py runs it that way and asserts on the report; it can be run by hand too.

What it does, per run (each run is a fresh daemon, see RUNS):
- starts sipd (tests.harness.process.SipdProcess) on 127.0.0.1 and adds an account
  `sip:user@example.com`
  (no registration), so the messages to `sip:user@example.com` reach a user the daemon has and
  the others meet an unknown user;
- UDP: sends each message, unchanged, as one datagram from 127.0.0.1:5060. Requests without
  `rport` are answered to received=127.0.0.1 at their Via port (5060 unless the Via says another:
  a catcher socket listens on each such port). After each message a valid OPTIONS (the probe)
  follows; what arrives until the probe is answered (plus a short drain) belongs to the message,
  responses are matched to messages by Call-ID, and non-2xx finals to INVITEs are ACKed;
- TCP: one new connection per message. A message that frames completely is followed by the
  probe on the same connection; one that cannot frame (clerr, baddn) is left waiting for a
  second, then the driver half-closes and sees whether the daemon closes; one whose framing is
  broken (ncl, mcl01, no Content-Length) is not followed by anything;
- then: is the process alive, does RPC system.version answer, what does a valid OPTIONS get over
  UDP and TCP, and does the log hold a Traceback.

Waits are bounded (a few seconds at most per message); nothing here measures time.
"""

from __future__ import annotations

import argparse
import json
import re
import selectors
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent
MESSAGES = HERE / "rfc4475"

SENDER_PORT = 5060  # where answers by Via (no rport, no port) arrive
KNOWN_USER_AOR = "sip:user@example.com"
ANSWER_WAIT = 5.0  # seconds: at most, for the probe's answer (it normally takes milliseconds)
DRAIN = 0.2  # seconds of extra listening after the probe was answered
STALL_WAIT = 1.0  # seconds a TCP message that cannot frame is left waiting
CLOSE_WAIT = 5.0  # seconds, at most, for the daemon to close a TCP connection

# Requests that share a server transaction key (branch, sent-by, method) with an earlier message
# (RFC 3261 §17.2.3): sent to one daemon within 32 s, the second is a retransmission of the
# first. So they go to a daemon of their own.
SECOND_OF_A_KEY = ("cparam02", "regescrt", "unkscm")

COMPACT = {"i": "call-id", "v": "via", "f": "from", "t": "to", "l": "content-length",
           "c": "content-type", "k": "supported", "m": "contact", "e": "content-encoding",
           "s": "subject", "o": "event", "u": "allow-events", "r": "refer-to"}
KEPT_HEADERS = ("allow", "accept", "accept-encoding", "supported", "unsupported", "warning",
                "server", "content-length", "content-type")


# -- a small, independent reader of what the daemon sends ----------------------------------------

def split_head(data: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(start line, [(lower-case long name, value)], rest) or None without a complete head."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("utf-8", "replace").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        headers.append((COMPACT.get(name, name), value.strip()))
    return lines[0], headers, data[end + 4:]


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def describe(data: bytes, where: str) -> dict[str, Any]:
    """What one received message is, for the report."""
    parts = split_head(data)
    if parts is None:
        return {"where": where, "unparsed": data[:200].decode("utf-8", "replace"),
                "length": len(data)}
    start, headers, _ = parts
    record: dict[str, Any] = {"where": where, "start": start, "length": len(data)}
    match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", start)
    if match:
        record["status"] = int(match.group(1))
        record["reason"] = match.group(2)
    else:
        record["request"] = start.split(" ", 1)[0]
    record["call_id"] = header(headers, "call-id")
    record["cseq"] = header(headers, "cseq")
    record["to"] = header(headers, "to")
    record["vias"] = [value for key, value in headers if key == "via"]
    record["headers"] = {name: [v for k, v in headers if k == name] for name in KEPT_HEADERS
                         if any(k == name for k, _ in headers)}
    record["raw"] = data[:1500].decode("utf-8", "replace")
    return record


def top_branch(vias: list[str]) -> str | None:
    match = re.search(r";\s*branch\s*=\s*([^;,\s]+)", vias[0]) if vias else None
    return match.group(1) if match else None


def owner_key(call_id: str | None, vias: list[str]) -> str | None:
    """What ties a response to the request it answers: the Call-ID, else the Via branch."""
    if call_id:
        return "call-id:" + call_id
    branch = top_branch(vias)
    return "branch:" + branch if branch else None


def stream_messages(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete messages at the front of a stream buffer (framed by Content-Length), and the
    rest. CRLF keep-alives between messages are skipped."""
    messages = []
    while True:
        buffer = buffer.lstrip(b"\r\n")
        parts = split_head(buffer)
        if parts is None:
            return messages, buffer
        _, headers, rest = parts
        try:
            length = int(header(headers, "content-length") or "0")
        except ValueError:
            length = 0
        if len(rest) < length:
            return messages, buffer
        size = len(buffer) - len(rest) + length
        messages.append(buffer[:size])
        buffer = buffer[size:]


def stream_framing(data: bytes) -> str:
    """How a stream receiver must frame `data` (RFC 3261 §18.3): "complete" (it ends with a
    whole message), "incomplete" (it waits for more octets), "broken" (no usable
    Content-Length: negative, several, not a number, or none)."""
    while data:
        if data.startswith(b"\r\n"):
            data = data[2:]
            continue
        parts = split_head(data)
        if parts is None:
            return "incomplete"
        _, headers, rest = parts
        lengths = [value for key, value in headers if key == "content-length"]
        if len(lengths) != 1 or not lengths[0].isdigit():
            return "broken"
        length = int(lengths[0])
        if len(rest) < length:
            return "incomplete"
        data = rest[length:]
    return "complete"


def request_parts(data: bytes) -> dict[str, Any]:
    """Method, Request-URI, top Via and the like of a message as sent (for ACKs and matching)."""
    parts = split_head(data)
    if parts is None:
        first = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        return {"start": first, "call_id": None}
    start, headers, _ = parts
    pieces = start.split(" ")
    return {"start": start, "method": pieces[0] if len(pieces) == 3 else None,
            "key": owner_key(header(headers, "call-id"),
                             [v for k, v in headers if k == "via"]),
            "uri": pieces[1] if len(pieces) == 3 else None,
            "call_id": header(headers, "call-id"), "from": header(headers, "from"),
            "cseq": header(headers, "cseq"),
            "via": next((v for k, v in headers if k == "via"), None)}


def via_ports(data: bytes) -> set[int]:
    """Ports named by the top Via (where a stack answers a request without rport)."""
    match = re.search(rb"SIP\s*/\s*2\.0\s*/\s*\w+\s+[\w.\-]+:(\d+)", data)
    return {int(match.group(1))} if match else set()


# -- messages built here (only for loopback) ---------------------------------------------------

def options(target_port: int, local_port: int, transport: str, call_id: str) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex
    return (f"OPTIONS sip:127.0.0.1:{target_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:{local_port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:driver@127.0.0.1>;tag={uuid.uuid4().hex[:10]}\r\n"
            f"To: <sip:127.0.0.1:{target_port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Accept: application/sdp\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def ack_for(sent: dict[str, Any], response: bytes) -> bytes | None:
    """The ACK a UAC sends for a non-2xx final response to its INVITE (RFC 3261 §17.1.1.3)."""
    parts = split_head(response)
    if parts is None or sent.get("method") != "INVITE" or not sent.get("via"):
        return None
    _, headers, _ = parts
    to = header(headers, "to")
    cseq = (sent.get("cseq") or "").split()
    if to is None or not cseq:
        return None
    lines = [f"ACK {sent['uri']} SIP/2.0", f"Via: {sent['via']}", "Max-Forwards: 70",
             f"From: {sent.get('from') or ''}", f"To: {to}",
             f"Call-ID: {sent.get('call_id') or ''}", f"CSeq: {cseq[0]} ACK",
             "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- the daemon ------------------------------------------------------------------------------

def rpc(endpoint: Any, method: str, params: dict | None = None, timeout: float = 10) -> Any:
    import trio

    from sipctl.client import connect

    async def call() -> Any:
        with trio.fail_after(timeout):
            async with connect(endpoint) as client:
                return await client.call(method, params or {})

    return trio.run(call)


class Daemon:
    def __init__(self, base: Path, name: str) -> None:
        from tests.harness.process import SipdProcess

        self.process = SipdProcess(base, {"sip.transport_list": ["udp", "tcp"]}, name=name)
        self.ports: dict[str, int] = {}

    def start(self) -> Daemon:
        self.process.start()
        state = rpc(self.process.endpoint, "system.state")
        self.ports = state["sip"]["ports"]
        rpc(self.process.endpoint, "accounts.add", {"aor": KNOWN_USER_AOR, "register": False})
        return self

    def health(self) -> dict[str, Any]:
        proc = self.process.proc
        report: dict[str, Any] = {"alive": proc is not None and proc.poll() is None}
        try:
            report["version"] = rpc(self.process.endpoint, "system.version")
        except Exception as exc:  # noqa: BLE001 - reported, the test decides
            report["version_error"] = repr(exc)
        return report

    def finish(self) -> dict[str, Any]:
        code = self.process.stop()
        log = self.process.log()
        lines = log.splitlines()
        return {
            "exit_code": code,
            "tracebacks": [i for i, line in enumerate(lines) if "Traceback" in line],
            "errors": [line for line in lines
                       if " ERROR " in line or " CRITICAL " in line][:50],
            # answers the daemon tried to send elsewhere than 127.0.0.1 (no route here)
            "send_failures": [line for line in lines
                              if "send failed" in line or "cannot send" in line
                              or "unreachable" in line.lower()][:50],
            "log_path": str(self.process.log_path),
            "log_tail": "\n".join(lines[-80:]),
            "log": log if "Traceback" in log else None,
        }


# -- UDP ------------------------------------------------------------------------------------

class UdpPeer:
    """UDP sockets on 127.0.0.1: the sender (`sender_port`, 0 for any free one) and catchers on
    `ports`."""

    def __init__(self, daemon_port: int, ports: set[int] = frozenset(),
                 sender_port: int = SENDER_PORT) -> None:
        self.daemon = ("127.0.0.1", daemon_port)
        self.selector = selectors.DefaultSelector()
        self.sockets: dict[int, socket.socket] = {}
        self.probe_call_ids: set[str] = set()
        for port in [sender_port, *sorted(set(ports) - {sender_port})]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.setblocking(False)
            port = sock.getsockname()[1]
            self.sockets[port] = sock
            self.selector.register(sock, selectors.EVENT_READ, port)
            if sender_port in (0, port) and not hasattr(self, "sender"):
                self.sender, self.port = sock, port

    def close(self) -> None:
        for sock in self.sockets.values():
            self.selector.unregister(sock)
            sock.close()
        self.selector.close()

    def send(self, data: bytes) -> str | None:
        try:
            self.sender.sendto(data, self.daemon)
            return None
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"

    def receive(self, until: float) -> tuple[bytes, int] | None:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            for key, _ in self.selector.select(left):
                try:
                    data, _addr = key.fileobj.recvfrom(70000)
                except BlockingIOError:
                    continue
                return data, key.data

    def exchange(self, data: bytes | None, probe_call_id: str,
                 on_message=lambda data, port: None) -> dict[str, Any]:
        """Sends `data`, then the probe; returns what came back until the probe was answered."""
        error = self.send(data) if data is not None else None
        self.probe_call_ids.add(probe_call_id)
        probe_data = options(self.daemon[1], self.port, "udp", probe_call_id)
        probe_error = self.send(probe_data)
        received: list[tuple[bytes, int]] = []
        probe: dict[str, Any] | None = None
        until = time.monotonic() + ANSWER_WAIT
        # Like a UAC (Timer E), the probe is sent again while unanswered: a datagram can be
        # lost when the daemon's receive buffer is full (after a burst, say).
        interval = 0.5
        resend_at = time.monotonic() + interval
        while True:
            got = self.receive(min(until, resend_at) if probe is None else until)
            if got is None:
                if probe is None and time.monotonic() < until:
                    self.send(probe_data)
                    interval = min(interval * 2, 4.0)
                    resend_at = time.monotonic() + interval
                    continue
                break
            packet, port = got
            record = describe(packet, f"udp:{port}")
            if record.get("call_id") in self.probe_call_ids:  # this probe's, or a late one's
                if record.get("call_id") == probe_call_id and record.get("status", 0) >= 200 \
                        and probe is None:
                    probe = record
                    until = min(until, time.monotonic() + DRAIN)
                continue
            received.append((packet, port))
            on_message(packet, port)
        return {"send_error": error, "probe_send_error": probe_error, "probe": probe,
                "received": received}


def run_udp(daemon: Daemon, names: list[str]) -> list[dict[str, Any]]:
    messages = {name: (MESSAGES / f"{name}.dat").read_bytes() for name in names}
    ports: set[int] = set()
    for data in messages.values():
        ports |= via_ports(data)
    peer = UdpPeer(daemon.ports["udp"], ports)
    results: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}  # owner_key -> message name
    try:
        for name, data in messages.items():
            sent = request_parts(data)
            if sent.get("key"):
                owners.setdefault(sent["key"], name)
            entry = results[name] = {"name": name, "transport": "udp", "responses": [],
                                     "late": [], "acks_sent": 0}
            acked: set[tuple[str, str]] = set()

            def on_message(packet: bytes, port: int, name=name, entry=entry,
                           acked=acked) -> None:
                record = describe(packet, f"udp:{port}")
                key = owner_key(record.get("call_id"), record.get("vias") or [])
                owner = owners.get(key or "", name)
                target = results[owner]
                if owner != name:
                    target["late"].append(record)  # a retransmission of an earlier answer
                else:
                    entry["responses"].append(record)
                status = record.get("status", 0)
                answer = (record.get("call_id") or "", record.get("cseq") or "")
                if status >= 300 and answer not in acked:
                    owner_sent = request_parts(messages[owner])
                    ack = ack_for(owner_sent, packet)
                    if ack is not None and (record.get("cseq") or "").endswith("INVITE"):
                        acked.add(answer)
                        peer.send(ack)
                        target["acks_sent"] += 1

            outcome = peer.exchange(data, f"probe-udp-{name}-{uuid.uuid4().hex[:8]}",
                                    on_message)
            entry["send_error"] = outcome["send_error"]
            entry["probe"] = outcome["probe"]
            entry["probe_answered"] = outcome["probe"] is not None
    finally:
        peer.close()
    return list(results.values())


# -- TCP ------------------------------------------------------------------------------------

def tcp_read(sock: socket.socket, until: float, done=lambda buffer: False) -> tuple[bytes, bool]:
    """Reads until `done(buffer)`, the peer's close (True) or `until`."""
    buffer = b""
    while not done(buffer):
        left = until - time.monotonic()
        if left <= 0:
            return buffer, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return buffer, False
        except ConnectionResetError:
            return buffer, True
        if not chunk:
            return buffer, True
        buffer += chunk
    return buffer, False


def run_tcp_message(port: int, name: str, data: bytes) -> dict[str, Any]:
    framing = stream_framing(data)
    entry: dict[str, Any] = {"name": name, "transport": "tcp", "framing": framing}
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT)
    local_port = sock.getsockname()[1]
    probe_call_id = f"probe-tcp-{name}-{uuid.uuid4().hex[:8]}"
    try:
        sock.sendall(data)
        if framing == "complete":
            sock.sendall(options(port, local_port, "tcp", probe_call_id))

            def probe_answered(buffer: bytes) -> bool:
                found, _ = stream_messages(buffer)
                return any(describe(m, "tcp").get("call_id") == probe_call_id
                           and describe(m, "tcp").get("status", 0) >= 200 for m in found)

            buffer, closed = tcp_read(sock, time.monotonic() + ANSWER_WAIT, probe_answered)
            if not closed:
                more, closed = tcp_read(sock, time.monotonic() + DRAIN)
                buffer += more
            entry["closed_by_daemon"] = closed
        elif framing == "broken":
            buffer, closed = tcp_read(sock, time.monotonic() + CLOSE_WAIT)
            entry["closed_by_daemon"] = closed
        else:  # incomplete: the daemon should wait for the rest
            buffer, closed = tcp_read(sock, time.monotonic() + STALL_WAIT)
            entry["closed_while_waiting"] = closed
            entry["answered_while_waiting"] = bool(buffer)
            if not closed:
                sock.shutdown(socket.SHUT_WR)
                more, closed = tcp_read(sock, time.monotonic() + CLOSE_WAIT)
                entry["answered_after_half_close"] = bool(more)
                buffer += more
            entry["closed_by_daemon"] = closed
    finally:
        sock.close()
    found, rest = stream_messages(buffer)
    records = [describe(m, "tcp") for m in found]
    entry["probe"] = next((r for r in records if r.get("call_id") == probe_call_id), None)
    entry["probe_answered"] = entry["probe"] is not None
    entry["responses"] = [r for r in records if r.get("call_id") != probe_call_id]
    entry["trailing_octets"] = rest[:200].decode("utf-8", "replace")
    return entry


class TcpCatcher:
    """Listens on 127.0.0.1:5060/TCP: a daemon that answers by the Via (a new connection to
    received:5060) instead of over the request's connection would show up here."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", SENDER_PORT))
        self.sock.listen(16)
        self.sock.setblocking(False)

    def collect(self) -> list[str]:
        got = []
        while True:
            try:
                conn, addr = self.sock.accept()
            except BlockingIOError:
                return got
            data, _ = tcp_read(conn, time.monotonic() + 0.5)
            conn.close()
            got.append(f"{addr}: {data[:200]!r}")

    def close(self) -> None:
        self.sock.close()


def run_tcp(daemon: Daemon, names: list[str]) -> list[dict[str, Any]]:
    results = []
    catcher = TcpCatcher()
    try:
        for name in names:
            entry = run_tcp_message(daemon.ports["tcp"], name,
                                    (MESSAGES / f"{name}.dat").read_bytes())
            entry["new_connections_to_5060"] = catcher.collect()
            results.append(entry)
    finally:
        catcher.close()
    return results


def final_options(daemon: Daemon) -> dict[str, Any]:
    """A valid OPTIONS to the daemon itself over UDP and TCP, after everything else."""
    report: dict[str, Any] = {}
    peer = UdpPeer(daemon.ports["udp"], set())
    try:
        outcome = peer.exchange(None, f"final-udp-{uuid.uuid4().hex}")
        report["udp"] = outcome["probe"]
    finally:
        peer.close()
    port = daemon.ports["tcp"]
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT) as sock:
        call_id = f"final-tcp-{uuid.uuid4().hex}"
        sock.sendall(options(port, sock.getsockname()[1], "tcp", call_id))
        buffer, _ = tcp_read(sock, time.monotonic() + ANSWER_WAIT,
                             lambda buffer: bool(stream_messages(buffer)[0]))
    found, _ = stream_messages(buffer)
    report["tcp"] = describe(found[0], "tcp") if found else None
    return report


# -- the whole ------------------------------------------------------------------------------

def check_isolated() -> None:
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        sys.exit(f"refusing to run: these messages name foreign hosts and must not leave the "
                 f"machine; run inside `unshare --net` (interfaces here: {', '.join(names)})")


def run(base: Path, names: list[str], transports: list[str]) -> dict[str, Any]:
    first = [n for n in names if n not in SECOND_OF_A_KEY]
    second = [n for n in names if n in SECOND_OF_A_KEY]
    report: dict[str, Any] = {"runs": [], "messages": []}
    for transport in transports:
        for index, group in enumerate((first, second)):
            if not group:
                continue
            run_name = f"{transport}-{index + 1}"
            daemon = Daemon(base, f"sipd-{run_name}").start()
            run_report: dict[str, Any] = {"run": run_name, "transport": transport,
                                          "ports": daemon.ports, "messages": group}
            try:
                entries = (run_udp if transport == "udp" else run_tcp)(daemon, group)
                for entry in entries:
                    entry["run"] = run_name
                report["messages"] += entries
                run_report["options"] = final_options(daemon)
                run_report.update(daemon.health())
            finally:
                run_report.update(daemon.finish())
            report["runs"].append(run_report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="directory for the daemons")
    parser.add_argument("--transports", default="udp,tcp")
    parser.add_argument("names", nargs="*", help="messages to send (default: all 49)")
    args = parser.parse_args()
    check_isolated()
    names = args.names or sorted(p.stem for p in MESSAGES.glob("*.dat"))
    report = run(args.base, names, args.transports.split(","))
    json.dump(report, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
