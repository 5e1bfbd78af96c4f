"""How long a call may ring (sipd.sessions.ring_limit) and which incoming calls are taken
(sipd.sessions.admission), without a daemon; tests/sessions/test_calls_limits.py has them
against one."""

from __future__ import annotations

from sipd.sessions.admission import RETRY_AFTER, IncomingAdmission
from sipd.sessions.policy import SessionPolicy
from sipd.sessions.ring_limit import (
    EXPIRED,
    NO_ANSWER,
    expires_header,
    incoming_limit,
    outgoing_limit,
)

from .test_invite_peer import make_invite


def invite_with(expires: str | None):
    invite = make_invite()
    if expires is not None:
        invite.headers.add("Expires", expires)
    return invite


def test_an_incoming_call_rings_until_the_earlier_of_expires_and_the_timeout():
    limit = incoming_limit(invite_with(None), 120)
    assert limit is not None and (limit.after, limit.code, limit.reason) == (120, 480, NO_ANSWER)
    expiring = incoming_limit(invite_with("30"), 120)
    assert (expiring.after, expiring.code, expiring.reason) == (30, 487, EXPIRED)
    assert incoming_limit(invite_with("300"), 120).code == 480
    # With the timeout off, only the INVITE's Expires limits it; an unreadable one is ignored.
    assert incoming_limit(invite_with("30"), 0).code == 487
    assert incoming_limit(invite_with(None), 0) is None
    assert incoming_limit(invite_with("soon"), 120).code == 480


def test_an_outgoing_call_says_how_long_it_rings():
    assert expires_header(outgoing_limit(120)) == [("Expires", "120")]
    assert outgoing_limit(0) is None and expires_header(None) == []


def settings(**values):
    defaults = {"sessions.max_incoming": 3, "sessions.max_incoming_per_account": 2}
    return SessionPolicy({**defaults, **values}.__getitem__)


def test_past_the_account_cap_486_past_the_total_503_with_retry_after():
    admission = IncomingAdmission(settings())
    assert admission.refusal([], "alice", 0.0) is None
    assert admission.refusal(["alice"], "alice", 0.0) is None
    busy = admission.refusal(["alice", "alice"], "alice", 0.0)
    assert busy is not None and busy.status == 486 and busy.headers == ()
    assert admission.refusal(["alice", "alice"], "bob", 0.0) is None
    full = admission.refusal(["alice", "alice", "bob"], "carol", 0.0)
    assert full is not None and full.status == 503
    assert full.headers == (("Retry-After", str(RETRY_AFTER)),)


def test_the_policy_reads_the_settings_when_used():
    values = {"sessions.max_incoming": 3, "sessions.max_incoming_per_account": 2}
    policy = SessionPolicy(values.__getitem__)
    admission = IncomingAdmission(policy)
    assert admission.refusal(["a", "a"], "a", 0.0) is not None
    values["sessions.max_incoming_per_account"] = 5
    assert admission.refusal(["a", "a"], "a", 0.0) is None
    assert SessionPolicy().no_answer_timeout == 120  # the schema's default
