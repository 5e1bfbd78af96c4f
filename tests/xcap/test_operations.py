"""Contacts, groups and presence policies as operations on documents."""

from __future__ import annotations

import pytest

from sipd.xcap.commonpolicy import Ruleset, ruleset_from_element
from sipd.xcap.contacts import Contact, contacts_from, groups_from
from sipd.xcap.documents import DocumentKey, DocumentSet, StoredDocument
from sipd.xcap.errors import XcapEditError
from sipd.xcap.operations import (
    ContactRemove,
    ContactSet,
    GroupRemove,
    GroupRename,
    OfflineStatusSet,
    PresenceServiceSet,
    WatcherPolicySet,
    operation_from_json,
)
from sipd.xcap.pidfmanip import offline_status_from_element
from sipd.xcap.presrules import effective_action, policies
from sipd.xcap.resourcelists import resource_lists_from_element
from sipd.xcap.rlsservices import rls_services_from_element
from sipd.xcap.xmldoc import parse_document, serialize

RL = ("resource-lists", "index")
PR = ("pres-rules", "index")


def contacts(root) -> list[Contact]:
    return contacts_from(resource_lists_from_element(root))


def apply(root, *ops):
    for op in ops:
        root = op.apply(root)
    return root


def test_contacts_and_groups() -> None:
    root = apply(None,
                 ContactSet(*RL, uri="sip:bob@x", name="Bob", groups=("Friends", "Work"),
                            presence=True),
                 ContactSet(*RL, uri="sip:carol@x"))
    assert contacts(root) == [Contact("sip:bob@x", "Bob", ("Friends", "Work"), True),
                              Contact("sip:carol@x", None, (), False)]
    assert groups_from(resource_lists_from_element(root)) == ["Friends", "Work"]
    # partial update: only what is given changes; scheme and host compare case-insensitively
    root = apply(root, ContactSet(*RL, uri="SIP:bob@X", groups=("Work",)))
    assert contacts(root)[0] == Contact("sip:bob@x", "Bob", ("Work",), True)
    root = apply(root, ContactSet(*RL, uri="sip:bob@x", name="", presence=False))
    assert contacts(root)[0] == Contact("sip:bob@x", None, ("Work",), False)
    root = apply(root, ContactSet(*RL, uri="sip:carol@x", groups=("Work",)))
    root = apply(root, GroupRename(*RL, old="Work", new="Job"))
    assert {c.groups for c in contacts(root)} == {("Job",)}
    root = apply(root, GroupRemove(*RL, group="Job"))
    assert {c.groups for c in contacts(root)} == {()}
    root = apply(root, ContactRemove(*RL, uri="sip:bob@x"))
    assert [c.uri for c in contacts(root)] == ["sip:carol@x"]


def test_edits_are_idempotent_and_keep_foreign_content() -> None:
    foreign = (b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" '
               b'xmlns:x="urn:example:ext"><list name="l1"><display-name>Pals</display-name>'
               b'<entry uri="sip:bob@x"><display-name>Bobby</display-name><x:note>hi</x:note>'
               b'</entry><entry-ref ref="resource-lists/users/sip:a@x/index/~~/r"/>'
               b'<list name="inner"><entry uri="sip:dan@x"/></list></list>'
               b'<x:settings a="1"/></resource-lists>')
    root = parse_document(foreign)
    assert contacts(root) == [Contact("sip:bob@x", "Bobby", ("Pals",), False),
                              Contact("sip:dan@x", None, ("Pals",), False)]
    op = ContactSet(*RL, uri="sip:eve@x", groups=("Pals",))
    once = op.apply(root)
    assert serialize(op.apply(once)) == serialize(once)
    text = serialize(once)
    assert b"<x:note>hi</x:note>" in text and b'<x:settings a="1"/>' in text
    assert b"entry-ref" in text
    assert b"sip:eve@x" not in serialize(root)  # apply() left its argument alone


@pytest.mark.parametrize("kwargs", [
    {"uri": "bob"}, {"uri": "sip:bob@x y"}, {"uri": "sip:b@x", "groups": ("oma_buddylist",)},
    {"uri": "sip:b@x", "groups": ("",)}, {"uri": "sip:b@x", "name": "a\x01b"},
    {"uri": "sip:b@x", "groups": "Friends"}, {"uri": "sip:b@x", "presence": "yes"},
])
def test_bad_contacts(kwargs) -> None:
    with pytest.raises(XcapEditError):
        ContactSet(*RL, **kwargs)


def test_operations_as_json() -> None:
    ops = [ContactSet(*RL, uri="sip:b@x", name="B", groups=("G",), presence=True),
           ContactSet(*RL, uri="sip:b@x"), ContactRemove(*RL, uri="sip:b@x"),
           GroupRename(*RL, old="a", new="b"), GroupRemove(*RL, group="a"),
           PresenceServiceSet("rls-services", "index", service_uri="sip:s@x",
                              list_uri="http://x/rl"),
           WatcherPolicySet(*PR, target="Example.COM", action="block", domain=True),
           WatcherPolicySet(*PR, target="sip:w@x", action=None),
           OfflineStatusSet("pidf-manipulation", "index", entity="sip:a@x", basic="closed",
                            note="n")]
    for op in ops:
        assert operation_from_json(op.to_json()) == op
    with pytest.raises(XcapEditError):
        operation_from_json({"op": "format.disk"})
    with pytest.raises(XcapEditError):
        operation_from_json({"op": "contact.set", "auid": "resource-lists", "document": "index",
                             "uri": "not a uri"})


