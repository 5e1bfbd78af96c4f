"""The daemon's contacts: one book per account, on the account's XCAP server (an
XcapDocumentManager, started and stopped with the account) or in sipd's state (a LocalBook).

    async with open_contacts(service, agent.accounts) as contacts:
        book = await contacts.book("alice-example-com")   # waits for the start-up of its manager
        await contacts.add("alice-example-com", "sip:bob@example.com", name="Bob")

Lifecycle: `sync()` compares what runs with the accounts and the xcap.* settings: an account
with an XCAP root (its own `xcap.root`, else the global one) gets a document manager, restarted
when its XCAP settings change and stopped when it goes; any other account gets its local book.
The AccountManager calls `sync` after every change (RPC and SIGHUP), the settings appliers
after a change of a global xcap.* key. A manager's first start-up may be slow (an unreachable
server is retried): the daemon does not wait for it, calls for that account do.

When an account gets XCAP and its local book holds contacts or policies, they are uploaded
once the server has been read (sipd/contacts/merge.py): the edits go into the manager's journal
(on disk) first, then the local documents are moved aside (`*.xml.uploaded`). Turning XCAP off
does not bring the server's contacts back into the local book.

Events: `contact.added|updated|removed` {account, contact} whenever a book's contacts change
(an RPC edit, or another device's seen when the documents are read again), and the managers'
`xcap.changed`, `xcap.journal`, `xcap.refused` with the account added.

SIGHUP (`reload`) reads every manager's documents again.

Changes made by other devices: with a presence service (the daemon's), an account with XCAP
and a SIP server subscribes to xcap-diff for its documents (sipd/contacts/diffsync.py) once its
manager has started; a NOTIFY naming a document whose ETag differs from ours has it read again
(`documents_changed`), and the events above follow. A NOTIFY that cannot be read is
`xcap.refused` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from sipd.accounts.model import AccountNotFound
from sipd.accounts.xcap import XcapAccountSettings
from sipd.contacts.diffsync import DocumentSync
from sipd.contacts.local import LocalBook
from sipd.contacts.merge import upload_operations
from sipd.xcap.commonpolicy import normalize_identity, ruleset_from_element
from sipd.xcap.contacts import Contact
from sipd.xcap.documents import DocumentKey
from sipd.xcap.errors import XcapError
from sipd.xcap.presrules import WatcherPolicy, effective_action
from sipd.xcap.trio.client import XcapClient
from sipd.xcap.trio.manager import XcapDocumentManager

log = logging.getLogger(__name__)

#: how long a call waits for the first start-up of an account's XCAP manager
READY_WAIT = 60.0
#: seconds the xcap-diff unsubscriptions may take at shutdown
STOP_WAIT = 3.0


class Book(Protocol):
    """What the contacts RPC needs of a book, local or XCAP."""

    @property
    def pending(self) -> int: ...

    @property
    def online(self) -> bool: ...

    def contacts(self) -> list[Contact]: ...

    def contact(self, uri: str) -> Contact | None: ...

    def groups(self) -> list[str]: ...

    def watcher_policies(self) -> list[WatcherPolicy]: ...

    async def add_contact(self, uri: str, *, name: str | None = ...,
                          groups: Any = ..., presence: bool = ...) -> Contact: ...

    async def update_contact(self, uri: str, *, name: str | None = ..., groups: Any = ...,
                             presence: bool | None = ...) -> Contact: ...

    async def remove_contact(self, uri: str) -> None: ...

    async def set_policy(self, target: str, action: str | None, *,
                         domain: bool = ...) -> None: ...


class NoXcapError(LookupError):
    """The account has no XCAP server (raw xcap.* calls need one)."""


class NotReadyError(RuntimeError):
    """The account's XCAP manager did not finish its first start-up in time."""


@dataclass
class _Running:
    """One account's XCAP manager task."""

    config: XcapAccountSettings
    #: what the client is made with beside the account's settings: the CA list (or True),
    #: xcap.timeout, xcap.retries, xcap.local_port
    options: tuple[bool | str, int, int, int]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    ready: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    manager: XcapDocumentManager | None = None
    #: where the manager's companions run (its xcap-diff subscription)
    nursery: trio.Nursery | None = None
    #: why the task ended on an internal error (calls then fail at once, saying so)
    failure: str | None = None


