"""The user agent's one dialog table: (Call-ID, local tag) → the object that owns the dialog.

Every dialog the daemon takes part in is registered here by its owner: INVITE sessions (both the
outside leg and the internal leg to a media worker) and, beside them, event subscriptions. The
user agent routes a request carrying a To tag, and a response no transaction claimed, through this
table; a request in a dialog nobody owns is answered 481 by the user agent (RFC 3261 §12.2.2),
whoever would have owned it. A subscriber registers its dialog before the SUBSCRIBE goes out, so a
NOTIFY that overtakes the 2xx finds its owner (RFC 6665 §4.1.2.4). Sans-I/O: no sockets, no trio.
"""

from __future__ import annotations

from typing import Any, Protocol

DialogKey = tuple[str, str]  # (Call-ID, our tag)


class DialogOwner(Protocol):
    """What the table routes to: requests in the dialog, and responses no transaction took
    (a retransmitted 2xx of an INVITE, a 2xx from a second fork)."""

    # Any: what the trio side hands over (an IncomingRequest, a Response), which a core
    # module does not import.
    def on_request(self, incoming: Any) -> None: ...

    def on_stray_response(self, response: Any) -> None: ...


class DialogTaken(ValueError):
    """Another owner holds this (Call-ID, local tag): a tag collision we must not paper over."""


class DialogTable:
    def __init__(self) -> None:
        self._owners: dict[DialogKey, DialogOwner] = {}

    def __len__(self) -> int:
        return len(self._owners)

    def __contains__(self, key: object) -> bool:
        return key in self._owners

    def register(self, call_id: str, local_tag: str, owner: DialogOwner) -> None:
        """Route the dialog (call_id, local_tag) to owner. The same owner may register again."""
        if not call_id or not local_tag:
            raise ValueError("a dialog needs a Call-ID and a local tag")
        key = (call_id, local_tag)
        held = self._owners.get(key)
        if held is not None and held is not owner:
            raise DialogTaken(f"dialog {call_id!r}/{local_tag!r} is owned by another object")
        self._owners[key] = owner

    def release(self, call_id: str, local_tag: str, owner: DialogOwner | None = None) -> None:
        """Forget the dialog; with owner given, only if that owner holds it."""
        key = (call_id, local_tag)
        if owner is None or self._owners.get(key) is owner:
            self._owners.pop(key, None)

    def release_owner(self, owner: DialogOwner) -> None:
        """Forget every dialog the owner holds (a session that ended, with its forks)."""
        for key in [k for k, held in self._owners.items() if held is owner]:
            del self._owners[key]

    def owner(self, call_id: str | None, local_tag: str | None) -> DialogOwner | None:
        if not call_id or not local_tag:
            return None
        return self._owners.get((call_id, local_tag))

    def request_owner(self, call_id: str | None, to_tag: str | None) -> DialogOwner | None:
        """The owner of a request's dialog: our tag is the request's To tag."""
        return self.owner(call_id, to_tag)

    def response_owner(self, call_id: str | None, from_tag: str | None) -> DialogOwner | None:
        """The owner of a response's dialog: our tag is the response's From tag."""
        return self.owner(call_id, from_tag)
