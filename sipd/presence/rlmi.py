"""Resource list notifications (RFC 4662): a multipart/related body whose root is an RLMI
document (application/rlmi+xml) naming the list's resources, each with its subscription
instances, and whose other parts carry the instances' state (PIDF for presence), found by
Content-ID.

    lists = ResourceListState()
    update = lists.apply(parse_multipart(body, content_type))
    for resource in update.resources:      # each: uri, name, state, reason, parts
        ...

Versions work as for watcher information: a full-state notification replaces what is known
(resources no longer listed are reported terminated), a partial one updates the resources
it names, an old or repeated version is ignored, and a partial one after a gap (or before
any full state) sets `resync`: refresh the subscription to get full state. A resource that is
itself a list (its part is another multipart/related with an RLMI root) is flattened into
the update, with its own version kept separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from .multipart import BodyPart, Multipart, parse_multipart
from .payload import (
    RLMI_NS,
    RLMI_TYPE,
    XML_NS,
    PayloadError,
    children,
    parse_document,
    qname,
    text_of,
)

__all__ = ["Instance", "Resource", "ListDocument", "parse_rlmi", "ResourceUpdate",
           "ListUpdate", "ResourceListState", "INSTANCE_STATES"]

INSTANCE_STATES = frozenset({"active", "pending", "terminated"})
MAX_RESOURCES = 5000


@dataclass(frozen=True)
class Instance:
    id: str
    state: str                 # active, pending, terminated
    reason: str | None = None  # why it is terminated (RFC 6665 reasons)
    cid: str | None = None     # the part with its state, when this notification has one


@dataclass(frozen=True)
class Resource:
    uri: str
    name: str | None
    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class ListDocument:
    uri: str
    version: int
    full: bool
    name: str | None
    resources: tuple[Resource, ...]


def parse_rlmi(data: bytes) -> ListDocument:
    root = parse_document(data, RLMI_NS, "list", "resource list (RLMI)")
    uri = (root.get("uri") or "").strip()
    version_text = (root.get("version") or "").strip()
    if not version_text.isascii() or not version_text.isdigit() or len(version_text) > 12:
        raise PayloadError(f"resource list (RLMI): version {version_text[:20]!r} is not a "
                           f"number")
    full_text = (root.get("fullState") or "").strip().lower()
    if full_text not in ("true", "false", "1", "0"):
        raise PayloadError("resource list (RLMI): fullState must be true or false")
    resources: list[Resource] = []
    for element in children(root, RLMI_NS, "resource"):
        if len(resources) >= MAX_RESOURCES:
            raise PayloadError(f"resource list (RLMI): more than {MAX_RESOURCES} resources")
        resource_uri = (element.get("uri") or "").strip()
        if not resource_uri:
            raise PayloadError("resource list (RLMI): a resource without uri")
        instances = []
        for item in children(element, RLMI_NS, "instance"):
            state = (item.get("state") or "").strip().lower()
            if state not in INSTANCE_STATES:
                raise PayloadError(f"resource list (RLMI): instance state {state[:20]!r} is "
                                   f"not active, pending or terminated")
            instances.append(Instance(
                id=(item.get("id") or "").strip(), state=state,
                reason=(item.get("reason") or "").strip().lower() or None,
                cid=(item.get("cid") or "").strip() or None))
        resources.append(Resource(resource_uri, _name(element), tuple(instances)))
    return ListDocument(uri, int(version_text), full_text in ("true", "1"), _name(root),
                        tuple(resources))


def _name(element: etree._Element) -> str | None:
    names = list(children(element, RLMI_NS, "name"))
    for name in names:
        if name.get(qname(XML_NS, "lang")) is None:
            return text_of(name, 256)
    return text_of(names[0], 256) if names else None


@dataclass(frozen=True)
class ResourceUpdate:
    """A resource of the list as one notification left it."""
    uri: str
    name: str | None
    state: str                   # active if an instance is, else pending if one is, else
    reason: str | None           # terminated (with the reason of the first terminated one)
    parts: tuple[BodyPart, ...]  # the state its instances carry in this notification
    list_uri: str = ""           # the (sub)list it belongs to


@dataclass(frozen=True)
class ListUpdate:
    resources: tuple[ResourceUpdate, ...] = ()
    resync: bool = False


@dataclass
class ResourceListState:
    """What one list subscription knows. Start a new one for a new subscription."""
    version: int | None = None
    resources: dict[str, ResourceUpdate] = field(default_factory=dict)
    sublists: dict[str, ResourceListState] = field(default_factory=dict)

    def apply(self, multipart: Multipart) -> ListUpdate:
        """The resources a notification changed; PayloadError for a body that is no RLMI
        notification (the root part is not application/rlmi+xml, or is unreadable)."""
        root = multipart.root
        if root.mime != RLMI_TYPE:
            raise PayloadError(f"resource list notification: the root part is {root.mime}, "
                               f"not {RLMI_TYPE}")
        document = parse_rlmi(root.body)
        if not document.full:
            if self.version is None or document.version > self.version + 1:
                return ListUpdate(resync=True)
            if document.version <= self.version:
                return ListUpdate()
        elif self.version is not None and document.version <= self.version:
            return ListUpdate()
        self.version = document.version
        updates: list[ResourceUpdate] = []
        resync = False
        listed = set()
        for resource in document.resources:
            listed.add(resource.uri)
            parts = []
            for instance in resource.instances:
                part = multipart.part_by_cid(instance.cid) if instance.cid else None
                if part is not None:
                    parts.append(part)
            nested = [p for p in parts if p.mime == "multipart/related"]
            if nested:
                sublist = self.sublists.setdefault(resource.uri, ResourceListState())
                for part in nested:
                    content_type = part.content_type
                    assert content_type is not None
                    inner = sublist.apply(parse_multipart(part.body, content_type,
                                                          depth=multipart.depth + 1))
                    updates += inner.resources
                    resync = resync or inner.resync
                parts = [p for p in parts if p.mime != "multipart/related"]
            update = ResourceUpdate(resource.uri, resource.name, *_state(resource),
                                    tuple(parts), document.uri)
            self.resources[resource.uri] = update
            updates.append(update)
        if document.full:
            for uri in [u for u in self.resources if u not in listed]:
                gone = self.resources.pop(uri)
                updates.append(ResourceUpdate(uri, gone.name, "terminated", None, (),
                                              document.uri))
                self.sublists.pop(uri, None)
        for uri, update in list(self.resources.items()):
            if update.state == "terminated":
                del self.resources[uri]
        return ListUpdate(tuple(updates), resync)


def _state(resource: Resource) -> tuple[str, str | None]:
    states = [instance.state for instance in resource.instances]
    if "active" in states:
        return "active", None
    if "pending" in states:
        return "pending", None
    for instance in resource.instances:
        return "terminated", instance.reason
    return "pending", None  # no instance yet: the server is still subscribing
