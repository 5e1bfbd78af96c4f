"""An account's xcap-diff subscription (RFC 5875): what another device changes on the XCAP
server reaches us without polling.

    sync = DocumentSync(account, presence, manager, reload=..., refused=...)
    await nursery.start(sync.run)    # until cancelled, or until the server says no

The SUBSCRIBE goes to the account's own AOR through its SIP server (the presence route of
sipd.presence.trio: the same Subscriber machine and driver, its dialogs in the user agent's
dialog table) with the URIs of the manager's documents in its body. Whether the server offers
the package is learnt by asking: a refusal (489 Bad Event and the like) ends the subscription
and sipd keeps working without it (SIGHUP still reads the documents again). Each NOTIFY names
documents with their ETags (sipd.xcap.diffevent); those whose ETag differs from the copy the
manager holds are read again (`reload`), which emits xcap.changed. A NOTIFY we cannot read gets
its 200 all the same (the subscription lives on) and is reported (`refused`, with the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from sipd.accounts.outbound import proxy_route
from sipd.presence.events import Notified, SubscriptionChanged, SubscriptionState
from sipd.presence.subscriber import Subscriber, SubscribeTarget
from sipd.presence.trio.driver import SubscriptionDriver
from sipd.xcap import diffevent
from sipd.xcap.documents import DocumentKey
from sipd.xcap.errors import XcapDocumentError, XcapError
from sipd.xcap.trio.manager import XcapDocumentManager

log = logging.getLogger(__name__)

DEFAULT_EXPIRES = 3600


class DocumentSync:
    def __init__(self, account: Any, presence: Any, manager: XcapDocumentManager, *,
                 reload: Callable[[list[DocumentKey]], Awaitable[None]],
                 refused: Callable[[str], None]) -> None:
        self.account = account
        self.presence = presence
        self.manager = manager
        self.reload = reload
        self.refused = refused
        self.driver: SubscriptionDriver | None = None
        self._pending: set[DocumentKey] = set()
        self._wake = trio.Event()
        self._scope = trio.CancelScope()

    def cancel(self) -> None:
        """Stops at once."""
        self._scope.cancel()

    async def replace(self, timeout: float = 5.0) -> None:
        """Unsubscribes (for at most `timeout` seconds), then stops: the account changed and
        a new subscription replaces this one, so the server need not keep notifying it."""
        with trio.move_on_after(timeout):
            await self.unsubscribe()
        self.cancel()

    @property
    def state(self) -> SubscriptionState | None:
        return self.driver.machine.state if self.driver is not None else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        try:
            with self._scope:
                await self._run(task_status)
        except Exception:  # the account's contacts go on without it
            log.exception("%s: the xcap-diff subscription stopped on an internal error",
                          self.account.id)

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        account = self.account
        uri = account.aor_uri
        from_, contact = await self.presence.addresses.identity(account, uri)
        route = proxy_route(account)
        body = diffevent.subscription_body(
            str(self.manager.uri(key)) for key in self.manager.keys())
        expires = DEFAULT_EXPIRES
        settings = getattr(self.presence, "settings", None)
        if settings is not None:
            expires = settings.get("presence.subscribe_expires")
        subscriber = Subscriber(
            SubscribeTarget(uri, from_=from_, contact=contact,
                            routes=(route,) if route is not None else (), body=body,
                            content_type=diffevent.SUBSCRIBE_CONTENT_TYPE),
            event=diffevent.EVENT, accept=(diffevent.CONTENT_TYPE,), expires=expires)
        driver = SubscriptionDriver(subscriber, self.presence.route_for(account),
                                    self._on_event)
        self.driver = driver
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            driver.apply(subscriber.start)
            task_status.started()
            nursery.start_soon(self._reload_loop)
            await driver.done.wait()
            nursery.cancel_scope.cancel()

    async def unsubscribe(self) -> None:
        """Ends the subscription (Expires: 0) and waits for it to be over: at shutdown, while
        the SIP stack still runs."""
        driver = self.driver
        if driver is None or driver.done.is_set():
            return
        driver.apply(driver.machine.unsubscribe)
        await driver.done.wait()

    async def _reload_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            keys, self._pending = sorted(self._pending), set()
            try:
                await self.reload(keys)
            except XcapError as exc:
                log.info("%s: could not read %s again after an xcap-diff NOTIFY: %s",
                         self.account.id, ", ".join(map(str, keys)), exc)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, SubscriptionChanged):
            if event.state is SubscriptionState.TERMINATED and event.reason == "unsubscribed":
                log.info("%s: xcap-diff subscription ended (unsubscribed)", self.account.id)
            elif event.state is SubscriptionState.TERMINATED:
                log.info("%s: no xcap-diff subscription (%s%s); other devices' changes show "
                         "up at the next start or SIGHUP", self.account.id,
                         f"{event.code} " if event.code else "", event.reason or "ended")
            elif event.state is SubscriptionState.ACTIVE:
                log.info("%s: xcap-diff subscription active: changes made elsewhere are "
                         "read as they happen", self.account.id)
        elif isinstance(event, Notified):
            self._notified(event)

    def _notified(self, event: Notified) -> None:
        try:
            changes = diffevent.changed_documents(
                event.content_type, event.body, root=self.manager.client.root,
                xui=self.manager.xui)
        except XcapDocumentError as exc:
            log.warning("%s: xcap-diff NOTIFY refused: %s", self.account.id, exc)
            self.refused(f"xcap-diff NOTIFY refused: {exc}")
            return
        ours = set(self.manager.keys())
        for change in changes:
            if change.key not in ours:
                continue
            etag = self.manager.etag(change.key)
            if change.etag is None and (not change.removed or etag is not None):
                self._pending.add(change.key)
            elif change.etag is not None and change.etag != etag:
                self._pending.add(change.key)
        if self._pending:
            self._wake.set()
