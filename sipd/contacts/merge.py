"""Turning XCAP on for an account that kept its contacts and policies in sipd's state: the
edits that put them on the server without losing what the server already has.

Rules (docs/decisions.md, "Contacts without XCAP"):
- a contact only in sipd's state is added as it is;
- a contact on both sides keeps the server's name unless sipd's has one, is in the groups of
  both, and has presence when either side wants it;
- a contact only on the server stays as it is;
- a presence policy of sipd's state (watcher or domain) replaces the server's for that watcher
  or domain; the server's other rules stay.
"""

from __future__ import annotations

from collections.abc import Iterable

from sipd.xcap.commonpolicy import same_identity
from sipd.xcap.contacts import Contact
from sipd.xcap.operations import ContactSet, WatcherPolicySet, _Operation
from sipd.xcap.presrules import WatcherPolicy


def upload_operations(local_contacts: Iterable[Contact], local_policies: Iterable[WatcherPolicy],
                      server_contacts: Iterable[Contact], *, resource_lists: tuple[str, str],
                      pres_rules: tuple[str, str]) -> list[_Operation]:
    """The operations, in order, that merge sipd's book into the server's documents
    (`resource_lists` and `pres_rules` are the (auid, document) they edit)."""
    server = list(server_contacts)
    ops: list[_Operation] = []
    for mine in local_contacts:
        theirs = next((c for c in server if same_identity(c.uri, mine.uri)), None)
        if theirs is None:
            ops.append(ContactSet(*resource_lists, uri=mine.uri, name=mine.name or "",
                                  groups=mine.groups, presence=mine.presence))
            continue
        groups = tuple(dict.fromkeys((*theirs.groups, *mine.groups)))
        ops.append(ContactSet(*resource_lists, uri=theirs.uri, name=mine.name or None,
                              groups=groups, presence=theirs.presence or mine.presence))
    for policy in local_policies:
        ops.append(WatcherPolicySet(*pres_rules, target=policy.target, action=policy.action,
                                    domain=policy.kind == "domain"))
    return ops
