"""The merge of contacts kept without XCAP into the server's documents (sipd/contacts/merge.py),
applied to real documents with the same operations the manager sends."""

from __future__ import annotations

from sipd.contacts.merge import upload_operations
from sipd.xcap.commonpolicy import ruleset_from_element
from sipd.xcap.contacts import Contact, contacts_from
from sipd.xcap.operations import ContactSet, WatcherPolicySet
from sipd.xcap.presrules import WatcherPolicy, effective_action
from sipd.xcap.resourcelists import resource_lists_from_element

RL = ("resource-lists", "index")
PR = ("pres-rules", "index")


def test_local_contacts_and_policies_merge_into_the_servers() -> None:
    server_root = None
    for op in (ContactSet(*RL, uri="sip:bob@example.test", name="Bobby", groups=("Old",)),
               ContactSet(*RL, uri="sip:dave@example.test", name="Dave", presence=True)):
        server_root = op.apply(server_root)
    rules = WatcherPolicySet(*PR, target="sip:eve@example.test", action="allow").apply(None)
    server = contacts_from(resource_lists_from_element(server_root))

    local = [Contact("sip:bob@EXAMPLE.test", None, ("Friends",), True),
             Contact("sip:carol@example.test", "Carol", (), False)]
    policies = [WatcherPolicy("sip:eve@example.test", "watcher", "block", "sipd_block"),
                WatcherPolicy("spam.example", "domain", "polite-block", "sipd_polite_block")]
    ops = upload_operations(local, policies, server, resource_lists=RL, pres_rules=PR)
    for op in ops:
        if op.auid == "resource-lists":
            server_root = op.apply(server_root)
        else:
            rules = op.apply(rules)

    merged = {c.uri: c for c in contacts_from(resource_lists_from_element(server_root))}
    assert set(merged) == {"sip:bob@example.test", "sip:carol@example.test",
                           "sip:dave@example.test"}
    bob = merged["sip:bob@example.test"]
    assert bob.name == "Bobby" and set(bob.groups) == {"Old", "Friends"} and bob.presence
    assert merged["sip:carol@example.test"].name == "Carol"
    assert merged["sip:dave@example.test"].presence  # only on the server: untouched
    ruleset = ruleset_from_element(rules)
    assert effective_action(ruleset, "sip:eve@example.test") == "block"
    assert effective_action(ruleset, "sip:x@spam.example") == "polite-block"
    # applying the same merge again changes nothing (a crash before the files were moved)
    again = upload_operations(local, policies,
                              contacts_from(resource_lists_from_element(server_root)),
                              resource_lists=RL, pres_rules=PR)
    root_again = server_root
    for op in again:
        if op.auid == "resource-lists":
            root_again = op.apply(root_again)
    assert contacts_from(resource_lists_from_element(root_again)) == \
        contacts_from(resource_lists_from_element(server_root))
