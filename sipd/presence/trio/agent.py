"""sipd as the presence agent of its accounts: it answers SUBSCRIBEs to their presence (and to
their dialog state with presence.publish_dialogs), keeps a new watcher pending until the user
decides (presence.authorize, or presence.allow_everyone), notifies the allowed ones of every
change, and holds at most presence.max_watchers per account."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sipd.accounts.model import AccountConfig
from sipd.sip.uri import target_uri

from ..events import WatcherChanged
from ..headers import event_of
from ..notifier import Decision, Notifier, NotifierPolicy
from ..payload import DIALOG_INFO_TYPE, PIDF_TYPE
from .addresses import OurAddresses
from .driver import MachineDriver, Route, WatcherDriver
from .errors import PresenceError

__all__ = ["PresenceAgent", "Watcher", "deactivate"]

log = logging.getLogger(__name__)


@dataclass
class Watcher:
    """One subscription to an account's state, held by sipd as its presence agent."""
    account: AccountConfig
    driver: WatcherDriver

    @property
    def notifier(self) -> Notifier:
        return self.driver.machine

    def view(self) -> dict[str, Any]:
        notifier = self.notifier
        return {"account": self.account.id, "watcher": notifier.watcher,
                "display_name": notifier.display_name, "package": notifier.event,
                "status": notifier.state.value if notifier.state else "pending",
                "contact": _remote_target(notifier)}


class PresenceAgent:
    """The watchers of every account. `document(account, package)` is the account's current
    state as that package's document; `start(driver, forget)` runs a driver."""

    def __init__(self, bus: Any, settings: Any, addresses: OurAddresses,
                 route_for: Callable[[AccountConfig], Route],
                 start: Callable[[MachineDriver, Callable[[], None]], Awaitable[None]],
                 document: Callable[[AccountConfig, str], bytes]) -> None:
        self.bus = bus
        self.settings = settings
        self.addresses = addresses
        self.route_for = route_for
        self.start = start
        self.document = document
        self.watchers: list[Watcher] = []
        self.stopping = False
        self._decisions: dict[tuple[str, str], bool] = {}  # (account, watcher) -> allowed

    def views(self, account_id: str | None = None) -> list[dict[str, Any]]:
        return [w.view() for w in self.watchers if account_id in (None, w.account.id)]

    def drivers(self, account_id: str | None = None) -> list[WatcherDriver]:
        return [w.driver for w in self.watchers if account_id in (None, w.account.id)]

    def forget_account(self, account_id: str) -> None:
        """The account is gone: so are the decisions about its watchers."""
        self._decisions = {key: allowed for key, allowed in self._decisions.items()
                           if key[0] != account_id}

    async def on_subscribe(self, incoming: Any, account: AccountConfig) -> None:
        """An out-of-dialog SUBSCRIBE for one of our accounts: presence, or dialog (busy
        lamps) when presence.publish_dialogs is on."""
        request = incoming.request
        event = event_of(request)
        served = self.served_packages()
        package = event.package.lower() if event is not None else None
        if self.stopping:
            await incoming.respond(480, "Temporarily Unavailable")
            return
        if package not in served:
            await incoming.respond(489, "Bad Event", headers=(("Allow-Events",
                                                               ", ".join(served)),))
            return
        most = self.settings.get("presence.max_watchers")
        if sum(1 for w in self.watchers if w.account.id == account.id) >= most:
            # a flood of SUBSCRIBEs costs it a 503, not our memory
            log.warning("%s: %d watchers already; a SUBSCRIBE is refused", account.id, most)
            await incoming.respond(503, "Too Many Subscriptions",
                                   headers=(("Retry-After", "600"),))
            return
        from_ = request.from_
        watcher = str(from_.uri) if from_ is not None else ""
        content_type = DIALOG_INFO_TYPE if package == "dialog" else PIDF_TYPE
        body = self.document(account, package)
        notifier = Notifier(event=package, contact=self.addresses.contact(account, incoming.source),
                            content_type=content_type, body=body,
                            policy=NotifierPolicy(
                                max_expires=self.settings.get("presence.subscribe_expires")))
        driver = WatcherDriver(notifier, self.route_for(account),
                               lambda action: self._watcher_event(account, notifier, action))
        entry = Watcher(account, driver)
        await self.start(driver, lambda: self._forget_watcher(entry))
        driver.apply(lambda now: notifier.subscribe(request, now, incoming,
                                                     decision=self._decision(account, watcher)))
        if notifier.dialog_key is None and notifier.state is None:
            driver.cancel()  # refused (423, 406...): nothing to keep
            return
        self.watchers.append(entry)

    def served_packages(self) -> tuple[str, ...]:
        if self.settings.get("presence.publish_dialogs"):
            return ("presence", "dialog")
        return ("presence",)

    def _decision(self, account: AccountConfig, watcher: str) -> Decision:
        allowed = self._decisions.get((account.id, _uri_key(watcher)))
        if allowed is None:
            return "allow" if self.settings.get("presence.allow_everyone") else "pending"
        return "allow" if allowed else "deny"

    def authorize(self, account: AccountConfig, watcher: str, allow: bool) -> dict[str, Any]:
        """Allows or denies a watcher of the account, now and for later subscriptions."""
        try:
            key = _uri_key(str(target_uri(watcher)))
        except ValueError as exc:
            raise PresenceError("watcher", str(exc)) from None
        self._decisions[(account.id, key)] = allow
        applied = 0
        for entry in list(self.watchers):
            notifier = entry.notifier
            if entry.account.id == account.id and notifier.watcher is not None \
                    and _uri_key(notifier.watcher) == key:
                entry.driver.apply(functools.partial(_authorize, notifier, allow))
                applied += 1
        return {"account": account.id, "watcher": watcher, "allow": allow,
                "subscriptions": applied}

    def update(self, account: AccountConfig, body: bytes, package: str = "presence") -> int:
        """The account's state changed: its watchers of `package` are told (the allowed ones)."""
        count = 0
        for entry in self.watchers:
            if entry.account.id == account.id and entry.notifier.event == package:
                notifier = entry.notifier
                entry.driver.apply(functools.partial(_update, notifier, body))
                count += 1
        return count

    def _watcher_event(self, account: AccountConfig, notifier: Notifier, event: Any) -> None:
        if isinstance(event, WatcherChanged):
            self.bus.publish("presence.watcher", {"account": account.id, **event.data(),
                                                  "package": notifier.event,
                                                  "contact": _remote_target(notifier)})

    def _forget_watcher(self, entry: Watcher) -> None:
        if entry in self.watchers:
            self.watchers.remove(entry)


def _authorize(notifier: Notifier, allow: bool, now: float) -> list[Any]:
    return list(notifier.authorize(allow, now))


def _update(notifier: Notifier, body: bytes, now: float) -> list[Any]:
    return list(notifier.update(body, now))


def deactivate(notifier: Notifier, now: float) -> list[Any]:
    """Ends a watcher's subscription, reason deactivated (shutdown: subscribe again later)."""
    return list(notifier.terminate(now, "deactivated"))


def _remote_target(notifier: Notifier) -> str | None:
    """Where the watcher takes requests (its Contact): the address to watch it back at."""
    return str(notifier.dialog.remote_target) if notifier.dialog is not None else None


def _uri_key(uri: str) -> str:
    """A watcher's URI compared without parameters and case of the scheme and host."""
    try:
        parsed = target_uri(uri)
    except ValueError:
        return uri.strip().lower()
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}:{parsed.user or ''}@{parsed.host.lower()}{port}"
