"""Two sans-I/O MSRP sessions wired back to back, for the core's tests."""

from __future__ import annotations

from sipd.msrp.events import Event
from sipd.msrp.session import MsrpSession
from sipd.msrp.uri import MsrpUri, parse_uri

ALICE = parse_uri("msrp://127.0.0.1:7001/alice0001;tcp")
BOB = parse_uri("msrp://127.0.0.1:7002/bob00002;tcp")


def send_line(tid: str, to: MsrpUri = BOB, frm: MsrpUri = ALICE, *, message_id: str = "m1",
              body: bytes | None = b"hello", byte_range: str | None = None, flag: str = "$",
              content_type: str | None = "text/plain", extra: str = "") -> bytes:
    """A SEND as raw bytes, for tests that need to break the rules."""
    lines = [f"MSRP {tid} SEND", f"To-Path: {to}", f"From-Path: {frm}",
             f"Message-ID: {message_id}"]
    if byte_range is None and body is not None:
        byte_range = f"1-{len(body)}/{len(body)}"
    if byte_range:
        lines.append(f"Byte-Range: {byte_range}")
    if content_type and body is not None:
        lines.append(f"Content-Type: {content_type}")
    if extra:
        lines.extend(extra.splitlines())
    head = "\r\n".join(lines).encode() + b"\r\n"
    if body is None:
        return head + f"-------{tid}{flag}\r\n".encode()
    return head + b"\r\n" + body + f"\r\n-------{tid}{flag}\r\n".encode()


class Pair:
    """alice (active) and bob (passive); `pump` moves bytes both ways until quiet."""

    def __init__(self, **kwargs: object) -> None:
        self.now = 0.0
        self.alice = MsrpSession([ALICE], [BOB], active=True, **kwargs)  # type: ignore[arg-type]
        self.bob = MsrpSession([BOB], [ALICE], active=False, **kwargs)  # type: ignore[arg-type]
        self.alice_events: list[Event] = []
        self.bob_events: list[Event] = []
        self.wire_to_bob: list[bytes] = []
        self.wire_to_alice: list[bytes] = []

    def pump(self, rounds: int = 1000, drop_to_bob: bool = False) -> None:
        for _ in range(rounds):
            a = self.alice.data_to_send(self.now)
            b = self.bob.data_to_send(self.now)
            if a:
                self.wire_to_bob.append(a)
                if not drop_to_bob:
                    self.bob.receive_data(a, self.now)
            if b:
                self.wire_to_alice.append(b)
                self.alice.receive_data(b, self.now)
            self.alice_events += self.alice.events()
            self.bob_events += self.bob.events()
            if not a and not b:
                return
        raise AssertionError("the sessions never went quiet")

    def of(self, events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in events if isinstance(e, kind)]
