"""The four transaction state machines of RFC 3261 §17, with RFC 6026 for INVITE 2xx.

Sans-I/O: a transaction is driven by `start(now)` (client) / creation (server),
`receive(message, now)`, `send(response, now)` (server), `handle_timeout(now)` and
`transport_error(now)`, and each returns a list of events for the caller to act on:

- `Transmit(message, data, destination)`: send `data` (the serialised message) to
  `destination` (whatever the transport passed in: a client transaction's chosen target, or
  the source of the request for a server transaction);
- `ResponseReceived` / `RequestReceived`: hand a message to the transaction user (TU);
- `TransactionTimedOut`, `TransportFailed`: tell the TU (a client reports 408 to itself);
- `TransactionTerminated`: the transaction is over, forget it.

`next_deadline()` is the time at which `handle_timeout` must be called next (None when no
timer runs). Timers fire at their scheduled time even when called late, so retransmission
intervals stay exact. Over a reliable transport the retransmission timers (A, E, G) never run
and D, I, J, K are zero.

`sipd.sip.transaction_layer.TransactionLayer` matches messages to transactions; use it
rather than driving these classes directly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .builder import MAGIC_COOKIE, build_non2xx_ack, build_response
from .message import AnyMessage, Request, Response
from .timers import DEFAULT_TIMERS, TimerSettings


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"  # RFC 6026: a 2xx was sent/received for an INVITE
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


# --- events --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Transmit:
    transaction: Any  # the Transaction, or None for a stateless send
    message: AnyMessage
    data: bytes
    destination: Any


@dataclass(frozen=True, eq=False)
class ResponseReceived:
    transaction: Any  # ClientTransaction, or None for a response matching none (a 2xx
    response: Response  # retransmission after the INVITE transaction ended: re-send the ACK)


@dataclass(frozen=True, eq=False)
class RequestReceived:
    transaction: Any  # ServerTransaction, or None for an ACK to a 2xx (no transaction)
    request: Request
    source: Any = None


@dataclass(frozen=True, eq=False)
class CancelReceived:
    """A CANCEL (answered through `transaction`) and the INVITE server transaction it
    cancels, or None when there is none (answer 481)."""

    transaction: Any
    request: Request
    invite_transaction: Any
    source: Any = None


@dataclass(frozen=True, eq=False)
class TransactionTimedOut:
    transaction: Any


@dataclass(frozen=True, eq=False)
class TransportFailed:
    transaction: Any


@dataclass(frozen=True, eq=False)
class TransactionTerminated:
    transaction: Any


@dataclass(frozen=True, eq=False)
class MessageDropped:
    """A message no transaction can take (no Via or CSeq); for logging."""

    message: AnyMessage
    reason: str


Event = (Transmit | ResponseReceived | RequestReceived | CancelReceived | TransactionTimedOut
         | TransportFailed | TransactionTerminated | MessageDropped)


class TransactionError(RuntimeError):
    """The TU asked for something the transaction's state does not allow."""


# --- keys (§17.1.3, §17.2.3) ---------------------------------------------------------------

def has_rfc3261_branch(branch: str | None) -> bool:
    """A branch that identifies a transaction: the magic cookie and something after it
    (a bare `z9hG4bK`, RFC 4475 §3.2.1, is treated as no branch)."""
    return (branch is not None and branch.startswith(MAGIC_COOKIE)
            and len(branch) > len(MAGIC_COOKIE))


def client_key(message: AnyMessage) -> tuple[str, str] | None:
    """Key of a client transaction: top Via branch and CSeq method (so a CANCEL, which
    shares its INVITE's branch, is a transaction of its own)."""
    via, cseq = message.top_via, message.cseq
    if via is None or cseq is None or not via.branch:
        return None
    return via.branch, cseq.method


