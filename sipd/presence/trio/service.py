"""The daemon's presence: what `presence.*` calls do and the events they publish.

Per account:
- one publication of our presence (RFC 3903) at the account's server, when it has one (an
  account that registers); the entity tag is kept across re-registrations: a new
  registration refreshes it;
- subscriptions (RFC 6665) to contacts, lists (RFC 4662), our own watcher information
  (presence.winfo), the voicemail summary (message-summary) and busy lamps (dialog), each
  with a reader of its NOTIFYs (a new one for each dialog a NOTIFY starts);
- watchers: sipd answers SUBSCRIBEs to the presence of its accounts itself (a direct account,
  one without a registrar, is its own presence agent; a server that forwards a SUBSCRIBE to
  us gets the same answer). A new watcher is pending until `authorize` (or the setting
  presence.allow_everyone); every publish notifies the allowed ones; shutdown terminates them
  (reason deactivated: "subscribe again later").

Events: presence.state (one per contact, also for each resource of a list),
presence.subscription, presence.watcher, presence.publication, presence.dialog,
account.message_summary.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio

from sipd.accounts.model import AccountConfig
from sipd.accounts.outbound import proxy_route
from sipd.dialogs import DialogTable
from sipd.sip.header_values import Address
from sipd.sip.trio.locator import Locator
from sipd.sip.uri import SipUri, target_uri

from ..events import (
    Notified,
    PublicationChanged,
    SubscriptionChanged,
    SubscriptionState,
)
from ..own_dialogs import OwnDialogs
from ..payload import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    PIDF_TYPE,
    WATCHERINFO_TYPE,
    InvalidInput,
)
from ..pidf_build import DocumentIds, PublishedStatus, build_pidf
from ..publisher import Publisher, PublishTarget
from ..subscriber import Subscriber, SubscribeTarget
from .addresses import OurAddresses
from .agent import PresenceAgent, deactivate
from .driver import MachineDriver, PublicationDriver, Route, SubscriptionDriver, WatcherDriver
from .errors import PresenceError
from .subscriptions import Subscription

__all__ = ["PresenceService", "PresenceError", "ACCEPT", "PACKAGES", "CONTENT_TYPES",
           "EXTENSIONS"]

log = logging.getLogger(__name__)

# The event packages presence.subscribe takes, with the document each one's NOTIFYs carry.
ACCEPT: dict[str, str] = {
    "presence": PIDF_TYPE,
    "presence.winfo": WATCHERINFO_TYPE,
    "message-summary": MESSAGE_SUMMARY_TYPE,
    "dialog": DIALOG_INFO_TYPE,
}
PACKAGES = tuple(ACCEPT)
# What the stack must take in a NOTIFY's body (RFC 4662 lists come as multipart/related).
CONTENT_TYPES = (PIDF_TYPE, "application/cpim-pidf+xml", WATCHERINFO_TYPE,
                 MESSAGE_SUMMARY_TYPE, DIALOG_INFO_TYPE, "multipart/related",
                 "application/rlmi+xml")
# A resource list server's NOTIFYs Require eventlist (RFC 4662 §5.2).
EXTENSIONS = ("eventlist",)
STOP_WAIT = 3.0  # seconds the final PUBLISH, unsubscriptions and NOTIFYs may take at shutdown
# After the account's presence rules changed on its server, this long before its watcher
# information is asked for again (time for the server to apply them; see policies_changed).
WINFO_RESYNC_DELAY = 1.0

@dataclass
class _Publication:
    account: AccountConfig
    ids: DocumentIds
    status: PublishedStatus | None = None
    withdrawn: bool = False  # unpublished: watchers of sipd itself see it closed
    driver: PublicationDriver | None = None


class PresenceService:
    def __init__(self, bus: Any, settings: Any, stack: Any, locator: Locator, accounts: Any,
                 dialogs: DialogTable, nursery: trio.Nursery) -> None:
        self.bus = bus
        self.settings = settings
        self.stack = stack
        self.locator = locator
        self.accounts = accounts
        self.dialogs = dialogs
        self._nursery = nursery
        self.addresses = OurAddresses(stack, locator)
        self.agent = PresenceAgent(bus, settings, self.addresses, self.route_for, self._start,
                                   self._agent_document)
        self._subscriptions: dict[tuple[str, str, str], Subscription] = {}
        self._publications: dict[str, _Publication] = {}
        self._calls = OwnDialogs()  # our sessions as dialog state (presence.publish_dialogs)
        self._dialog_publications: dict[str, PublicationDriver] = {}
        self._stopping = False
        self._resyncing: set[str] = set()  # accounts whose watcher information is due again

    # -- views -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """system.state's presence: publications, subscriptions and watchers."""
        return {
            "publications": [self._publication_view(p) for p in self._publications.values()
                             if p.status is not None or p.driver is not None],
            "subscriptions": [s.view() for s in self._subscriptions.values()],
            "watchers": self.agent.views(),
        }

    def route_for(self, account: AccountConfig) -> Route:
        """How the account's presence requests go: for a driver of another event package."""
        return Route(self.stack, self.locator, self.dialogs, account,
                     self.accounts.authenticator(account))

    # -- publication -----------------------------------------------------------------------
    async def publish(self, account: AccountConfig, params: dict[str, Any]) -> dict[str, Any]:
        try:
            status = PublishedStatus.from_params(**params)
        except InvalidInput as exc:
            raise PresenceError(exc.field, f"{exc.field} {exc.reason}") from None
        publication = self._publication(account)
        publication.status, publication.withdrawn = status, False
        body = self._document(publication)
        if self._has_server(account):
            driver = publication.driver
            if driver is None or driver.done.is_set():
                route = self.route_for(account)
                target = PublishTarget(account.aor_uri,
                                       from_=Address(account.aor_uri,
                                                     account.display_name or None),
                                       routes=_routes(account))
                publisher = Publisher(target, expires=self.settings.get(
                    "presence.publish_expires"))
                driver = PublicationDriver(publisher, route,
                                           lambda event: self._publication_event(account, event))
                await self._start(driver)
                publication.driver = driver
            publisher = driver.machine
            driver.apply(lambda now: publisher.publish(body, now))
        notified = self.agent.update(account, body)
        return {"account": account.id, "published": self._has_server(account),
                "watchers": notified, "status": status.status}

    async def unpublish(self, account: AccountConfig) -> dict[str, Any]:
        publication = self._publications.get(account.id)
        if publication is None or publication.status is None:
            return {"account": account.id, "published": False}
        publication.status, publication.withdrawn = None, True
        if publication.driver is not None and not publication.driver.done.is_set():
            publisher = publication.driver.machine
            publication.driver.apply(publisher.unpublish)
        self.agent.update(account, self._document(publication))
        return {"account": account.id, "published": False}

    def registered(self, account_id: str) -> None:
        """The account registered (again): its publication is refreshed with the same tag,
        its voicemail summary subscribed if the account wants one."""
        publication = self._publications.get(account_id)
        if publication is not None and publication.driver is not None \
                and not publication.driver.done.is_set():
            publisher = publication.driver.machine
            publication.driver.apply(publisher.refresh)
        try:
            account = self.accounts.get(account_id)
        except LookupError:
            return
        self._nursery.start_soon(self._ensure_message_summary, account)

    def _publication(self, account: AccountConfig) -> _Publication:
        publication = self._publications.get(account.id)
        if publication is None:
            publication = _Publication(account, DocumentIds.new())
            self._publications[account.id] = publication
        publication.account = account
        return publication

    def _document(self, publication: _Publication) -> bytes:
        """Our PIDF; before any publish (or after unpublish) an open status without a note:
        the daemon is up and the account reachable, as far as sipd itself knows."""
        status = publication.status or PublishedStatus(
            "closed" if publication.withdrawn or self._stopping else "open")
        return build_pidf(publication.account.aor, status, ids=publication.ids,
                          now=datetime.datetime.now(datetime.UTC))

    def _publication_event(self, account: AccountConfig, event: Any,
                           package: str = "presence") -> None:
        if isinstance(event, PublicationChanged):
            data = _with_wall_clock(event.data())
            self.bus.publish("presence.publication", {"account": account.id, "event": package,
                                                      **data})

    def _publication_view(self, publication: _Publication) -> dict[str, Any]:
        driver = publication.driver
        publisher = driver.machine if driver is not None else None
        state = publisher.state.value if publisher is not None and publisher.state else None
        return {"account": publication.account.id,
                "status": publication.status.status if publication.status else None,
                "note": publication.status.note if publication.status else None,
                "server": state, "etag": publisher.etag if publisher is not None else None}

    # -- subscriptions ---------------------------------------------------------------------
    async def subscribe(self, account: AccountConfig, to: str, *, event: str = "presence",
                        is_list: bool = False) -> dict[str, Any]:
        if event not in ACCEPT:
            raise PresenceError("event", f"event must be one of {', '.join(PACKAGES)}; "
                                         f"got {event!r}")
        try:
            uri = target_uri(to)
        except ValueError as exc:
            raise PresenceError("to", str(exc)) from None
        key = (account.id, str(uri), event)
        held = self._subscriptions.get(key)
        if held is not None and not held.driver.done.is_set() \
                and held.subscriber.state is not SubscriptionState.TERMINATED:
            return held.view()
        from_, contact = await self.addresses.identity(account, uri)
        subscriber = Subscriber(
            SubscribeTarget(uri, from_=from_, contact=contact, routes=_routes(account)),
            event=event, accept=(ACCEPT[event],),
            expires=self.settings.get("presence.subscribe_expires"), eventlist=is_list)
        entry: Subscription
        driver = SubscriptionDriver(subscriber, self.route_for(account),
                                    lambda action: self._subscription_event(entry, action))
        entry = Subscription(account, str(uri), event, is_list, driver)
        self._subscriptions[key] = entry
        await self._start(driver, lambda: self._forget_subscription(key, entry))
        driver.apply(subscriber.start)
        return entry.view()

    async def unsubscribe(self, account: AccountConfig, to: str, event: str = "presence"
                          ) -> dict[str, Any]:
        try:
            uri = str(target_uri(to))
        except ValueError as exc:
            raise PresenceError("to", str(exc)) from None
        entry = self._subscriptions.get((account.id, uri, event))
        if entry is None:
            raise PresenceError("to", f"account {account.id} has no {event} subscription to "
                                      f"{uri}")
        entry.driver.apply(entry.subscriber.unsubscribe)
        return entry.view()

    def account_changed(self, account_id: str, account: AccountConfig | None) -> None:
        """An account was changed (or removed: None): its presence starts again with the new
        configuration (or ends)."""
        self._nursery.start_soon(self._restart_account, account_id, account)

    async def _restart_account(self, account_id: str, account: AccountConfig | None) -> None:
        subscriptions = [(entry.to, entry.event, entry.is_list)
                         for entry in self._subscriptions.values()
                         if entry.account.id == account_id and not entry.driver.done.is_set()]
        publication = self._publications.get(account_id)
        status = publication.status if publication is not None else None
        running = [driver for driver in self._drivers()
                   if driver.route.account.id == account_id]
        await self._stop_drivers(running)
        self._publications.pop(account_id, None)
        self._dialog_publications.pop(account_id, None)
        if account is None or self._stopping:
            self.agent.forget_account(account_id)
            return
        if running or status is not None:
            log.info("%s: presence starts again with the account's new settings", account_id)
        for to, event, is_list in subscriptions:
            try:
                await self.subscribe(account, to, event=event, is_list=is_list)
            except PresenceError as exc:
                log.warning("%s: %s subscription to %s not renewed: %s", account_id, event, to,
                            exc.reason)
        if status is not None:
            await self.publish(account, {
                "status": status.status, "note": status.note,
                "activities": list(status.activities), "mood": list(status.mood),
                "display_name": status.display_name, "icon": status.icon})
        await self._ensure_message_summary(account)

    async def network_changed(self) -> None:
        """Our address may have changed: every subscription refreshes with its new contact
        (RFC 6665 §4.1.2.1: a refresh updates the remote target of the notifier)."""
        for entry in list(self._subscriptions.values()):
            if entry.driver.done.is_set():
                continue
            uri = entry.subscriber.target.uri
            if not isinstance(uri, SipUri):
                continue
            toward, transport = await self.addresses.toward(entry.account, uri)
            contact = self.addresses.contact(entry.account, toward, transport)
            if str(contact) != str(entry.subscriber.target.contact):
                entry.driver.apply(functools.partial(_new_contact, entry.subscriber, contact))

    def _forget_subscription(self, key: tuple[str, str, str], entry: Subscription) -> None:
        if self._subscriptions.get(key) is entry:
            del self._subscriptions[key]

    async def _ensure_message_summary(self, account: AccountConfig) -> None:
        voicemail = getattr(account, "voicemail", "")
        if not voicemail or not getattr(account, "message_summary", True) or self._stopping:
            return
        try:
            await self.subscribe(account, voicemail, event="message-summary")
        except PresenceError as exc:
            log.warning("%s: no voicemail summary: %s", account.id, exc.reason)

    def start(self, bus: Any, accounts: Iterable[AccountConfig]) -> None:
        """At start: follow the registrations (each one refreshes the publication and
        subscribes the voicemail summary), the calls (presence.publish_dialogs) and the
        changes of accounts, and subscribe the voicemail summaries of the accounts that do
        not register."""
        bus.subscribe(["accounts", "sessions"], self._bus_event)
        self.accounts.on_change(self.account_changed)
        for account in accounts:
            if not account.registers:
                self._nursery.start_soon(self._ensure_message_summary, account)

    def _bus_event(self, event: Any) -> None:
        data = event.data
        if event.name == "account.registration" and data.get("state") == "registered":
            self.registered(str(data.get("account")))
        elif event.name == "session.new" and self.settings.get("presence.publish_dialogs"):
            account = self._calls.started(str(data.get("id")), account=str(data.get("account")),
                                          direction=str(data.get("direction")),
                                          remote=str(data.get("remote")))
            self._nursery.start_soon(self._publish_dialogs, account)
        elif event.name == "session.state":
            changed = self._calls.changed(str(data.get("id")), str(data.get("state")),
                                          data.get("code"))
            if changed is not None:
                self._nursery.start_soon(self._publish_dialogs, changed)

    async def _publish_dialogs(self, account_id: str) -> None:
        """Our calls' dialog state, to the account's server and to its dialog watchers."""
        try:
            account = self.accounts.get(account_id)
        except LookupError:
            return
        body = self._calls.document(account.id, account.aor)
        if self._has_server(account) and not self._stopping:
            driver = self._dialog_publications.get(account.id)
            if driver is None or driver.done.is_set():
                target = PublishTarget(account.aor_uri, from_=Address(account.aor_uri),
                                       routes=_routes(account))
                publisher = Publisher(target, event="dialog", content_type=DIALOG_INFO_TYPE,
                                      expires=self.settings.get("presence.publish_expires"))
                driver = PublicationDriver(
                    publisher, self.route_for(account),
                    lambda event: self._publication_event(account, event, "dialog"))
                self._dialog_publications[account.id] = driver
                await self._start(driver)
            publishing = driver.machine
            driver.apply(lambda now: publishing.publish(body, now))
        self.agent.update(account, body, "dialog")

    def _subscription_event(self, entry: Subscription, event: Any) -> None:
        account = entry.account.id
        if isinstance(event, SubscriptionChanged):
            self.bus.publish("presence.subscription", {
                "account": account, "to": entry.to, "event": entry.event,
                **_with_wall_clock(event.data())})
        elif isinstance(event, Notified):
            entry.notified(event, self.bus.publish)

    def watchers(self, account: AccountConfig) -> list[dict[str, Any]]:
        """The account's watchers: those subscribed to sipd itself, and those its server's
        watcher information (presence.winfo) reported."""
        found = self.agent.views(account.id)
        for entry in self._subscriptions.values():
            if entry.account.id == account.id and entry.event == "presence.winfo":
                found += [{**data, "source": "server"} for data in entry.watchers.values()]
        return found

    async def watch_watchers(self, account: AccountConfig) -> None:
        """Subscribes to the account's own watcher information at its server (once)."""
        if self._has_server(account):
            await self.subscribe(account, account.aor, event="presence.winfo")

    def policies_changed(self, account: AccountConfig) -> None:
        """The account's presence rules changed on its server (presence.authorize with XCAP):
        its watcher information is asked for again a moment later, which brings full state.
        The server should notify the watchers' new states itself (RFC 3857); Kamailio, told
        by its xcap_server, applies the rules to the watchers but does not tell the owner's
        watcher information, which would show a watcher pending until its next refresh."""
        if account.id in self._resyncing or not any(
                entry.account.id == account.id and entry.event == "presence.winfo"
                for entry in self._subscriptions.values()):
            return
        self._resyncing.add(account.id)
        self._nursery.start_soon(self._resync_watchers, account.id)

    async def _resync_watchers(self, account_id: str) -> None:
        try:
            await trio.sleep(WINFO_RESYNC_DELAY)
        finally:
            self._resyncing.discard(account_id)
        for entry in list(self._subscriptions.values()):
            if entry.account.id == account_id and entry.event == "presence.winfo" \
                    and not entry.driver.done.is_set() \
                    and entry.subscriber.state is SubscriptionState.ACTIVE:
                entry.driver.apply(entry.subscriber.refresh)

    async def on_subscribe(self, incoming: Any, account: AccountConfig) -> None:
        """An out-of-dialog SUBSCRIBE for one of our accounts (sipd.presence.trio.agent)."""
        await self.agent.on_subscribe(incoming, account)

    async def authorize(self, account: AccountConfig, watcher: str, allow: bool
                        ) -> dict[str, Any]:
        return self.agent.authorize(account, watcher, allow)

    def _agent_document(self, account: AccountConfig, package: str) -> bytes:
        if package == "dialog":
            return self._calls.document(account.id, account.aor)
        return self._document(self._publication(account))

    # -- shutdown ----------------------------------------------------------------------------
    async def stop_all(self, wait: float = STOP_WAIT) -> None:
        """Unpublishes, unsubscribes and terminates the watchers (deactivated), waiting at
        most `wait` seconds for it all to be answered."""
        self._stopping = self.agent.stopping = True
        await self._stop_drivers(self._drivers(), wait)

    def _drivers(self) -> list[MachineDriver]:
        drivers: list[MachineDriver] = [p.driver for p in self._publications.values()
                                        if p.driver is not None]
        drivers += self._dialog_publications.values()
        drivers += [entry.driver for entry in self._subscriptions.values()]
        drivers += self.agent.drivers()
        return [driver for driver in drivers if not driver.done.is_set()]

    async def _stop_drivers(self, drivers: list[MachineDriver], wait: float = STOP_WAIT
                            ) -> None:
        """Ends what `drivers` run (remove, unsubscribe, terminate: deactivated), waiting at
        most `wait` seconds for the answers; then stops them."""
        for driver in drivers:
            if isinstance(driver, PublicationDriver):
                driver.apply(driver.machine.unpublish)
            elif isinstance(driver, SubscriptionDriver):
                driver.apply(driver.machine.unsubscribe)
            elif isinstance(driver, WatcherDriver):
                driver.apply(functools.partial(deactivate, driver.machine))
        with trio.move_on_after(wait):
            for driver in drivers:
                await driver.done.wait()
        for driver in drivers:
            driver.cancel()

    # -- inside ------------------------------------------------------------------------------
    async def _start(self, driver: MachineDriver,
                     forget: Callable[[], None] | None = None) -> None:
        async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await driver.run(task_status=task_status)
            except Exception:
                log.exception("%r stopped on an internal error", driver)
            finally:
                if forget is not None:
                    forget()
        await self._nursery.start(run)

    def _has_server(self, account: AccountConfig) -> bool:
        """Whether the account's presence lives at a server (it registers, or has a proxy)."""
        return account.registers or account.outbound_proxy_uri is not None



def _new_contact(subscriber: Subscriber, contact: Address, now: float) -> list[Any]:
    return list(subscriber.update_contact(contact, now))


def _routes(account: AccountConfig) -> tuple[Address, ...]:
    route = proxy_route(account)
    return (route,) if route is not None else ()


def _with_wall_clock(data: dict[str, Any]) -> dict[str, Any]:
    """retry_at on the daemon's clock (trio's) as a Unix time a client can read."""
    retry_at = data.get("retry_at")
    if retry_at is not None:
        data = {**data, "retry_at": round(time.time() + (retry_at - trio.current_time()), 3)}
    return data
