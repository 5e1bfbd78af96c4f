"""An account's contacts and presence policies kept by sipd itself, for an account without an
XCAP server: the same documents (resource-lists, pres-rules) and the same edit operations as on
a server, in files of the state directory.

    book = LocalBook(state_dir / "contacts" / account_id / "local", xui="sip:alice@example.com")
    await book.add_contact("sip:bob@example.com", name="Bob", groups=["Friends"])
    book.contacts()            # [Contact(...)]
    book.watcher_policies()    # [WatcherPolicy(...)]: who may see our presence

Each edit is written (temp file, fsync, rename) before the call returns. Keeping the server's
formats makes turning XCAP on an upload of what is here (sipd/contacts/merge.py), and lets the
presence side decide with the same rules (`decision`) whichever book an account has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from sipd.settings.atomic import write_private_file
from sipd.xcap.commonpolicy import ruleset_from_element, same_identity
from sipd.xcap.contacts import Contact, contacts_from, groups_from
from sipd.xcap.errors import XcapDocumentError, XcapEditError
from sipd.xcap.operations import (
    ContactRemove,
    ContactSet,
    GroupRemove,
    GroupRename,
    WatcherPolicySet,
    _Operation,
)
from sipd.xcap.presrules import WatcherPolicy, effective_action, policies
from sipd.xcap.resourcelists import ResourceLists, resource_lists_from_element
from sipd.xcap.usages import PRES_RULES, RESOURCE_LISTS
from sipd.xcap.xmldoc import parse_document, serialize

log = logging.getLogger(__name__)

#: the documents a local book keeps, by file name
DOCUMENTS = (RESOURCE_LISTS.auid, PRES_RULES.auid)


class LocalBook:
    def __init__(self, directory: Path, *, xui: str) -> None:
        self.directory = Path(directory)
        self.xui = xui
        self._roots: dict[str, etree._Element | None] = {
            auid: self._load(auid) for auid in DOCUMENTS}

    # -- views ---------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return 0

    @property
    def online(self) -> bool:
        return True

    def is_empty(self) -> bool:
        return not self.contacts() and not self.watcher_policies()

    def contacts(self) -> list[Contact]:
        return contacts_from(self._resource_lists())

    def contact(self, uri: str) -> Contact | None:
        probe = ContactRemove("x", "x", uri=uri).uri
        return next((c for c in self.contacts() if same_identity(c.uri, probe)), None)

    def groups(self) -> list[str]:
        return groups_from(self._resource_lists())

    def watcher_policies(self) -> list[WatcherPolicy]:
        root = self._roots[PRES_RULES.auid]
        return policies(ruleset_from_element(root)) if root is not None else []

    def decision(self, watcher: str) -> str | None:
        """The sub-handling (allow, block, polite-block, confirm) for `watcher`, or None."""
        root = self._roots[PRES_RULES.auid]
        return effective_action(ruleset_from_element(root), watcher) if root is not None else None

    # -- edits (the XcapDocumentManager's signatures) ------------------------------------------

    async def add_contact(self, uri: str, *, name: str | None = None,
                          groups: Sequence[str] = (), presence: bool = False) -> Contact:
        op = ContactSet(RESOURCE_LISTS.auid, "index", uri=uri, name=name or "",
                        groups=tuple(groups), presence=presence)
        self.apply(op)
        contact = self.contact(op.uri)
        assert contact is not None
        return contact

    async def update_contact(self, uri: str, *, name: str | None = None,
                             groups: Sequence[str] | None = None,
                             presence: bool | None = None) -> Contact:
        if self.contact(uri) is None:
            raise XcapEditError(f"no contact {uri}")
        op = ContactSet(RESOURCE_LISTS.auid, "index", uri=uri, name=name,
                        groups=tuple(groups) if groups is not None else None, presence=presence)
        self.apply(op)
        contact = self.contact(op.uri)
        assert contact is not None
        return contact

    async def remove_contact(self, uri: str) -> None:
        self.apply(ContactRemove(RESOURCE_LISTS.auid, "index", uri=uri))

    async def rename_group(self, old: str, new: str) -> None:
        self.apply(GroupRename(RESOURCE_LISTS.auid, "index", old=old, new=new))

    async def remove_group(self, group: str) -> None:
        self.apply(GroupRemove(RESOURCE_LISTS.auid, "index", group=group))

    async def set_policy(self, target: str, action: str | None, *, domain: bool = False) -> None:
        self.apply(WatcherPolicySet(PRES_RULES.auid, "index", target=target, action=action,
                                    domain=domain))

    def apply(self, op: _Operation) -> None:
        """Make the edit and write the document before returning (PersistError if it
        cannot be written: nothing changed)."""
        auid = op.auid if op.auid in DOCUMENTS else _document_for(op)
        root = op.apply(self._roots[auid])
        self.directory.mkdir(parents=True, exist_ok=True)
        write_private_file(self._path(auid), serialize(root).decode("utf-8"))
        self._roots[auid] = root

    def archive(self, suffix: str = "uploaded") -> None:
        """Move the documents aside (after they were uploaded to a server): the book is empty
        afterwards, the old files stay for a user who wants them back."""
        for auid in DOCUMENTS:
            path = self._path(auid)
            if path.exists():
                path.replace(path.with_name(f"{path.name}.{suffix}"))
            self._roots[auid] = None

    # -- internals -----------------------------------------------------------------------------

    def _path(self, auid: str) -> Path:
        return self.directory / f"{auid}.xml"

    def _load(self, auid: str) -> etree._Element | None:
        try:
            data = self._path(auid).read_bytes()
        except FileNotFoundError:
            return None
        try:
            return parse_document(data, what=f"local {auid} document {self._path(auid)}")
        except XcapDocumentError as exc:
            broken = self._path(auid)
            aside = broken.with_name(f"{broken.name}.unreadable")
            broken.replace(aside)
            log.error("%s; moved aside to %s, starting from an empty one", exc, aside)
            return None

    def _resource_lists(self) -> ResourceLists:
        root = self._roots[RESOURCE_LISTS.auid]
        if root is None:
            return ResourceLists()
        return resource_lists_from_element(root)


def _document_for(op: _Operation) -> str:
    if isinstance(op, WatcherPolicySet):
        return PRES_RULES.auid
    return RESOURCE_LISTS.auid