def first_match_ignoring_excepts(ruleset: Ruleset, watcher: str) -> str | None:
    for rule in ruleset.rules:
        identity = rule.conditions.identity
        if identity is None:
            continue
        if watcher in identity.ones or any(many.domain in (None, watcher.split("@")[1])
                                           for many in identity.manys):
            return rule.actions.get("sub-handling")
    return None


def test_watcher_and_domain_policies() -> None:
    root = apply(None,
                 WatcherPolicySet(*PR, target="example.com", action="allow", domain=True),
                 WatcherPolicySet(*PR, target="sip:eve@example.com", action="block"),
                 WatcherPolicySet(*PR, target="sip:bob@other.net", action="allow"),
                 WatcherPolicySet(*PR, target="other.net", action="polite-block", domain=True))
    ruleset = ruleset_from_element(root)
    assert effective_action(ruleset, "sip:any@example.com") == "allow"
    assert effective_action(ruleset, "sip:eve@example.com") == "block"
    assert effective_action(ruleset, "sip:bob@other.net") == "allow"
    assert effective_action(ruleset, "sip:x@other.net") == "polite-block"
    # first-match servers agree: exactly one rule matches each watcher
    for watcher in ("sip:eve@example.com", "sip:bob@other.net", "sip:x@other.net"):
        assert sum(r.conditions.matches(watcher) for r in ruleset.rules) == 1
    # ... even those that ignore <except> (Kamailio's presence_xml): watchers' rules come first
    assert [first_match_ignoring_excepts(ruleset, w) for w in (
        "sip:any@example.com", "sip:eve@example.com", "sip:bob@other.net", "sip:x@other.net")
    ] == ["allow", "block", "allow", "polite-block"]
    assert {(p.target, p.kind, p.action) for p in policies(ruleset)} == {
        ("example.com", "domain", "allow"), ("sip:eve@example.com", "watcher", "block"),
        ("sip:bob@other.net", "watcher", "allow"), ("other.net", "domain", "polite-block")}
    # moving a watcher, then forgetting it
    root = apply(root, WatcherPolicySet(*PR, target="sip:eve@example.com", action="confirm"))
    assert effective_action(ruleset_from_element(root), "sip:eve@example.com") == "confirm"
    root = apply(root, WatcherPolicySet(*PR, target="sip:eve@example.com", action=None))
    assert effective_action(ruleset_from_element(root), "sip:eve@example.com") == "allow"
    root = apply(root, WatcherPolicySet(*PR, target="example.com", action=None, domain=True))
    ruleset = ruleset_from_element(root)
    assert effective_action(ruleset, "sip:any@example.com") is None
    assert ruleset.rule("sipd_allow") is not None  # still holds bob


def test_policies_keep_other_clients_rules() -> None:
    foreign = parse_document(
        b'<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" '
        b'xmlns:pr="urn:ietf:params:xml:ns:pres-rules"><rule id="theirs"><conditions><identity>'
        b'<one id="sip:w@x"/><one id="sip:v@x"/></identity></conditions><actions>'
        b'<pr:sub-handling>allow</pr:sub-handling></actions></rule>'
        b'<rule id="only-w"><conditions><identity><one id="sip:w@x"/></identity></conditions>'
        b'<actions><pr:sub-handling>confirm</pr:sub-handling></actions></rule></ruleset>')
    root = WatcherPolicySet(*PR, target="sip:w@x", action="block").apply(foreign)
    ruleset = ruleset_from_element(root)
    assert ruleset.rule("theirs").conditions.identity.ones == ("sip:v@x",)
    assert ruleset.rule("only-w") is None  # its identity would have been empty
    assert effective_action(ruleset, "sip:w@x") == "block"
    with pytest.raises(XcapEditError):
        WatcherPolicySet(*PR, target="sip:w@x", action="deny")


def test_presence_service_and_offline_status() -> None:
    op = PresenceServiceSet("rls-services", "index", service_uri="sip:me-buddies@x",
                            list_uri="http://x/rl/~~/list")
    root = op.apply(None)
    assert serialize(op.apply(root)) == serialize(root)
    service = rls_services_from_element(root).service("sip:me-buddies@x")
    assert service.resource_list == "http://x/rl/~~/list" and service.packages == ("presence",)
    moved = PresenceServiceSet("rls-services", "index", service_uri="sip:me-buddies@x",
                               list_uri="http://y/rl").apply(root)
    assert len(rls_services_from_element(moved).services) == 1
    status = OfflineStatusSet("pidf-manipulation", "index", entity="sip:a@x", basic="open",
                              note="back soon").apply(None)
    assert offline_status_from_element(status).note == "back soon"


def test_document_set_plans_conditional_writes() -> None:
    documents = DocumentSet()
    key = DocumentKey(*RL)
    op = ContactSet(*RL, uri="sip:b@x")
    with pytest.raises(KeyError):
        documents.plan(op)
    documents.store(key, None)
    create = documents.plan(op)
    assert create.if_none_match == "*" and create.if_match is None
    assert create.content_type == "application/resource-lists+xml"
    documents.committed(create, "e1")
    assert documents.plan(op) is None  # already there: nothing to send
    update = documents.plan(ContactSet(*RL, uri="sip:c@x"))
    assert update.if_match == "e1" and update.if_none_match is None
    # the view shows pending edits on top of the stored copy
    pending = [ContactSet(*RL, uri="sip:d@x"), ContactSet(*PR, uri="sip:e@x")]
    assert [c.uri for c in contacts(documents.view(key, pending))] == ["sip:b@x", "sip:d@x"]
    documents.store(key, StoredDocument(b"<broken", "e2"))
    assert documents.view(key, pending) is not None  # the edits still show
