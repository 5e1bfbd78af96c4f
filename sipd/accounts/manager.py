"""The daemon's accounts: the persisted configurations and their live registrations.

Also answers "is this Request-URI one of ours, and whose": an incoming request names either
the contact we registered (its user part is the account id) or the account's own user part
(a direct request to `sip:alice@<our address>`).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio

from sipd.sip.auth import DigestAuthenticator
from sipd.sip.trio.locator import Locator
from sipd.sip.uri import SipUri, Uri

from .model import LOCAL_ID, AccountConfig
from .outbound import credentials_of
from .registrar_client import IN_FLIGHT, RegistrarClient
from .store import AccountStore

log = logging.getLogger(__name__)

UNREGISTER_WAIT = 5.0  # seconds an unregistration may take on remove and shutdown
# Accounts unregistering at once at shutdown: their de-REGISTERs go out without waiting for a
# place among the IN_FLIGHT new attempts (the stop is what bounds them), a few hundred keep the
# registrar busy while every answer is read well inside Timer A.
STOPPING_AT_ONCE = 300


class AccountManager:
    def __init__(self, bus: Any, store: AccountStore, stack: Any, locator: Locator,
                 nursery: trio.Nursery) -> None:
        self.bus = bus
        self.store = store
        self.stack = stack
        self.locator = locator
        self._nursery = nursery
        self._clients: dict[str, RegistrarClient] = {}
        self._authenticators: dict[str, tuple[tuple[str, str], DigestAuthenticator]] = {}
        self._listeners: list[Callable[[str, AccountConfig | None], None]] = []
        self._in_flight = trio.CapacityLimiter(IN_FLIGHT)  # REGISTERs out, all accounts
        self._closing = False  # stop_all began: only unregistrations go out

    # -- views ----------------------------------------------------------------------------

    def public(self, account: AccountConfig) -> dict[str, Any]:
        view = account.to_public()
        client = self._clients.get(account.id)
        view["registration"] = (client.last_data if client else
                                {"account": account.id, "state": "unregistered"})
        return view

    def list(self) -> list[dict[str, Any]]:
        return [self.public(account) for account in self.store.list()]

    def page(self, limit: int | None = None, after: str | None = None,
             ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Up to `limit` accounts after the id `after` (see AccountStore.page), and the
        `after` of the next page (None: no more)."""
        accounts, next_after = self.store.page(limit, after)
        return [self.public(account) for account in accounts], next_after

    def summary(self) -> dict[str, Any]:
        """For system.state: how many accounts there are, by registration state (a client
        that joins late pages through accounts.list for the accounts themselves)."""
        states: dict[str, int] = {"registered": 0, "registering": 0, "failed": 0,
                                  "unregistered": 0}
        for client in self._clients.values():
            state = client.last_data.get("state", "unregistered")
            states[state] = states.get(state, 0) + 1
        states["unregistered"] += len(self.store) - len(self._clients)
        return {"count": len(self.store), "registration": states}

    def get(self, account_id: str) -> AccountConfig:
        return self.store.get(account_id)

    def account_for(self, uri: Uri) -> AccountConfig | None:
        """The account a Request-URI addresses; the local account for a URI with no user
        part; None when no account goes by that user."""
        user = uri.user if isinstance(uri, SipUri) else None
        if not user:
            return self.store.get(LOCAL_ID)
        if user in self.store:
            return self.store.get(user)
        same_user = self.store.with_user(user)
        return same_user[0] if same_user else None

    def authenticator(self, account: AccountConfig) -> DigestAuthenticator:
        """The account's digest state for its out-of-dialog requests, kept across requests
        so they carry credentials up front; new when the credentials changed."""
        credentials = (account.auth_username, account.password)
        kept = self._authenticators.get(account.id)
        if kept is None or kept[0] != credentials:
            kept = (credentials, credentials_of(account))
            self._authenticators[account.id] = kept
        return kept[1]

    def is_local_uri(self, uri: Uri) -> bool:
        return self.account_for(uri) is not None

    # -- changes --------------------------------------------------------------------------

    def on_change(self, listener: Callable[[str, AccountConfig | None], None]) -> None:
        """`listener(account_id, config)` after an account was added or changed, with None
        after it was removed (what else holds state per account follows it: presence)."""
        self._listeners.append(listener)

    def _changed(self, account_id: str, account: AccountConfig | None) -> None:
        for listener in self._listeners:
            try:
                listener(account_id, account)
            except Exception:
                log.exception("account %s: a change listener failed", account_id)

    def start_all(self) -> None:
        for account in self.store.list():
            if account.registers:
                self._start(account)

    async def add(self, values: Mapping[str, Any]) -> dict[str, Any]:
        account = self.store.add(values)
        log.info("account %s added (%s)", account.id, account.aor)
        if account.registers:
            self._start(account)
        self._changed(account.id, account)
        return self.public(account)

    async def update(self, account_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        old, new = self.store.update(account_id, changes)
        if account_id in self._clients and new.changed_fields(old):
            await self._stop(account_id, UNREGISTER_WAIT)
        if new.registers and account_id not in self._clients:
            self._start(new)
        if new != old:  # any field: registration, presence, XCAP...
            self._changed(account_id, new)
        return self.public(new)

    async def remove(self, account_id: str) -> dict[str, Any]:
        account = self.store.get(account_id)
        self.store.remove(account_id)  # refuses the local account before anything stops
        await self._stop(account_id, UNREGISTER_WAIT)
        log.info("account %s removed", account_id)
        self._changed(account_id, None)
        return account.to_public()

    async def register(self, account_id: str) -> dict[str, Any]:
        account = self.store.get(account_id)
        if account.is_local:
            raise ValueError("the local account registers nowhere; add an account with a "
                             "registrar to register")
        if account_id not in self._clients:
            self._start(account)
        else:
            self._clients[account_id].register_now()  # again, now, even after a failure
        return self.public(account)

    async def unregister(self, account_id: str) -> dict[str, Any]:
        account = self.store.get(account_id)
        await self._stop(account_id, UNREGISTER_WAIT)
        return self.public(account)

    async def reload(self) -> builtins.list[str]:  # `list` is a method here
        """After SIGHUP re-read the settings file: start, stop or restart the registrations of
        the accounts that were added, removed or changed there. Returns the ids touched."""
        changes = self.store.reload()
        async with trio.open_nursery() as nursery:  # one bounded wait for all of them
            for account_id in (*changes.removed, *changes.changed):
                nursery.start_soon(self._stop, account_id, UNREGISTER_WAIT)
        for account_id in (*changes.added, *changes.changed):
            account = self.store.get(account_id)
            if account.registers:
                self._start(account)
            self._changed(account_id, account)
        for account_id in changes.removed:
            self._changed(account_id, None)
        return [*changes.added, *changes.removed, *changes.changed]

    def network_changed(self) -> None:
        for client in self._clients.values():
            client.network_changed()

    async def stop_all(self, wait: float = UNREGISTER_WAIT) -> None:
        """Unregister every account within `wait` seconds (and one for the tasks to end) in
        all: what has not finished then is cancelled, its binding expires on its own. One
        deadline for all, not one per account, so that 10,000 accounts still fit the service
        manager's stop timeout; and a few hundred at a time, so that the time goes into
        finishing unregistrations rather than into starting all of them (building 10,000
        REGISTERs first took the whole budget, and none finished)."""
        self._closing = True  # refreshes still waiting for their turn are not sent
        clients = list(self._clients.values())
        deadline = trio.current_time() + wait
        at_once = trio.CapacityLimiter(STOPPING_AT_ONCE)

        async def stop(client: RegistrarClient) -> None:
            try:
                await client.wait_stopped()
            finally:
                at_once.release_on_behalf_of(client)

        with trio.move_on_at(deadline + 1):
            async with trio.open_nursery() as nursery:
                for client in clients:
                    await at_once.acquire_on_behalf_of(client)
                    client.stop(max(0.0, deadline - trio.current_time()))
                    nursery.start_soon(stop, client)
        late = [client for client in clients if not client.stopped]
        for client in late:
            client.cancel()
        if late:
            log.warning("%d of %d registrations did not stop within %g s; cancelled (their "
                        "bindings expire on their own)", len(late), len(clients), wait + 1)
        for client in clients:
            if self._clients.get(client.account.id) is client:
                del self._clients[client.account.id]

    # -- inside ---------------------------------------------------------------------------

    def _start(self, account: AccountConfig) -> None:
        client = RegistrarClient(account, self.stack, self.locator, self._publish,
                                 contact_user=account.id, in_flight=self._in_flight,
                                 closing=lambda: self._closing)
        self._clients[account.id] = client
        self._nursery.start_soon(self._run, client)

    async def _run(self, client: RegistrarClient) -> None:
        """One account's registration; a bug in it fails that account, not the daemon."""
        try:
            await client.run()
        except Exception as exc:
            log.exception("%s: the registration stopped on an internal error", client.account.id)
            if self._clients.get(client.account.id) is client:
                self._publish({"account": client.account.id, "state": "failed",
                               "reason": f"internal error: {exc!r}; see the log "
                                         "(accounts.register tries again)"})
                del self._clients[client.account.id]

    async def _stop(self, account_id: str, wait: float) -> None:
        """Unregister and forget the registration; at most `wait` seconds (and a second for
        the task to end): a registration that takes longer is cancelled."""
        client = self._clients.get(account_id)
        if client is None:
            return
        client.stop(wait)
        with trio.move_on_after(wait + 1):
            await client.wait_stopped()
        if not client.stopped:
            log.warning("%s: the registration did not stop within %g s; cancelled",
                        account_id, wait + 1)
            client.cancel()
        if self._clients.get(account_id) is client:
            del self._clients[account_id]

    def _publish(self, data: dict[str, Any]) -> None:
        self.bus.publish("account.registration", data)