class ContactsService:
    def __init__(self, bus: Any, settings: Any, accounts: Any, state_dir: Path,
                 nursery: trio.Nursery, presence: Any = None) -> None:
        self.bus = bus
        #: sipd.presence.trio.service.PresenceService (the xcap-diff subscriptions), or None
        self.presence = presence
        self.settings = settings
        self.accounts = accounts
        self.directory = Path(state_dir) / "contacts"
        self._nursery = nursery
        self._running: dict[str, _Running] = {}
        self._local: dict[str, LocalBook] = {}
        self._seen: dict[str, dict[str, Contact]] = {}
        #: the `done` of each account's newest manager task (a restart waits for the old one)
        self._last_done: dict[str, trio.Event] = {}
        #: the xcap-diff subscriptions, by account
        self._syncs: dict[str, DocumentSync] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def sync(self) -> None:
        """Start, restart or stop managers so that they match the accounts and settings."""
        known = set()
        for account in self.accounts.store.list():
            known.add(account.id)
            self.account_changed(account.id, account)
        for account_id in [i for i in {*self._running, *self._local, *self._seen}
                           if i not in known]:
            self.account_changed(account_id, None)

    def account_changed(self, account_id: str, account: Any) -> None:
        """What sync() does for one account (added or changed; None: removed), at a cost that
        does not grow with the number of accounts."""
        config = (XcapAccountSettings.of(account, self.settings.get("xcap.root"))
                  if account is not None else None)
        options = self._options()
        running = self._running.get(account_id)
        if running is not None and (config != running.config or options != running.options
                                    or running.failure is not None):  # a failed one restarts
            log.info("%s: stopping its XCAP document manager (%s)", account_id,
                     "settings changed" if config else "no XCAP any more")
            running.scope.cancel()
            del self._running[account_id]
            self._syncs.pop(account_id, None)
            self._seen.pop(account_id, None)  # another store: no contact.* for the switch
        if account is None or config is not None:
            self._local.pop(account_id, None)
        if account is None:
            self._seen.pop(account_id, None)
        if config is not None:
            if account_id not in self._running:
                self._start(account_id, config, options)
            else:
                self._refollow(account_id, self._running[account_id])

    def _options(self) -> tuple[bool | str, int, int, int]:
        get = self.settings.get
        return (get("tls.ca_list") or True, get("xcap.timeout"), get("xcap.retries"),
                get("xcap.local_port"))

    def _start(self, account_id: str, config: XcapAccountSettings,
               options: tuple[bool | str, int, int, int]) -> None:
        previous = self._last_done.get(account_id)
        running = _Running(config, options)
        self._running[account_id] = running
        self._last_done[account_id] = running.done
        self._nursery.start_soon(self._run, account_id, running, previous)

    async def _run(self, account_id: str, running: _Running,
                   previous: trio.Event | None) -> None:
        try:
            if previous is not None:
                await previous.wait()  # one manager per journal at a time
            with running.scope:
                await self._serve(account_id, running)
        except (OSError, ssl.SSLError) as exc:  # e.g. tls.ca_list names no readable file
            log.error("%s: cannot use the XCAP server %s: %s", account_id,
                      running.config.root, exc)
            running.failure = f"cannot set up the connection to {running.config.root}: {exc}"
            self.bus.publish("xcap.refused", {"account": account_id, "operation": None,
                                              "error": running.failure})
        except Exception as exc:  # one account's bug must not stop the daemon
            log.exception("%s: the XCAP document manager stopped on an internal error",
                          account_id)
            running.failure = f"internal error: {exc!r}; see the log"
            self.bus.publish("xcap.refused", {"account": account_id, "operation": None,
                                              "error": running.failure})
        finally:
            running.ready.set()
            running.done.set()
            if self._last_done.get(account_id) is running.done:
                del self._last_done[account_id]

    async def _serve(self, account_id: str, running: _Running) -> None:
        config = running.config
        ca, timeout, retries, local_port = running.options
        state = self.directory / account_id / _state_name(config)
        async with XcapClient(config.root, username=config.username,
                              password=config.password, verify=ca if config.verify else False,
                              basic_in_clear=config.basic_in_clear, timeout=timeout,
                              retries=retries, local_port=local_port) as client:
            manager = XcapDocumentManager(
                client, xui=config.xui, state_dir=state,
                presence_service_uri=config.presence_service_uri,
                on_event=lambda name, data: self._on_xcap_event(account_id, name, data))
            async with trio.open_nursery() as nursery:
                await nursery.start(manager.run)
                running.manager = manager
                self._seen[account_id] = _by_key(manager.contacts())
                running.ready.set()
                log.info("%s: contacts on XCAP server %s (%s)", account_id, config.root,
                         "online" if manager.online else "offline, working from the cache")
                running.nursery = nursery
                self._follow_changes(account_id, manager, nursery)
                await self._upload_local(account_id, manager)

    def _refollow(self, account_id: str, running: _Running) -> None:
        """The account changed but not its XCAP settings (its registrar, its proxy...): its
        xcap-diff subscription starts again with the new account."""
        if running.manager is None or running.nursery is None:
            return  # not started yet: it will follow with the account as it is then
        old = self._syncs.get(account_id)
        account = self.accounts.get(account_id)
        if old is not None and old.account == account:
            return
        if old is not None:
            running.nursery.start_soon(old.replace)
            del self._syncs[account_id]
        self._follow_changes(account_id, running.manager, running.nursery)

    def _follow_changes(self, account_id: str, manager: XcapDocumentManager,
                        nursery: trio.Nursery) -> None:
        """The xcap-diff subscription of the account, when it has a SIP server to ask."""
        if self.presence is None:
            return
        account = self.accounts.get(account_id)
        if not (account.registers or account.outbound_proxy_uri is not None):
            return

        async def reload(keys: list[DocumentKey]) -> None:
            await self.documents_changed(account_id, [(k.auid, k.document) for k in keys])

        def refused(error: str) -> None:
            self._on_xcap_event(account_id, "xcap.refused", {"operation": None,
                                                              "error": error})

        sync = DocumentSync(account, self.presence, manager, reload=reload, refused=refused)
        self._syncs[account_id] = sync
        nursery.start_soon(sync.run)

    async def stop_following(self) -> None:
        """Ends the xcap-diff subscriptions (at shutdown, before the SIP stack stops)."""
        syncs, self._syncs = list(self._syncs.values()), {}
        async with trio.open_nursery() as nursery:
            for sync in syncs:
                nursery.start_soon(sync.unsubscribe)

    async def _upload_local(self, account_id: str, manager: XcapDocumentManager) -> None:
        local = LocalBook(self.directory / account_id / "local", xui=manager.xui)
        if local.is_empty():
            return
        # merge with what the server has, not with nothing
        while not manager.online:  # noqa: ASYNC110 (no online event yet)
            await trio.sleep(1.0)
        ops = upload_operations(
            local.contacts(), local.watcher_policies(), manager.contacts(),
            resource_lists=(manager.resource_lists_key.auid,
                            manager.resource_lists_key.document),
            pres_rules=(manager.pres_rules_key.auid, manager.pres_rules_key.document))
        log.info("%s: uploading %d contacts and policies kept without XCAP", account_id,
                 len(ops))
        for op in ops:
            try:
                await manager.submit(op)  # journalled first: safe to move the files aside
            except XcapError as exc:
                log.warning("%s: the XCAP server refused %s: %s", account_id, op.describe(),
                            exc)
        local.archive()
        self.publish_contact_changes(account_id)

    def reload(self) -> None:
        """Read every running manager's documents again (SIGHUP): what another device changed
        shows up without a restart (a 304 costs nothing when nothing changed)."""
        for account_id, running in self._running.items():
            if running.manager is not None:
                self._nursery.start_soon(self._reload_one, account_id)

    async def _reload_one(self, account_id: str) -> None:
        try:
            await self.documents_changed(account_id)
        except XcapError as exc:
            log.info("%s: could not read the XCAP documents again: %s", account_id, exc)

    async def aclose(self) -> None:
        for running in self._running.values():
            running.scope.cancel()
        for running in list(self._running.values()):
            await running.done.wait()
        self._running.clear()

    # -- books ---------------------------------------------------------------------------------

    def uses_xcap(self, account_id: str) -> bool:
        self.accounts.get(account_id)  # AccountNotFound for an unknown account
        return account_id in self._running

    async def book(self, account_id: str) -> Book:
        """The account's book; AccountNotFound, NotReadyError."""
        account = self.accounts.get(account_id)
        running = self._running.get(account_id)
        if running is None:
            local = self._local.get(account_id)
            if local is None:
                local = LocalBook(self.directory / account_id / "local", xui=account.aor)
                self._local[account_id] = local
                self._seen.setdefault(account_id, _by_key(local.contacts()))
            return local
        return await self.manager(account_id)

    async def manager(self, account_id: str) -> XcapDocumentManager:
        """The account's XCAP manager; NoXcapError when it has none."""
        self.accounts.get(account_id)
        running = self._running.get(account_id)
        if running is None:
            raise NoXcapError(f"account {account_id!r} has no XCAP server; set its xcap.root "
                              "(accounts.update) or the global xcap.root")
        with trio.move_on_after(READY_WAIT):
            await running.ready.wait()
        if running.failure is not None:
            raise NotReadyError(f"the XCAP document manager of account {account_id!r} "
                                f"stopped: {running.failure} (a change of the account or "
                                "of an xcap setting starts it again)")
        if running.manager is None:
            raise NotReadyError(f"the XCAP server {running.config.root} of account "
                                f"{account_id!r} is still being contacted; try again")
        return running.manager

    def account_ids(self) -> list[str]:
        return [account.id for account in self.accounts.store.list()]

    def summary(self, account_id: str, book: Book) -> dict[str, Any]:
        return {"account": account_id,
                "store": "xcap" if account_id in self._running else "local",
                "online": book.online, "pending": book.pending}

    # -- edits ---------------------------------------------------------------------------------

    async def add(self, account_id: str, uri: str, *, name: str | None = None,
                  groups: Iterable[str] = (), presence: bool = False) -> Contact:
        book = await self.book(account_id)
        try:
            return await book.add_contact(uri, name=name, groups=list(groups),
                                          presence=presence)
        finally:
            self.publish_contact_changes(account_id)

    async def update(self, account_id: str, uri: str, *, name: str | None = None,
                     groups: Iterable[str] | None = None,
                     presence: bool | None = None) -> Contact:
        book = await self.book(account_id)
        try:
            return await book.update_contact(
                uri, name=name, groups=list(groups) if groups is not None else None,
                presence=presence)
        finally:
            self.publish_contact_changes(account_id)

    async def remove(self, account_id: str, uri: str) -> bool:
        """False when there was no such contact."""
        book = await self.book(account_id)
        if book.contact(uri) is None:
            return False
        try:
            await book.remove_contact(uri)
        finally:
            self.publish_contact_changes(account_id)
        return True

    async def authorize(self, account_id: str, target: str, action: str | None, *,
                        domain: bool = False) -> None:
        book = await self.book(account_id)
        await book.set_policy(target, action, domain=domain)

    async def decision(self, account_id: str, watcher: str) -> str | None:
        """sipd's own answer to "may `watcher` see this account's presence" (allow, block,
        polite-block, confirm, or None when no rule says), from either book. With XCAP the
        presence server decides; this is for subscriptions sipd answers itself."""
        book = await self.book(account_id)
        if isinstance(book, LocalBook):
            return book.decision(watcher)
        assert isinstance(book, XcapDocumentManager)
        root = book.documents.view(book.pres_rules_key,
                                   (entry.op for entry in book.journal.pending))
        return effective_action(ruleset_from_element(root), watcher) if root is not None else None

    async def documents_changed(self, account_id: str,
                                documents: Iterable[tuple[str, str]] | None = None) -> None:
        """Another device changed these documents (xcap-diff): read them again."""
        manager = await self.manager(account_id)
        keys = [DocumentKey(auid, document) for auid, document in documents] \
            if documents is not None else None
        await manager.refresh(keys)
        self.publish_contact_changes(account_id)

    # -- events --------------------------------------------------------------------------------

    def _on_xcap_event(self, account_id: str, name: str, data: dict[str, Any]) -> None:
        self.bus.publish(name, {"account": account_id, **data})
        if name == "xcap.changed" or (name == "xcap.journal" and data.get("pending") == 0):
            self.publish_contact_changes(account_id)

    def publish_contact_changes(self, account_id: str) -> None:
        """contact.added / updated / removed for what changed since the last look."""
        running = self._running.get(account_id)
        book: Any = (running.manager if running is not None else self._local.get(account_id))
        if book is None:
            return
        now = _by_key(book.contacts())
        before = self._seen.get(account_id, {})
        self._seen[account_id] = now
        for key, contact in now.items():
            old = before.get(key)
            if old is None:
                self.bus.publish("contact.added", {"account": account_id,
                                                   "contact": contact.to_dict()})
            elif old != contact:
                self.bus.publish("contact.updated", {"account": account_id,
                                                     "contact": contact.to_dict()})
        for key, contact in before.items():
            if key not in now:
                self.bus.publish("contact.removed", {"account": account_id,
                                                     "contact": contact.to_dict()})


def _by_key(contacts: Iterable[Contact]) -> dict[str, Contact]:
    return {normalize_identity(contact.uri): contact for contact in contacts}


def _state_name(config: XcapAccountSettings) -> str:
    """The cache and journal of one server and user: another root starts from nothing."""
    digest = hashlib.sha256(f"{config.root}\n{config.xui}".encode()).hexdigest()[:16]
    return f"xcap-{digest}"


@asynccontextmanager
async def open_contacts(service: Any, accounts: Any,
                        presence: Any = None) -> AsyncIterator[ContactsService]:
    async with trio.open_nursery() as nursery:
        contacts = ContactsService(service.bus, service.settings, accounts,
                                   service.paths.state_dir, nursery, presence)
        contacts.sync()
        try:
            yield contacts
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(STOP_WAIT):
                await contacts.stop_following()
            nursery.cancel_scope.cancel()


__all__ = ["AccountNotFound", "Book", "ContactsService", "NoXcapError", "NotReadyError",
           "open_contacts"]
