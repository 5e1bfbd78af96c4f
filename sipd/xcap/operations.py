"""Edits of XCAP documents as operations: data that can be applied to a document, journalled
as JSON, and applied again to a fresh copy when the server says the copy was stale (412).

    op = ContactSet(uri="sip:bob@example.com", name="Bob", groups=("Friends",), presence=True)
    new_root = op.apply(root_or_none)       # a new tree; the argument is left untouched
    operation_from_json(op.to_json()) == op

Each operation edits one document (`auid`, `document`) and is idempotent: applied to a document
that already holds the edit it changes nothing, so a write that reached the server before the
connection broke is not made twice.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from lxml import etree

from sipd.xcap import contacts, presrules
from sipd.xcap.commonpolicy import new_root as new_ruleset
from sipd.xcap.errors import XcapEditError
from sipd.xcap.pidfmanip import OfflineStatus, offline_status_element
from sipd.xcap.rlsservices import (
    TAG_PACKAGE,
    TAG_PACKAGES,
    TAG_RESOURCE_LIST,
    TAG_SERVICE,
)
from sipd.xcap.rlsservices import (
    new_root as new_rls_root,
)
from sipd.xcap.usages import PIDF_MANIPULATION, PRES_RULES, RESOURCE_LISTS, RLS_SERVICES


@dataclass(frozen=True)
class _Operation:
    kind: ClassVar[str] = ""
    auid: str
    document: str

    def apply(self, root: etree._Element | None) -> etree._Element:
        """The document after the edit (a copy; `root` is not changed)."""
        working = copy.deepcopy(root) if root is not None else None
        return self._edit(working)

    def _edit(self, root: etree._Element | None) -> etree._Element:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["op"] = self.kind
        return data

    def describe(self) -> str:
        return self.kind


@dataclass(frozen=True)
class ContactSet(_Operation):
    """Add the contact, or change it. None leaves a field as it is (for a new contact: no
    name, no group, no presence); name "" removes the name, groups () all groups."""

    kind: ClassVar[str] = "contact.set"
    uri: str = ""
    name: str | None = None
    groups: tuple[str, ...] | None = None
    presence: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", contacts.check_uri(self.uri))
        if self.name is not None:
            object.__setattr__(self, "name", contacts.check_text(self.name, "contact name"))
        if self.groups is not None:
            if isinstance(self.groups, str) or not all(isinstance(g, str) for g in self.groups):
                raise XcapEditError("groups must be a list of group names")
            unique = tuple(dict.fromkeys(contacts.check_group(g) for g in self.groups))
            object.__setattr__(self, "groups", unique)
        if self.presence is not None and not isinstance(self.presence, bool):
            raise XcapEditError("presence must be true or false")

    def _edit(self, root: etree._Element | None) -> etree._Element:
        root = contacts.ensure_root(root)
        contacts.set_contact(
            root, self.uri,
            name=contacts.KEEP if self.name is None else (self.name or None),
            groups=contacts.KEEP if self.groups is None else self.groups,
            presence=contacts.KEEP if self.presence is None else self.presence,
        )
        return root

    def describe(self) -> str:
        return f"contact {self.uri}"


@dataclass(frozen=True)
class ContactRemove(_Operation):
    kind: ClassVar[str] = "contact.remove"
    uri: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", contacts.check_uri(self.uri))

    def _edit(self, root: etree._Element | None) -> etree._Element:
        root = contacts.ensure_root(root)
        contacts.remove_contact(root, self.uri)
        return root

    def describe(self) -> str:
        return f"removal of contact {self.uri}"


@dataclass(frozen=True)
class GroupRename(_Operation):
    kind: ClassVar[str] = "group.rename"
    old: str = ""
    new: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "old", contacts.check_group(self.old))
        object.__setattr__(self, "new", contacts.check_group(self.new))

    def _edit(self, root: etree._Element | None) -> etree._Element:
        root = contacts.ensure_root(root)
        contacts.rename_group(root, self.old, self.new)
        return root


@dataclass(frozen=True)
class GroupRemove(_Operation):
    kind: ClassVar[str] = "group.remove"
    group: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", contacts.check_group(self.group))

    def _edit(self, root: etree._Element | None) -> etree._Element:
        root = contacts.ensure_root(root)
        contacts.remove_group(root, self.group)
        return root


@dataclass(frozen=True)
class PresenceServiceSet(_Operation):
    """The rls-services service `service_uri` serves presence of the list at `list_uri`."""

    kind: ClassVar[str] = "rls.service"
    service_uri: str = ""
    list_uri: str = ""

    def __post_init__(self) -> None:
        contacts.check_uri(self.service_uri)
        contacts.check_uri(self.list_uri)

    def _edit(self, root: etree._Element | None) -> etree._Element:
        root = new_rls_root() if root is None else root
        service = next((s for s in root.iterchildren(TAG_SERVICE)
                        if s.get("uri") == self.service_uri), None)
        if service is not None:
            reference = service.find(TAG_RESOURCE_LIST)
            packages = service.find(TAG_PACKAGES)
            if (reference is not None and (reference.text or "").strip() == self.list_uri
                    and packages is not None
                    and [(p.text or "").strip() for p in packages] == ["presence"]):
                return root
            root.remove(service)
        service = etree.SubElement(root, TAG_SERVICE, uri=self.service_uri)
        etree.SubElement(service, TAG_RESOURCE_LIST).text = self.list_uri
        etree.SubElement(etree.SubElement(service, TAG_PACKAGES), TAG_PACKAGE).text = "presence"
        return root


@dataclass(frozen=True)
class WatcherPolicySet(_Operation):
    """allow / block / polite-block / confirm for a watcher URI or (domain=True) a domain;
    action None clears sipd's decision."""

    kind: ClassVar[str] = "policy.set"
    target: str = ""
    action: str | None = None
    domain: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.domain, bool):
            raise XcapEditError("domain must be true or false")
        if self.domain:
            target = contacts.check_text(self.target, "domain").lower()
            if not target or "@" in target or ":" in target:
                raise XcapEditError(f"{self.target!r} is not a domain")
            object.__setattr__(self, "target", target)
        else:
            object.__setattr__(self, "target", contacts.check_uri(self.target))
        if self.action is not None:
            presrules.check_action(self.action)

    def _edit(self, root: etree._Element | None) -> etree._Element:
        root = new_ruleset() if root is None else root
        if self.domain:
            if self.action is None:
                presrules.clear_domain_policy(root, self.target)
            else:
                presrules.set_domain_policy(root, self.target, self.action)
        elif self.action is None:
            presrules.clear_watcher_policy(root, self.target)
        else:
            presrules.set_watcher_policy(root, self.target, self.action)
        return root

    def describe(self) -> str:
        return f"presence policy for {self.target}"


