"""Our calls as dialog state (sipd.presence.own_dialogs): session states in, dialog-info
documents out, read back with the same reader a busy lamp uses."""

from __future__ import annotations

from sipd.presence.dialog_info import parse_dialog_info
from sipd.presence.own_dialogs import OwnDialogs
from sipd.presence.payload import DIALOG_INFO_TYPE
from sipd.presence.reader import DialogInfoReader

ALICE = "sip:alice@example.test"


def test_a_call_goes_trying_early_confirmed_terminated_and_then_is_gone():
    calls = OwnDialogs()
    reader = DialogInfoReader()
    assert calls.started("c1", account="alice", direction="outgoing",
                         remote="sip:bob@example.test") == "alice"
    seen = []
    for state in ("calling", "ringing", "established", "ended"):
        changed = calls.changed("c1", state)
        if state == "calling":
            assert changed is None  # a new call is trying already
        else:
            assert changed == "alice"
        update = reader.read(DIALOG_INFO_TYPE, calls.document("alice", ALICE))
        seen += [(d.id, d.state, d.direction) for d in update.changed]
    assert seen == [("c1", "trying", "initiator"), ("c1", "early", "initiator"),
                    ("c1", "confirmed", "initiator"), ("c1", "terminated", "initiator")]
    document = parse_dialog_info(calls.document("alice", ALICE))
    assert document.full and document.dialogs == () and document.version == 4
    assert not calls.busy("alice")


def test_states_that_change_nothing_and_other_accounts():
    calls = OwnDialogs()
    calls.started("in", account="bob", direction="incoming", remote="sip:carol@example.test")
    assert calls.changed("in", "ending") is None     # not a dialog state of its own
    assert calls.changed("nobody", "established") is None
    assert calls.changed("in", "established") == "bob"
    assert calls.busy("bob") and not calls.busy("alice")
    [entry] = parse_dialog_info(calls.document("bob", "sip:bob@example.test")).dialogs
    assert (entry.state, entry.direction, entry.remote.identity) == \
        ("confirmed", "recipient", "sip:carol@example.test")
    assert parse_dialog_info(calls.document("alice", ALICE)).dialogs == ()
