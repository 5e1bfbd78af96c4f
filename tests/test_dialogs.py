"""The user agent's dialog table (sipd/dialogs.py): who owns which (Call-ID, local tag)."""

from __future__ import annotations

import pytest

from sipd.dialogs import DialogTable, DialogTaken


class Owner:
    def __init__(self) -> None:
        self.requests: list[object] = []
        self.responses: list[object] = []

    def on_request(self, incoming: object) -> None:
        self.requests.append(incoming)

    def on_stray_response(self, response: object) -> None:
        self.responses.append(response)


def test_requests_find_the_owner_by_their_to_tag_responses_by_their_from_tag():
    table, session, subscription = DialogTable(), Owner(), Owner()
    table.register("c1", "ours", session)
    table.register("c2", "ours", subscription)  # the same tag in another Call-ID
    assert table.request_owner("c1", "ours") is session
    assert table.response_owner("c2", "ours") is subscription
    assert table.request_owner("c1", "theirs") is None
    assert table.request_owner(None, "ours") is None and table.request_owner("c1", None) is None


def test_an_owner_may_register_again_but_never_take_another_owners_dialog():
    table, a, b = DialogTable(), Owner(), Owner()
    table.register("c", "t", a)
    table.register("c", "t", a)
    with pytest.raises(DialogTaken):
        table.register("c", "t", b)
    assert table.owner("c", "t") is a
    with pytest.raises(ValueError):
        table.register("", "t", a)


def test_release_only_what_the_owner_holds():
    table, a, b = DialogTable(), Owner(), Owner()
    table.register("c", "t1", a)
    table.register("c", "t2", a)  # a fork, or the internal leg
    table.register("d", "t", b)
    table.release("d", "t", owner=a)  # not a's: stays
    assert table.owner("d", "t") is b
    table.release_owner(a)
    assert len(table) == 1 and ("d", "t") in table
    table.release("d", "t")
    assert len(table) == 0