@dataclass(frozen=True)
class OfflineStatusSet(_Operation):
    kind: ClassVar[str] = "pidf.offline"
    entity: str = ""
    basic: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        contacts.check_uri(self.entity)
        if self.basic not in (None, "open", "closed"):
            raise XcapEditError("offline status must be open, closed or none")
        if self.note is not None:
            object.__setattr__(self, "note", contacts.check_text(self.note, "note"))

    def _edit(self, root: etree._Element | None) -> etree._Element:
        return offline_status_element(self.entity, OfflineStatus(self.basic, self.note))


Operation = (
    ContactSet
    | ContactRemove
    | GroupRename
    | GroupRemove
    | PresenceServiceSet
    | WatcherPolicySet
    | OfflineStatusSet
)
KINDS: dict[str, type[_Operation]] = {
    cls.kind: cls for cls in (ContactSet, ContactRemove, GroupRename, GroupRemove,
                              PresenceServiceSet, WatcherPolicySet, OfflineStatusSet)
}
DEFAULT_AUIDS = {
    ContactSet: RESOURCE_LISTS.auid, ContactRemove: RESOURCE_LISTS.auid,
    GroupRename: RESOURCE_LISTS.auid, GroupRemove: RESOURCE_LISTS.auid,
    PresenceServiceSet: RLS_SERVICES.auid, WatcherPolicySet: PRES_RULES.auid,
    OfflineStatusSet: PIDF_MANIPULATION.auid,
}


def operation_from_json(data: Any) -> _Operation:
    """The operation `data` (from to_json) describes; XcapEditError when it is not one."""
    if not isinstance(data, dict):
        raise XcapEditError("an operation must be a JSON object")
    cls = KINDS.get(data.get("op", ""))
    if cls is None:
        raise XcapEditError(f"unknown operation {data.get('op')!r}")
    names = {f.name for f in fields(cls)}
    values = {key: value for key, value in data.items() if key in names}
    if isinstance(values.get("groups"), list):
        values["groups"] = tuple(values["groups"])
    if not isinstance(values.get("auid"), str) or not isinstance(values.get("document"), str):
        raise XcapEditError("an operation names its auid and document")
    try:
        return cls(**values)
    except TypeError as exc:
        raise XcapEditError(f"malformed {cls.kind} operation: {exc}") from None


__all__ = ["ContactRemove", "ContactSet", "GroupRemove", "GroupRename", "KINDS", "Operation",
           "OfflineStatusSet", "PresenceServiceSet", "WatcherPolicySet", "field",
           "operation_from_json"]
