"""One presence machine (sipd.presence: Subscriber, Notifier, Publisher) run over the SIP stack.

    driver = SubscriptionDriver(subscriber, Route(stack, locator, dialogs, account,
                                                  authenticator), on_event)
    await nursery.start(driver.run)          # its timers and requests live in run()
    driver.apply(subscriber.start)           # a command: machine method called with `now`
    ...
    driver.apply(subscriber.unsubscribe)     # run() returns once the machine is finished

What each action becomes:
- `SendRequest`: a client transaction of the stack. Out of a dialog (SUBSCRIBE, PUBLISH)
  to the account's next hop (sipd.accounts.outbound.first_hop: outbound proxy, registrar or
  the Request-URI); in a dialog to the located `next_hop` of the request (its Route set or
  remote target). The located targets are tried in order (the next after a timeout, a
  transport error or a 5xx). A 401/407 is answered with the account's credentials and the
  authorised copy goes back to the machine (`resend`), so that it counts the CSeq.
- `SendResponse`: the answer to the IncomingRequest the machine was given.
- `ClaimDialog` / `ReleaseDialog`: the user agent's dialog table (sipd.dialogs) routes the
  dialog's requests to this driver (`on_request`) from the moment the SUBSCRIBE leaves: a
  NOTIFY overtaking the 2xx finds its owner.
- the machine's events go to `on_event(event)`, after the actions; a NOTIFY's contents
  (`Notified`) after the state changes it came with.

The driver is the same for every event package; what a NOTIFY's body means is the business
of whoever reads the `Notified` events.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from sipd.accounts.model import AccountConfig
from sipd.accounts.outbound import TRANSIENT_STATUSES, first_hop, fresh_copy
from sipd.dialogs import DialogTable
from sipd.sip.auth import DigestAuthenticator
from sipd.sip.builder import next_hop
from sipd.sip.message import Request, Response
from sipd.sip.trio.handles import TransactionTimeout
from sipd.sip.trio.locator import LocationError, Locator, Target
from sipd.sip.trio.transport import TransportError

from ..actions import ClaimDialog, ReleaseDialog, SendRequest, SendResponse
from ..events import Notified
from ..notifier import Notifier
from ..publisher import Publisher
from ..subscriber import Subscriber

__all__ = ["Route", "MachineDriver", "SubscriptionDriver", "WatcherDriver",
           "PublicationDriver"]

log = logging.getLogger(__name__)

UDP_SIZE_LIMIT = 1300  # RFC 3261 §18.1.1: larger requests go over a congestion-controlled one


class Machine(Protocol):
    """What every presence machine offers its driver."""

    @property
    def finished(self) -> bool: ...

    def response(self, key: str, response: Response, now: float) -> Sequence[Any]: ...

    def no_response(self, key: str, now: float, reason: str = ...) -> Sequence[Any]: ...

    def resend(self, key: str, request: Request, now: float) -> Sequence[Any]: ...

    def next_deadline(self) -> float | None: ...

    def timer(self, now: float) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Route:
    """Where an account's presence requests go and how they are authorised."""
    stack: Any                   # sipd.sip.trio.stack.SipStack
    locator: Locator
    dialogs: DialogTable
    account: AccountConfig
    authenticator: DigestAuthenticator


