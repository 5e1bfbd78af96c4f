"""Our own calls as dialog state (RFC 4235), for busy lamps watching our accounts: the
sessions' public states in, one dialog-info document per account out. Sans-I/O.

    calls = OwnDialogs()
    calls.started("c1", account="alice", direction="outgoing", remote="sip:bob@example.com")
    if calls.changed("c1", "established"):          # the account whose state changed, or None
        body = calls.document("alice", "sip:alice@example.com")

Each document is full state with a version one higher than the last one built (RFC 4235
§4.1: a watcher counts them), holding the account's live calls and those that ended since the
last document (state terminated, once); the dialog id is the session id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dialog_info import DialogEntry, DialogInfoDocument, Participant, build_dialog_info

__all__ = ["OwnDialogs", "DIALOG_STATE_OF"]

# session.state -> dialog state (RFC 4235 §3.7.1); states not named leave it as it is.
DIALOG_STATE_OF = {
    "calling": "trying",
    "ringing": "early",
    "early": "early",
    "established": "confirmed",
    "ended": "terminated",
    "failed": "terminated",
}


@dataclass
class _Call:
    account: str
    direction: str               # "initiator" or "recipient"
    remote: str
    state: str = "trying"
    code: int | None = None


@dataclass
class OwnDialogs:
    _calls: dict[str, _Call] = field(default_factory=dict)
    _versions: dict[str, int] = field(default_factory=dict)

    def started(self, session_id: str, *, account: str, direction: str, remote: str) -> str:
        """A new session of `account` ("outgoing" or "incoming"): the account."""
        self._calls[session_id] = _Call(
            account, "initiator" if direction == "outgoing" else "recipient", remote)
        return account

    def changed(self, session_id: str, state: str, code: int | None = None) -> str | None:
        """A session's new state: the account whose dialog state changed, if any."""
        call = self._calls.get(session_id)
        dialog_state = DIALOG_STATE_OF.get(state)
        if call is None or dialog_state is None or dialog_state == call.state:
            return None
        call.state, call.code = dialog_state, code
        return call.account

    def busy(self, account: str) -> bool:
        return any(c.account == account and c.state != "terminated"
                   for c in self._calls.values())

    def document(self, account: str, entity: str) -> bytes:
        """The account's full dialog state, next version; calls that ended are in it once."""
        version = self._versions.get(account, -1) + 1
        self._versions[account] = version
        entries = []
        for session_id, call in list(self._calls.items()):
            if call.account != account:
                continue
            entries.append(DialogEntry(
                id=session_id, state=call.state, direction=call.direction,
                code=call.code if call.state == "terminated" else None,
                local=Participant(identity=entity), remote=Participant(identity=call.remote)))
            if call.state == "terminated":
                del self._calls[session_id]
        return build_dialog_info(DialogInfoDocument(entity, version, True, tuple(entries)))
