"""The trio side of one account's registration: runs the sans-I/O `Registration`.

One task per registered account. It locates the registrar (or outbound proxy), feeds the
state machine the time, the final responses and the failures of its REGISTERs, carries out
what it asks (send, wait), and publishes every state change as `account.registration`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

import trio

from sipd.sip.header_values import Address
from sipd.sip.locator import LocationError, Locator, Target
from sipd.sip.stack_handles import TransactionTimeout
from sipd.sip.transport import TransportError
from sipd.sip.uri import SipUri

from .model import AccountConfig
from .outbound import first_hop
from .registration import Registration, RegistrationState, SendRegister, StateChanged

log = logging.getLogger(__name__)

LOCATE_RETRY = 30.0  # seconds before locating a registrar again after DNS failed

Publish = Callable[[dict[str, Any]], None]


class RegistrarClient:
    """Keeps one account registered until stopped."""

    def __init__(self, account: AccountConfig, stack: Any, locator: Locator,
                 publish: Publish, contact_user: str) -> None:
        self.account = account
        self.stack = stack
        self.locator = locator
        self.publish = publish
        self.contact_user = contact_user
        self.targets: list[Target] = []
        self.registration = Registration(account, contact=self._contact,
                                         user_agent=stack.config.user_agent)
        self.last_data: dict[str, Any] = {"account": account.id, "state": "unregistered"}
        self._inputs, self._input_queue = trio.open_memory_channel[Callable[[float], list]](64)
        self._stopped = trio.Event()

    # -- what the manager calls -----------------------------------------------------------

    def stop(self, wait: float) -> None:
        """Unregister (bounded by `wait` seconds); run() returns when that is done."""
        self._feed(lambda now: self.registration.stop(now, wait=wait))

    def network_changed(self) -> None:
        self._feed(self.registration.network_changed)

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._locate_until_found()
                self._apply(self.registration.start(trio.current_time()))
                await self._loop()
                nursery.cancel_scope.cancel()
        finally:
            self._stopped.set()

    # -- inside ---------------------------------------------------------------------------

    def _feed(self, step: Callable[[float], list]) -> None:
        try:
            self._inputs.send_nowait(step)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.warning("%s: registration input dropped (queue full)", self.account.id)

    async def _locate_until_found(self) -> None:
        hop = first_hop(self.account, self.account.registrar_uri)
        while True:
            try:
                self.targets = await self.locator.locate(hop)
                self.registration.set_targets(len(self.targets))
                return
            except LocationError as exc:
                self._publish({"account": self.account.id, "state": "failed",
                               "reason": f"cannot locate the registrar: {exc}",
                               "retry_in": LOCATE_RETRY,
                               "retry_at": round(time.time() + LOCATE_RETRY, 3)})
                with trio.move_on_after(LOCATE_RETRY):
                    step = await self._input_queue.receive()
                    self._apply(step(trio.current_time()))
                    if self.registration.is_stopped:
                        raise trio.Cancelled._create() from None  # pragma: no cover

    async def _loop(self) -> None:
        while not (self.registration.is_stopped and self._stop_reported):
            deadline = self.registration.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                step = await self._input_queue.receive()
                self._apply(step(trio.current_time()))
                continue
            self._apply(self.registration.timer(trio.current_time()))

    @property
    def _stop_reported(self) -> bool:
        return self.registration.state is RegistrationState.UNREGISTERED

    def _apply(self, actions: list) -> None:
        now = trio.current_time()
        for action in actions:
            if isinstance(action, SendRegister):
                self._nursery.start_soon(self._send, action)
            elif isinstance(action, StateChanged):
                self._publish(action.data(self.account.id, now, time.time()))

    def _publish(self, data: dict[str, Any]) -> None:
        self.last_data = data
        self.publish(data)

    async def _send(self, action: SendRegister) -> None:
        target = self.targets[action.target_index % len(self.targets)]
        request = action.request
        try:
            response = await self.stack.send_request(request, target)
        except TransactionTimeout:
            self.locator.mark_failed(target)
            self._feed(lambda now: self.registration.timed_out(now, request))
        except TransportError as exc:
            self.locator.mark_failed(target)
            reason = str(exc) or "transport error"
            self._feed(lambda now: self.registration.transport_failed(now, request, reason))
        else:
            self._feed(lambda now: self.registration.response_received(response, now))

    def _contact(self) -> Address:
        """Our Contact toward the first located server, over the transport we reach it by."""
        target = self.targets[0] if self.targets else None
        transport = target.transport if target else "udp"
        host, port = self.stack.local_contact(transport, target)
        uri = SipUri(host, user=self.contact_user, port=port,
                     scheme="sips" if transport == "tls" and self.account.aor_uri.secure
                     else "sip")
        if transport != "udp":
            uri.params.set("transport", transport)
        return Address(uri)