class MachineDriver:
    """Runs one machine: see the module docstring. Subclasses say which in-dialog requests
    the machine takes (`_in_dialog`)."""

    def __init__(self, machine: Machine, route: Route, on_event: Callable[[Any], None]) -> None:
        self.machine = machine
        self.route = route
        self.on_event = on_event
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Event()
        self._sending = 0
        self._scope = trio.CancelScope()
        self.done = trio.Event()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.machine!r} of {self.route.account.id}>"

    # -- commands ------------------------------------------------------------------------------
    def apply(self, command: Callable[[float], Sequence[Any]]) -> None:
        """Calls `command(now)` (a machine method with its arguments bound) and carries out
        what it returns."""
        self.carry_out(command(trio.current_time()))

    def carry_out(self, actions: Sequence[Any]) -> None:
        """Does what the machine asked, in order; then reports its events, the contents of
        NOTIFYs last (a subscription is active before the state it brings is read)."""
        events = []
        for action in actions:
            if not isinstance(action, (SendRequest, SendResponse, ClaimDialog, ReleaseDialog)):
                events.append(action)
                continue
            try:
                self._carry_out(action)
            except Exception:
                log.exception("%r: carrying out %r failed", self, action)
        events.sort(key=lambda event: isinstance(event, Notified))
        for event in events:
            try:
                self.on_event(event)
            except Exception:
                log.exception("%r: reporting %r failed", self, event)
        self._changed.set()

    def _carry_out(self, action: Any) -> None:
        if isinstance(action, SendRequest):
            if self._nursery is None:
                raise RuntimeError("the driver is not running")
            self._sending += 1
            self._nursery.start_soon(self._send, action.request, action.key,
                                     action.dialog is None)
        elif isinstance(action, SendResponse):
            incoming = action.ref
            if incoming.transaction is not None and not incoming.answered:
                incoming.respond_nowait(action.status, action.reason,
                                        headers=action.headers, body=action.body,
                                        content_type=action.content_type,
                                        to_tag=action.to_tag)
        elif isinstance(action, ClaimDialog):
            self.route.dialogs.register(action.key.call_id, action.key.local_tag, self)
        elif isinstance(action, ReleaseDialog):
            self.route.dialogs.release(action.key.call_id, action.key.local_tag, self)

    def cancel(self) -> None:
        """Stops at once: no more requests, the dialogs released (a machine that will never
        finish, such as a notifier whose first SUBSCRIBE was refused)."""
        self._scope.cancel()

    # -- the dialog table routes to us (sipd.dialogs.DialogOwner) --------------------------------
    def on_request(self, incoming: Any) -> None:
        request = incoming.request
        if request.method == "ACK":
            return
        actions = self._in_dialog(incoming, trio.current_time())
        if actions is None:
            incoming.respond_nowait(405, "Method Not Allowed",
                                    headers=(("Allow", self._allowed()),))
            return
        self.carry_out(actions)

    def on_stray_response(self, response: Any) -> None:
        log.debug("%r: stray %d ignored", self, response.status)

    def _in_dialog(self, incoming: Any, now: float) -> Sequence[Any] | None:
        return None

    def _allowed(self) -> str:
        return ""

    # -- the task ------------------------------------------------------------------------------
    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Runs the machine's timers and requests until it is finished (or cancelled)."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    task_status.started()
                    while not (self.machine.finished and self._sending == 0):
                        deadline = self.machine.next_deadline()
                        self._changed = trio.Event()
                        with trio.move_on_at(math.inf if deadline is None else deadline):
                            await self._changed.wait()
                        now = trio.current_time()
                        deadline = self.machine.next_deadline()
                        if deadline is not None and deadline <= now:
                            self.carry_out(self.machine.timer(now))
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self.route.dialogs.release_owner(self)
            self.done.set()

    async def _send(self, request: Request, key: str, out_of_dialog: bool) -> None:
        try:
            outcome = await self._transact(request, key, out_of_dialog)
        except Exception as exc:
            log.exception("%r: sending %s failed", self, request.method)
            outcome = self._no_response(key, f"internal error: {exc!r}")
        finally:
            self._sending -= 1
        self.apply(outcome)

    async def _transact(self, request: Request, key: str, out_of_dialog: bool
                        ) -> Callable[[float], Sequence[Any]]:
        route = self.route
        machine = self.machine
        uri = first_hop(route.account, request.uri) if out_of_dialog else next_hop(request)
        try:
            targets = await route.locator.locate(uri)  # type: ignore[arg-type]
        except (LocationError, ValueError) as exc:
            return self._no_response(key, f"cannot locate {uri}: {exc}")
        failures: list[str] = []
        for target in targets:
            attempt = fresh_copy(request)
            try:
                response = await route.stack.send_request(attempt,
                                                          _stream_if_large(route, target,
                                                                           attempt))
            except (TransactionTimeout, TransportError) as exc:
                route.locator.mark_failed(target)
                failures.append(f"{target}: {exc or type(exc).__name__}")
                continue
            if response.status in TRANSIENT_STATUSES and target is not targets[-1]:
                route.locator.mark_failed(target)
                failures.append(f"{target}: {response.status} {response.reason}")
                continue
            route.locator.mark_succeeded(target)
            if response.status in (401, 407):
                result = route.authenticator.authenticate(attempt, response)
                if result.request is not None:
                    again = fresh_copy(result.request)
                    return lambda now: machine.resend(key, again, now)
                log.info("%s: %s to %s not authorised: %s", route.account.id, request.method,
                         request.uri, result.reason or response.reason)
            return lambda now: machine.response(key, response, now)
        return self._no_response(key, "; ".join(failures) or "no server to send to")

    def _no_response(self, key: str, reason: str) -> Callable[[float], Sequence[Any]]:
        machine = self.machine
        log.info("%s: no response (%s)", self.route.account.id, reason)
        return lambda now: machine.no_response(key, now, reason)


def _stream_if_large(route: Route, target: Target, request: Request) -> Target:
    """A request too large for UDP goes to the same place over TCP, when we speak TCP."""
    if (target.transport != "udp" or "tcp" not in route.stack.config.transports
            or len(request.to_bytes()) + 200 <= UDP_SIZE_LIMIT):  # 200: room for our Via
        return target
    return dataclasses.replace(target, transport="tcp")


class SubscriptionDriver(MachineDriver):
    """A Subscriber: NOTIFYs in its dialogs go to it."""
    machine: Subscriber

    def __init__(self, machine: Subscriber, route: Route,
                 on_event: Callable[[Any], None]) -> None:
        super().__init__(machine, route, on_event)

    def _in_dialog(self, incoming: Any, now: float) -> Sequence[Any] | None:
        if incoming.request.method != "NOTIFY":
            return None
        return self.machine.notify(incoming.request, now, incoming)

    def _allowed(self) -> str:
        return "NOTIFY"


class WatcherDriver(MachineDriver):
    """A Notifier: the watcher's SUBSCRIBEs (refreshes) in its dialog go to it."""
    machine: Notifier

    def __init__(self, machine: Notifier, route: Route,
                 on_event: Callable[[Any], None]) -> None:
        super().__init__(machine, route, on_event)

    def _in_dialog(self, incoming: Any, now: float) -> Sequence[Any] | None:
        if incoming.request.method != "SUBSCRIBE":
            return None
        return self.machine.subscribe(incoming.request, now, incoming)

    def _allowed(self) -> str:
        return "SUBSCRIBE"


class PublicationDriver(MachineDriver):
    """A Publisher: no dialog, only PUBLISH requests and their timers."""
    machine: Publisher

    def __init__(self, machine: Publisher, route: Route,
                 on_event: Callable[[Any], None]) -> None:
        super().__init__(machine, route, on_event)