def server_key(request: Request, method: str | None = None) -> tuple[Any, ...] | None:
    """Key of a server transaction: branch, sent-by and method, with ACK matching its INVITE.
    Without an RFC 3261 branch, the RFC 2543 rules: Request-URI, From tag, Call-ID, CSeq
    number, top Via (and To tag for non-INVITE). `method` overrides the request's (CANCEL
    looks up its INVITE)."""
    via, cseq = request.top_via, request.cseq
    if via is None or cseq is None:
        return None
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    if has_rfc3261_branch(via.branch):
        return ("3261", via.branch, *via.sent_by, method)
    from_, to = request.from_, request.to
    to_tag = to.tag if to is not None and method != "INVITE" else None
    return ("2543", str(request.uri), from_.tag if from_ else None, request.call_id,
            cseq.number, method, str(via), to_tag)


# --- common machinery ----------------------------------------------------------------------

class Transaction:
    kind = "transaction"

    def __init__(self, request: Request, *, reliable: bool, destination: Any,
                 timers: TimerSettings) -> None:
        self.request = request
        self.method = request.method
        self.reliable = reliable
        self.destination = destination
        self.timers = timers
        self.state = State.TERMINATED
        self.key: Any = None
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._events: list[Event] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state.value} key={self.key!r}>"

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timeout(self, now: float) -> list[Event]:
        while not self.terminated:
            due = [(at, name) for name, at in self._deadlines.items() if at <= now]
            if not due:
                break
            at, name = min(due)
            del self._deadlines[name]
            getattr(self, f"_on_timer_{name}")(at)
        return self._flush()

    def transport_error(self, now: float) -> list[Event]:
        """The transport could not send one of our messages (ICMP error, connection lost)."""
        if not self.terminated:
            self._events.append(TransportFailed(self))
            self._terminate()
        return self._flush()

    # helpers for subclasses
    def _start_timer(self, name: str, at: float, interval: float | None = None) -> None:
        self._deadlines[name] = at
        if interval is not None:
            self._intervals[name] = interval

    def _stop_timers(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _transmit(self, message: AnyMessage, data: bytes | None = None) -> bytes:
        data = data if data is not None else message.to_bytes()
        self._events.append(Transmit(self, message, data, self.destination))
        return data

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._deadlines.clear()
        self._events.append(TransactionTerminated(self))

    def _flush(self) -> list[Event]:
        events, self._events = self._events, []
        return events


# --- client transactions -------------------------------------------------------------------

class ClientTransaction(Transaction):
    kind = "client"

    def __init__(self, request: Request, *, reliable: bool, destination: Any = None,
                 timers: TimerSettings = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, destination=destination, timers=timers)
        self.key = client_key(request)
        if self.key is None:
            raise ValueError("a client transaction needs a request with a Via branch and CSeq")
        self.last_response: Response | None = None
        self._data = b""

    def _deliver(self, response: Response) -> None:
        self.last_response = response
        self._events.append(ResponseReceived(self, response))

    def receive(self, response: Response, now: float) -> list[Event]:  # pragma: no cover
        raise NotImplementedError


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 with RFC 6026's Accepted state."""

    def __init__(self, request: Request, *, reliable: bool, destination: Any = None,
                 timers: TimerSettings = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, destination=destination, timers=timers)
        self.ack: Request | None = None  # the ACK we built for a non-2xx final response
        self._ack_data = b""

    def start(self, now: float) -> list[Event]:
        self.state = State.CALLING
        self._data = self._transmit(self.request)
        if not self.reliable:
            self._start_timer("A", now + self.timers.t1, self.timers.t1)
        self._start_timer("B", now + self.timers.transaction_timeout)
        return self._flush()

    def receive(self, response: Response, now: float) -> list[Event]:
        if self.state in (State.CALLING, State.PROCEEDING):
            self._stop_timers("A", "B")
            if response.is_provisional:
                self.state = State.PROCEEDING
                self._deliver(response)
            elif response.is_success:
                self.state = State.ACCEPTED
                self._stop_timers("cancel")
                self._start_timer("M", now + self.timers.transaction_timeout)
                self._deliver(response)
            else:
                self.state = State.COMPLETED
                self._stop_timers("cancel")
                self.ack = build_non2xx_ack(self.request, response)
                self._ack_data = self._transmit(self.ack)
                self._deliver(response)
                if self.reliable:
                    self._terminate()
                else:
                    self._start_timer("D", now + self.timers.timer_d)
        elif self.state is State.ACCEPTED and response.is_success:
            self._deliver(response)  # the TU ACKs every 2xx (forked ones included)
        elif self.state is State.COMPLETED and response.status >= 300:
            assert self.ack is not None
            self._transmit(self.ack, self._ack_data)  # our ACK was lost: send it again
        return self._flush()

    def cancel_sent(self, now: float) -> None:
        """A CANCEL went out for this INVITE: if no final response arrives within 64*T1, give
        up (RFC 3261 §9.1) instead of waiting forever in Proceeding."""
        if self.state in (State.CALLING, State.PROCEEDING):
            self._start_timer("cancel", now + self.timers.transaction_timeout)

    def _on_timer_A(self, at: float) -> None:
        if self.state is State.CALLING:
            self._transmit(self.request, self._data)
            interval = self._intervals["A"] * 2  # INVITE retransmissions are not capped at T2
            self._start_timer("A", at + interval, interval)

    def _on_timer_B(self, at: float) -> None:
        if self.state is State.CALLING:
            self._events.append(TransactionTimedOut(self))
            self._terminate()

    def _on_timer_cancel(self, at: float) -> None:
        self._events.append(TransactionTimedOut(self))
        self._terminate()

    def _on_timer_D(self, at: float) -> None:
        self._terminate()

    def _on_timer_M(self, at: float) -> None:
        self._terminate()


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2."""

    def start(self, now: float) -> list[Event]:
        self.state = State.TRYING
        self._data = self._transmit(self.request)
        if not self.reliable:
            self._start_timer("E", now + self.timers.t1, self.timers.t1)
        self._start_timer("F", now + self.timers.transaction_timeout)
        return self._flush()

    def receive(self, response: Response, now: float) -> list[Event]:
        if self.state in (State.TRYING, State.PROCEEDING):
            if response.is_provisional:
                self.state = State.PROCEEDING
                self._deliver(response)
            else:
                self.state = State.COMPLETED
                self._stop_timers("E", "F")
                self._deliver(response)
                if self.reliable:
                    self._terminate()
                else:
                    self._start_timer("K", now + self.timers.t4)
        return self._flush()  # in Completed, retransmitted finals are absorbed

    def _on_timer_E(self, at: float) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self._transmit(self.request, self._data)
            if self.state is State.TRYING:
                interval = min(self._intervals["E"] * 2, self.timers.t2)
            else:
                interval = self.timers.t2
            self._start_timer("E", at + interval, interval)

    def _on_timer_F(self, at: float) -> None:
        self._events.append(TransactionTimedOut(self))
        self._terminate()

    def _on_timer_K(self, at: float) -> None:
        self._terminate()


# --- server transactions -------------------------------------------------------------------

class ServerTransaction(Transaction):
    kind = "server"

    def __init__(self, request: Request, *, reliable: bool, source: Any = None,
                 timers: TimerSettings = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, destination=source, timers=timers)
        self.key = server_key(request)
        if self.key is None:
            raise ValueError("a server transaction needs a request with a Via and a CSeq")
        self.last_response: Response | None = None
        self._response_data = b""
        self.to_tag: str | None = None  # the tag our responses carry, once one has one

    def respond(self, status: int, reason: str | None = None, *, now: float,
                **kwargs: Any) -> list[Event]:
        """Builds a response to the request (keeping one To tag for the whole transaction,
        unless `to_tag=` says which) and sends it; other keywords go to `build_response`."""
        to_tag = kwargs.pop("to_tag", None) or self.to_tag
        response = build_response(self.request, status, reason, to_tag=to_tag, **kwargs)
        return self.send(response, now)

    def _send_response(self, response: Response) -> None:
        to = response.to
        if to is not None and to.tag:
            self.to_tag = to.tag
        self.last_response = response
        self._response_data = self._transmit(response)

    def _retransmit_response(self) -> None:
        if self.last_response is not None:
            self._transmit(self.last_response, self._response_data)

    def send(self, response: Response, now: float) -> list[Event]:  # pragma: no cover
        raise NotImplementedError

    def receive(self, request: Request, now: float) -> list[Event]:  # pragma: no cover
        raise NotImplementedError


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026: after a 2xx the transaction stays Accepted for 64*T1,
    absorbing INVITE retransmissions; 2xx retransmission is the TU's job."""

    def __init__(self, request: Request, *, reliable: bool, source: Any = None,
                 timers: TimerSettings = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, source=source, timers=timers)
        self.state = State.PROCEEDING

    def trying_at(self, at: float, now: float) -> list[Event]:
        """Sends 100 Trying at `at` unless the TU has answered by then (RFC 3261 §17.2.1: a
        TU that answers within 200 ms needs none); at once when `at` is not after `now`."""
        self._start_timer("Trying", at)
        return self.handle_timeout(now)

    def _on_timer_Trying(self, at: float) -> None:
        if self.state is State.PROCEEDING and self.last_response is None:
            self._send_response(build_response(self.request, 100))

    def send(self, response: Response, now: float) -> list[Event]:
        if self.state is State.ACCEPTED and response.is_success:
            self._send_response(response)  # the TU retransmitting its 2xx
            return self._flush()
        if self.state is not State.PROCEEDING:
            raise TransactionError(
                f"cannot send {response.status} in state {self.state.value} of {self!r}")
        self._stop_timers("Trying")
        self._send_response(response)
        if response.is_success:
            self.state = State.ACCEPTED
            self._start_timer("L", now + self.timers.transaction_timeout)
        elif not response.is_provisional:
            self.state = State.COMPLETED
            if not self.reliable:
                self._start_timer("G", now + self.timers.t1, self.timers.t1)
            self._start_timer("H", now + self.timers.transaction_timeout)
        return self._flush()

    def receive(self, request: Request, now: float) -> list[Event]:
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._stop_timers("G", "H")
                if self.reliable:
                    self._terminate()
                else:
                    self._start_timer("I", now + self.timers.t4)
            elif self.state is State.ACCEPTED:
                self._events.append(RequestReceived(self, request, self.destination))
        elif self.state in (State.PROCEEDING, State.COMPLETED):
            if self.last_response is None and "Trying" in self._deadlines:
                self._stop_timers("Trying")  # the peer is retransmitting: it waits for word
                self._on_timer_Trying(now)
            else:
                self._retransmit_response()  # a retransmitted INVITE
        return self._flush()

    def _on_timer_G(self, at: float) -> None:
        if self.state is State.COMPLETED:
            self._retransmit_response()
            interval = min(self._intervals["G"] * 2, self.timers.t2)
            self._start_timer("G", at + interval, interval)

    def _on_timer_H(self, at: float) -> None:
        self._events.append(TransactionTimedOut(self))  # the ACK never came
        self._terminate()

    def _on_timer_I(self, at: float) -> None:
        self._terminate()

    def _on_timer_L(self, at: float) -> None:
        self._terminate()

    def transport_error(self, now: float) -> list[Event]:
        if self.state is State.ACCEPTED:
            # RFC 6026: the TU owns the 2xx now; tell it, but keep absorbing retransmissions.
            self._events.append(TransportFailed(self))
            return self._flush()
        return super().transport_error(now)


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2."""

    def __init__(self, request: Request, *, reliable: bool, source: Any = None,
                 timers: TimerSettings = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, source=source, timers=timers)
        self.state = State.TRYING

    def send(self, response: Response, now: float) -> list[Event]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            raise TransactionError(
                f"cannot send {response.status} in state {self.state.value} of {self!r}")
        self._send_response(response)
        if response.is_provisional:
            self.state = State.PROCEEDING
        else:
            self.state = State.COMPLETED
            if self.reliable:
                self._terminate()
            else:
                self._start_timer("J", now + self.timers.transaction_timeout)
        return self._flush()

    def receive(self, request: Request, now: float) -> list[Event]:
        if self.state in (State.PROCEEDING, State.COMPLETED):
            self._retransmit_response()  # in Trying, retransmissions are absorbed
        return self._flush()

    def _on_timer_J(self, at: float) -> None:
        self._terminate()
