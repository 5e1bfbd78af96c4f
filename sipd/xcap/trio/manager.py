"""The document manager of one account: contacts, groups, presence policies and the offline
status on the account's XCAP server, cached on disk, with edits that survive being offline.

    manager = XcapDocumentManager(client, xui="sip:alice@example.com", state_dir=path,
                                  presence_service_uri="sip:alice+presence@example.com")
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)       # start-up (cache, 304s, journal), then keeps
                                               # sending what waits while the server is away
        await manager.add_contact("sip:bob@example.com", name="Bob", groups=["Friends"],
                                  presence=True)
        manager.contacts()                     # [Contact(...)], as it will be on the server

Every edit is an operation (sipd/xcap/operations.py). It goes into the journal on disk first,
then to the server: a PUT of the whole document with If-Match (If-None-Match: * to create it).
412: the document changed elsewhere; it is read again and the operation applied to the fresh
copy, up to `max_replays` times. 409 and other refusals: the operation is dropped from the
journal and the caller (or, for an edit replayed later, the `xcap.refused` event) is told why.
Server unreachable (or 5xx through every retry): the edit stays in the journal and is sent,
in order, when the server is back; `xcap.journal` says how many wait.

Events go to `on_event(name, data)`: `xcap.changed` {auid, document, etag} when a document
read from the server differs from the copy we had (another device changed it), `xcap.journal`
{pending}, `xcap.refused` {operation, error}.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import trio

from sipd.xcap.caps import XcapCaps
from sipd.xcap.commonpolicy import ruleset_from_element, same_identity
from sipd.xcap.contacts import PRESENCE_LIST, Contact, contacts_from, groups_from
from sipd.xcap.documents import DocumentKey, DocumentSet, StoredDocument, key_of
from sipd.xcap.errors import (
    XcapConflictError,
    XcapDocumentError,
    XcapEditError,
    XcapError,
    XcapHTTPError,
    XcapNotFoundError,
    XcapPreconditionFailed,
    XcapUnavailableError,
)
from sipd.xcap.operations import (
    ContactRemove,
    ContactSet,
    GroupRemove,
    GroupRename,
    OfflineStatusSet,
    PresenceServiceSet,
    WatcherPolicySet,
    _Operation,
)
from sipd.xcap.pidfmanip import OfflineStatus, offline_status_from_element
from sipd.xcap.prescontent import StatusIcon, build_icon, parse_icon
from sipd.xcap.presrules import WatcherPolicy, policies
from sipd.xcap.resourcelists import ResourceLists, resource_lists_from_element
from sipd.xcap.selector import NodeSelector, Step
from sipd.xcap.trio.cache import DocumentCache
from sipd.xcap.trio.client import NOT_MODIFIED, XcapClient, XcapResponse
from sipd.xcap.trio.journal import Journal
from sipd.xcap.uri import XcapUri
from sipd.xcap.usages import (
    MIME_ATTRIBUTE,
    MIME_ELEMENT,
    OMA_PRES_RULES,
    PIDF_MANIPULATION,
    PRES_CONTENT,
    PRES_RULES,
    RESOURCE_LISTS,
    RLS_SERVICES,
    usage_for,
)
from sipd.xcap.xmldoc import expect_root

log = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, Any]], None]

#: refusals that are about us or the server, not the edit: keep the edit and try later
_RETRY_LATER = {401, 403, 407, 408, 429}


class XcapDocumentManager:
    def __init__(
        self,
        client: XcapClient,
        *,
        xui: str,
        state_dir: Path,
        presence_service_uri: str | None = None,
        pres_rules_auid: str | None = None,
        on_event: EventSink | None = None,
        max_replays: int = 5,
        retry_delays: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.client = client
        self.xui = xui
        self.presence_service_uri = presence_service_uri
        #: None: chosen from the server's xcap-caps at start (pres-rules unless it only has
        #: OMA's); the server's xcap-caps, when it serves them
        self.pres_rules_auid = pres_rules_auid or PRES_RULES.auid
        self._choose_pres_rules = pres_rules_auid is None
        self.caps: XcapCaps | None = None
        self.on_event = on_event or (lambda name, data: None)
        self.max_replays = max_replays
        self.retry_delays = retry_delays
        self.documents = DocumentSet()
        self.cache = DocumentCache(Path(state_dir) / "documents")
        self.journal = Journal(Path(state_dir) / "journal")
        self.online = False
        self._lock = trio.Lock()
        self._wake = trio.Event()
        self._outcomes: dict[int, XcapError | None] = {}
        self._waiting: set[int] = set()
        self._cached: dict[DocumentKey, StoredDocument | None] = {}
        self._lists_memo: tuple[StoredDocument | None, tuple[int, ...], ResourceLists,
                                tuple[Contact, ...]] | None = None
        for problem in self.journal.unreadable:
            self.on_event("xcap.refused", {"operation": None,
                                           "error": f"unreadable journal record, {problem}"})

    # -- keys ----------------------------------------------------------------------------------

    @property
    def resource_lists_key(self) -> DocumentKey:
        return DocumentKey(RESOURCE_LISTS.auid, RESOURCE_LISTS.default_document)

    @property
    def rls_services_key(self) -> DocumentKey:
        return DocumentKey(RLS_SERVICES.auid, RLS_SERVICES.default_document)

    @property
    def pres_rules_key(self) -> DocumentKey:
        return DocumentKey(self.pres_rules_auid, PRES_RULES.default_document)

    @property
    def pidf_key(self) -> DocumentKey:
        return DocumentKey(PIDF_MANIPULATION.auid, PIDF_MANIPULATION.default_document)

    def uri(self, key: DocumentKey) -> XcapUri:
        return XcapUri(self.client.root, key.auid, key.document, self.xui)

    @property
    def presence_list_uri(self) -> str:
        """The list of contacts with presence, as an rls-services `resource-list` points at it."""
        selector = NodeSelector.of("resource-lists",
                                   Step("list", attribute=("name", PRESENCE_LIST)))
        return str(self.uri(self.resource_lists_key).with_node(selector))

    def keys(self) -> list[DocumentKey]:
        keys = [self.resource_lists_key, self.pres_rules_key]
        if self.presence_service_uri:
            keys.append(self.rls_services_key)
        return keys

    # -- life ----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start up (`start`), then send journalled edits whenever the server is back."""
        await self.start()
        task_status.started()
        delay = self.retry_delays[0]
        while True:
            if self.journal.pending or not self.online:
                timeout = delay
            else:
                timeout = math.inf
            with trio.move_on_after(timeout):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                if not self.online:
                    await self.refresh()
                await self.flush()
            except XcapUnavailableError as exc:
                log.info("XCAP server for %s still unavailable: %s", self.xui, exc)
                delay = min(delay * 2, self.retry_delays[1])
            else:
                delay = self.retry_delays[0]

    async def start(self) -> None:
        """Load the cache, revalidate the documents (If-None-Match: a 304 costs no body) and
        send what the journal holds; unreachable server: work from the cache."""
        try:
            await self._discover()
        except XcapUnavailableError as exc:
            # the server is away: do not spend the retries again on every document
            log.warning("XCAP server for %s unavailable, working from the cache: %s",
                        self.xui, exc)
            unreachable = True
        else:
            unreachable = False
        for key in self.keys():
            found, document = self.cache.load(key)
            if found:
                self._cached[key] = document
                self.documents.store(key, document)
        self._publish_pending()
        if unreachable:
            return
        try:
            await self.refresh()
            await self.flush()
        except XcapUnavailableError as exc:
            log.warning("XCAP server for %s unavailable, working from the cache: %s",
                        self.xui, exc)
        except XcapDocumentError as exc:
            log.warning("XCAP server for %s: %s", self.xui, exc)
            self.on_event("xcap.refused", {"operation": None, "error": str(exc)})

    async def _discover(self) -> None:
        try:
            self.caps = await self.client.caps()
        except XcapDocumentError as exc:
            log.warning("ignoring the xcap-caps of %s: %s", self.client.root, exc)
            return
        if self.caps is None or not self._choose_pres_rules:
            return
        if (not self.caps.supports(PRES_RULES.auid)
                and self.caps.supports(OMA_PRES_RULES.auid)):
            self.pres_rules_auid = OMA_PRES_RULES.auid

    def wake(self) -> None:
        """Try the server again now (e.g. the network came back)."""
        self._wake.set()

    async def refresh(self, keys: Iterable[DocumentKey] | None = None) -> None:
        """Read the documents again (conditionally); XcapUnavailableError when unreachable."""
        refused: XcapDocumentError | None = None
        for key in list(keys) if keys is not None else self.keys():
            try:
                await self._fetch(key)
            except XcapDocumentError as exc:
                refused = refused or exc
            except XcapHTTPError as exc:
                if exc.status not in _RETRY_LATER:
                    raise
                # refused for who we are (credentials, rights), not for the document: the
                # server counts as away, edits wait in the journal, and we try again later
                self.online = False
                raise XcapUnavailableError(str(exc)) from exc
        if refused is not None:
            raise refused

    # -- views ---------------------------------------------------------------------------------

    def etag(self, key: DocumentKey) -> str | None:
        """The ETag of our copy of a document as the server last gave it (None: none yet)."""
        stored = self._cached.get(key)
        return stored.etag if stored is not None else None

    @property
    def pending(self) -> int:
        return len(self.journal)

    def contacts(self) -> list[Contact]:
        return list(self._contacts_view()[1])

    def contact(self, uri: str) -> Contact | None:
        probe = ContactRemove("x", "x", uri=uri).uri
        return next((c for c in self.contacts() if same_identity(c.uri, probe)), None)

    def groups(self) -> list[str]:
        return groups_from(self._contacts_view()[0])

    def watcher_policies(self) -> list[WatcherPolicy]:
        root = self._view(self.pres_rules_key)
        return policies(ruleset_from_element(root)) if root is not None else []

    def offline_status(self) -> OfflineStatus | None:
        root = self._view(self.pidf_key)
        return offline_status_from_element(root) if root is not None else None

    # -- edits ---------------------------------------------------------------------------------

    async def add_contact(self, uri: str, *, name: str | None = None,
                          groups: Sequence[str] = (), presence: bool = False) -> Contact:
        op = ContactSet(*_doc(self.resource_lists_key), uri=uri, name=name or "",
                        groups=tuple(groups), presence=presence)
        await self._contact_edit(op)
        contact = self.contact(op.uri)
        assert contact is not None
        return contact

    async def update_contact(self, uri: str, *, name: str | None = None,
                             groups: Sequence[str] | None = None,
                             presence: bool | None = None) -> Contact:
        """Change the fields given (None: unchanged); XcapEditError for an unknown contact."""
        if self.contact(uri) is None:
            raise XcapEditError(f"no contact {uri}")
        op = ContactSet(*_doc(self.resource_lists_key), uri=uri, name=name,
                        groups=tuple(groups) if groups is not None else None, presence=presence)
        await self._contact_edit(op)
        contact = self.contact(op.uri)
        assert contact is not None
        return contact

    async def remove_contact(self, uri: str) -> None:
        await self.submit(ContactRemove(*_doc(self.resource_lists_key), uri=uri))

    async def rename_group(self, old: str, new: str) -> None:
        await self.submit(GroupRename(*_doc(self.resource_lists_key), old=old, new=new))

    async def remove_group(self, group: str) -> None:
        await self.submit(GroupRemove(*_doc(self.resource_lists_key), group=group))

    async def set_policy(self, target: str, action: str | None, *, domain: bool = False) -> None:
        """allow / block / polite-block / confirm a watcher URI or a domain; None forgets."""
        await self.submit(WatcherPolicySet(*_doc(self.pres_rules_key), target=target,
                                           action=action, domain=domain))

    async def set_offline_status(self, basic: str | None, note: str | None = None) -> None:
        await self.submit(OfflineStatusSet(*_doc(self.pidf_key), entity=self.xui, basic=basic,
                                           note=note))

    async def submit(self, op: _Operation) -> bool:
        """Journal `op` and send it: True when it is on the server, False when it waits in
        the journal. XcapConflictError / XcapHTTPError / XcapDocumentError when the server
        refused it or its document cannot be edited (it is then dropped from the journal)."""
        entry = await self.journal.append_durably(op)
        self._waiting.add(entry.seq)
        self._publish_pending()
        try:
            await self.flush()
        except XcapUnavailableError as exc:
            log.info("XCAP edit %s waits in the journal: %s", op.describe(), exc)
            self._wake.set()
        finally:
            self._waiting.discard(entry.seq)
        if entry.seq in self._outcomes:
            error = self._outcomes.pop(entry.seq)
            if error is not None:
                raise error
            return True
        return False

    async def flush(self) -> None:
        """Send the journal's edits in order; XcapUnavailableError stops at the first that
        cannot be sent (it stays, with everything after it)."""
        async with self._lock:
            for entry in self.journal.pending:
                try:
                    await self._apply(entry.op)
                except XcapUnavailableError:
                    self.online = False
                    raise
                except (XcapHTTPError, XcapDocumentError, XcapEditError) as exc:
                    if isinstance(exc, XcapHTTPError) and exc.status in _RETRY_LATER:
                        self.online = False
                        raise XcapUnavailableError(str(exc)) from exc
                    log.warning("XCAP server refused %s: %s", entry.op.describe(), exc)
                    if entry.seq in self._waiting:
                        self._outcomes[entry.seq] = exc
                    self.on_event("xcap.refused", {"operation": entry.op.to_json(),
                                                   "error": str(exc)})
                else:
                    if entry.seq in self._waiting:
                        self._outcomes[entry.seq] = None
                await self.journal.done_durably(entry.seq)
                self._publish_pending()
            self.online = True

    # -- raw access ----------------------------------------------------------------------------

    def raw_uri(self, auid: str, document: str | None = None, node: str | None = None,
                namespaces: dict[str, str] | None = None) -> XcapUri:
        """The URI of one of the account's documents (or an element or attribute of it)."""
        uri = XcapUri(self.client.root, auid, document or "index", self.xui)
        return uri.with_node(node, namespaces) if node else uri

    async def get_raw(self, uri: XcapUri) -> XcapResponse:
        """A document, element or attribute as the server has it (xcap.get)."""
        result = await self.client.get(uri)
        assert isinstance(result, XcapResponse)
        return result

    async def put_raw(self, uri: XcapUri, content: bytes, *, content_type: str | None = None,
                      etag: str | None = None) -> str | None:
        """Write a document, element or attribute (xcap.put), conditional on `etag` or, when
        none is given, on the ETag the document has now (If-None-Match: * if it has none):
        a power user's write never silently overwrites another device's."""
        if content_type is None:
            usage = usage_for(uri.auid)
            if uri.node is None:
                content_type = usage.mime_type if usage else "application/xml"
            elif uri.node.attribute is not None:
                content_type = MIME_ATTRIBUTE
            else:
                content_type = MIME_ELEMENT
        async with self._lock:
            if_match, if_none_match = await self._current_condition(uri, etag)
            try:
                return await self.client.put(uri, content, content_type, if_match=if_match,
                                             if_none_match=if_none_match)
            finally:
                await self._reload(uri)

    async def delete_raw(self, uri: XcapUri, *, etag: str | None = None) -> str | None:
        async with self._lock:
            if_match, _ = await self._current_condition(uri, etag)
            try:
                return await self.client.delete(uri, if_match=if_match)
            finally:
                await self._reload(uri)

    async def _current_condition(self, uri: XcapUri,
                                 etag: str | None) -> tuple[str | None, str | None]:
        if etag is not None:
            return etag, None
        document = XcapUri(uri.root, uri.auid, uri.document, uri.xui)
        try:
            current = await self.client.get(document)
        except XcapNotFoundError:
            return None, "*"
        assert isinstance(current, XcapResponse)
        return current.etag, None

    async def _reload(self, uri: XcapUri) -> None:
        """A raw write changed a document behind the manager's back: read it again."""
        key = DocumentKey(uri.auid, uri.document)
        if uri.xui != self.xui or key not in self.keys():
            return
        self.documents.forget(key)
        self._cached.pop(key, None)
        self.cache.forget(key)
        try:
            await self._fetch(key)
        except XcapError as exc:
            log.info("cannot read %s again after a raw write: %s", key, exc)

    # -- the status icon (OMA pres-content) -------------------------------------------------------

    @property
    def status_icon_uri(self) -> XcapUri:
        """Where the icon lives: the URL a published PIDF's icon may point at."""
        return XcapUri(self.client.root, PRES_CONTENT.auid, PRES_CONTENT.default_document,
                       self.xui)

    async def set_status_icon(self, icon: StatusIcon) -> str | None:
        """Put the icon on the server (conditional on what is there): its new ETag. Not
        journalled: an image is not an edit to replay later, the caller hears at once."""
        return await self.put_raw(self.status_icon_uri, build_icon(icon))

    async def status_icon(self) -> StatusIcon | None:
        """The icon on the server; None when there is none."""
        try:
            got = await self.client.get(self.status_icon_uri)
        except XcapNotFoundError:
            return None
        assert isinstance(got, XcapResponse)
        return parse_icon(got.content)

    # -- internals -----------------------------------------------------------------------------

    async def _contact_edit(self, op: ContactSet) -> None:
        await self.submit(op)
        if op.presence and self.presence_service_uri:
            await self.submit(PresenceServiceSet(
                *_doc(self.rls_services_key), service_uri=self.presence_service_uri,
                list_uri=self.presence_list_uri))

    async def _apply(self, op: _Operation) -> None:
        key = key_of(op)
        for _attempt in range(self.max_replays + 1):
            if not self.documents.known(key):
                await self._fetch(key)
            write = self.documents.plan(op)
            if write is None:
                return
            try:
                etag = await self.client.put(self.uri(key), write.body, write.content_type,
                                             if_match=write.if_match,
                                             if_none_match=write.if_none_match)
            except XcapPreconditionFailed:
                log.info("%s changed on the server; reading it again to replay %s",
                         key, op.describe())
                self.documents.forget(key)
                continue
            if etag is None:
                self.documents.forget(key)  # no ETag to base the next write on: read it again
                self.cache.forget(key)
                return
            self.documents.committed(write, etag)
            stored = self.documents.get(key)
            self._cached[key] = stored
            self.cache.save(key, stored)
            return
        raise XcapConflictError(str(self.uri(key)), None,
                                f"the document kept changing during {self.max_replays} replays")

    async def _fetch(self, key: DocumentKey) -> None:
        cached = self._cached.get(key)
        try:
            result = await self.client.get(self.uri(key), etag=cached.etag if cached else None)
        except XcapNotFoundError:
            document: StoredDocument | None = None
        else:
            if result is NOT_MODIFIED:
                assert cached is not None
                self.documents.store(key, cached)
                return
            assert isinstance(result, XcapResponse)
            document = StoredDocument(result.content, result.etag,
                                      result.content_type or "application/xml")
            _check(key, document, self.client.root)  # refuse it now, not when it is used
        changed = key in self._cached and (
            (cached.etag if cached else None) != (document.etag if document else None))
        self.documents.store(key, document)
        self._cached[key] = document
        self.cache.save(key, document)
        if changed:
            self.on_event("xcap.changed", {"auid": key.auid, "document": key.document,
                                           "etag": document.etag if document else None})

    def _view(self, key: DocumentKey) -> Any:
        return self.documents.view(key, (entry.op for entry in self.journal.pending))

    def _contacts_view(self) -> tuple[ResourceLists, tuple[Contact, ...]]:
        """The resource lists and contacts as they will be, read again only when the stored
        document or the journal's edits of it changed: a list of hundreds of contacts costs
        milliseconds to parse, and every edit looks at it several times."""
        key = self.resource_lists_key
        document = self.documents.get(key)
        edits = tuple(entry.seq for entry in self.journal.pending if key_of(entry.op) == key)
        memo = self._lists_memo
        if memo is not None and memo[0] is document and memo[1] == edits:
            return memo[2], memo[3]
        lists = self._resource_lists()
        contacts = tuple(contacts_from(lists))
        self._lists_memo = (document, edits, lists, contacts)
        return lists, contacts

    def _resource_lists(self) -> ResourceLists:
        root = self._view(self.resource_lists_key)
        if root is None:
            return ResourceLists()
        try:
            return resource_lists_from_element(root)
        except XcapDocumentError:
            return ResourceLists()

    def _publish_pending(self) -> None:
        self.on_event("xcap.journal", {"pending": len(self.journal)})


def _check(key: DocumentKey, document: StoredDocument, root: str) -> None:
    what = f"{key} document from {root}"
    element = document.root(what)
    usage = usage_for(key.auid)
    if usage is not None:
        expect_root(element, usage.namespace, usage.root, what)


def _doc(key: DocumentKey) -> tuple[str, str]:
    return key.auid, key.document
