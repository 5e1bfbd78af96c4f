"""a=rfbsetup: who shares (the RFB server, passive) and who views (active)."""

from __future__ import annotations

import pytest

from sipd.screen.sdp import (
    Rfbsetup,
    ScreenRole,
    ScreenSetupError,
    answer_role,
    attributes,
    check_answer,
    parse_rfbsetup,
    rfbsetup_for,
    role_of,
)


def test_the_sharer_is_passive_and_the_viewer_active():
    assert rfbsetup_for(ScreenRole.SHARE) == Rfbsetup.PASSIVE
    assert rfbsetup_for(ScreenRole.VIEW) == Rfbsetup.ACTIVE
    assert attributes(ScreenRole.SHARE) == [("rfbsetup", "passive")]
    assert attributes(ScreenRole.VIEW) == [("rfbsetup", "active")]
    assert role_of(Rfbsetup.PASSIVE) == ScreenRole.SHARE


def test_answers_take_the_other_half():
    assert answer_role(parse_rfbsetup("passive")) == ScreenRole.VIEW  # "see mine"
    assert answer_role(parse_rfbsetup("active")) == ScreenRole.SHARE  # "show me yours"
    assert answer_role(parse_rfbsetup(None)) == ScreenRole.SHARE  # as python-sipsimple
    assert parse_rfbsetup(" PASSIVE ") == Rfbsetup.PASSIVE
    check_answer(Rfbsetup.PASSIVE, Rfbsetup.ACTIVE)
    check_answer(Rfbsetup.PASSIVE, None)
    with pytest.raises(ScreenSetupError, match="both sides want to view"):
        check_answer(Rfbsetup.ACTIVE, None)
    with pytest.raises(ScreenSetupError, match="share their screen"):
        check_answer(Rfbsetup.PASSIVE, Rfbsetup.PASSIVE)


def test_bad_rfbsetup():
    with pytest.raises(ScreenSetupError, match="active or passive"):
        parse_rfbsetup("actpass")
