"""The registration state machine, on a fake clock, against registrar answers parsed from
real bytes: digest, refresh, 423, failures, backoff, failover, network changes, unregister."""

from __future__ import annotations

import random

import pytest

from sipd.accounts.model import AccountConfig
from sipd.accounts.registration import (
    Backoff,
    Registration,
    RegistrationPolicy,
    RegistrationState,
    SendRegister,
    StateChanged,
    refresh_delay,
)
from sipd.sip.auth import parse_challenge
from sipd.sip.header_values import parse_address

from .registrar import Driver, FakeRegistrar, as_sent, expected_digest, reply

CONTACT = "sip:alice@192.0.2.10:5070;transport=udp"
REGISTERED = RegistrationState.REGISTERED
FAILED = RegistrationState.FAILED
UNREGISTERED = RegistrationState.UNREGISTERED
REGISTERING = RegistrationState.REGISTERING


class FixedRandom:
    """random() always returns `value`: the jitter is pinned."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def account(**values) -> AccountConfig:
    fields = {"aor": "sip:alice@example.test", "password": "secret"} | values
    return AccountConfig.create("alice", fields)


def registration(targets: int = 1, rng=None, **values) -> Registration:
    return Registration(account(**values), contact=CONTACT, targets=targets,
                        rng=rng or FixedRandom(0.0), user_agent="sipd-test",
                        cnonce_factory=lambda: "c0ffee")


def sends(actions) -> list[SendRegister]:
    return [a for a in actions if isinstance(a, SendRegister)]


def events(actions) -> list[StateChanged]:
    return [a for a in actions if isinstance(a, StateChanged)]


def only_send(actions) -> SendRegister:
    found = sends(actions)
    assert len(found) == 1, actions
    return found[0]


def ok(request, expires: int = 600, contact: str | None = None):
    uri = contact or str(request.contacts[0].uri)
    return reply(request, 200, "OK", f"Contact: <{uri}>;expires={expires}")


def challenge(request, nonce: str = "n1", *, stale: bool = False, status: int = 401):
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
    extra = ", stale=true" if stale else ""
    return reply(request, status, reason,
                 f'{name}: Digest realm="example.test", nonce="{nonce}", qop="auth", '
                 f'opaque="xyz"{extra}')


def registered(reg: Registration, now: float = 0.0, expires: int = 600):
    """Drive a fresh registration to `registered` (no challenge); returns the request."""
    request = as_sent(only_send(reg.start(now)).request)
    reg.response_received(ok(request, expires), now)
    assert reg.state is REGISTERED
    return request


# --- the REGISTER request --------------------------------------------------------------------

def test_first_register_carries_the_account_and_contact():
    reg = registration(display_name="Alice Liddell", outbound_proxy="sip:proxy.example.test")
    actions = reg.start(10.0)
    assert events(actions) == [StateChanged(REGISTERING)]
    send = only_send(actions)
    request = send.request
    assert send.target_index == 0 and send.expires == 600
    assert request.method == "REGISTER" and str(request.uri) == "sip:example.test"
    assert "Via" not in request.headers  # the transport layer adds its own
    assert str(request.to.uri) == "sip:alice@example.test" and request.to.tag is None
    assert request.to.display_name == "Alice Liddell"
    assert str(request.from_.uri) == "sip:alice@example.test" and request.from_.tag
    assert request.call_id == reg.call_id and request.cseq.number == 1
    [contact] = request.contacts
    assert str(contact.uri) == CONTACT and contact.uri.transport == "udp"
    assert request.expires == 600
    assert [str(r.uri) for r in request.routes] == ["sip:proxy.example.test;lr"]
    assert request.headers.get("User-Agent") == "sipd-test"
    assert "Authorization" not in request.headers
    # It goes on the wire as it is.
    assert as_sent(request).to_bytes().startswith(b"REGISTER sip:example.test SIP/2.0\r\n")


def test_registrar_uri_is_the_request_uri():
    reg = registration(registrar="sip:127.0.0.1:5060;transport=tcp")
    request = only_send(reg.start(0)).request
    assert str(request.uri) == "sip:127.0.0.1:5060;transport=tcp"


def test_contact_factory_is_asked_for_every_register():
    addresses = iter(["sip:alice@192.0.2.1:5060", "sip:alice@192.0.2.2:5060"])
    reg = Registration(account(), contact=lambda: next(addresses), rng=FixedRandom())
    first = as_sent(only_send(reg.start(0)).request)
    assert str(first.contacts[0].uri) == "sip:alice@192.0.2.1:5060"
    reg.response_received(ok(first), 0)
    refresh = only_send(reg.network_changed(1)).request
    assert str(refresh.contacts[0].uri) == "sip:alice@192.0.2.2:5060"


def test_contact_as_address_and_set_contact():
    reg = Registration(account(), rng=FixedRandom())
    with pytest.raises(RuntimeError, match="contact"):
        reg.start(0)
    reg = Registration(account(), rng=FixedRandom())
    reg.set_contact(parse_address('"A" <sip:alice@192.0.2.9;ob>;expires=30', "Contact"))
    [contact] = only_send(reg.start(0)).request.contacts
    assert str(contact.uri) == "sip:alice@192.0.2.9;ob"
    assert contact.expires is None  # the lifetime travels in the Expires header


# --- digest authentication -------------------------------------------------------------------

def test_401_is_answered_once_with_a_correct_digest_then_registered():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    actions = reg.response_received(challenge(first), 0.5)
    assert events(actions) == []  # still registering
    retry = only_send(actions).request
    assert retry.cseq.number == first.cseq.number + 1 and retry.call_id == first.call_id
    assert retry.from_.tag == first.from_.tag
    params = parse_challenge(retry.headers.get("Authorization"), what="Authorization").params
    assert params["username"] == "alice" and params["realm"] == "example.test"
    assert params["uri"] == "sip:example.test" and params["opaque"] == "xyz"
    assert (params["nc"], params["cnonce"], params["qop"]) == ("00000001", "c0ffee", "auth")
    assert params["response"] == expected_digest(params, "secret")

    actions = reg.response_received(ok(as_sent(retry), expires=3600), 1.0)
    assert events(actions) == [StateChanged(REGISTERED, expires=3600, contact=CONTACT)]
    assert sends(actions) == []
    assert reg.next_deadline() == pytest.approx(1.0 + 2880)
    assert reg.contact == CONTACT and reg.expires_at == pytest.approx(3601.0)


def test_username_differs_from_the_aor_user():
    reg = registration(username="alice-auth")
    first = as_sent(only_send(reg.start(0)).request)
    retry = only_send(reg.response_received(challenge(first), 0)).request
    params = parse_challenge(retry.headers.get("Authorization"), what="Authorization").params
    assert params["username"] == "alice-auth"
    assert params["response"] == expected_digest(params, "secret")


def test_407_from_the_outbound_proxy_gets_proxy_authorization():
    reg = registration(outbound_proxy="sip:proxy.example.test")
    first = as_sent(only_send(reg.start(0)).request)
    retry = only_send(reg.response_received(challenge(first, status=407), 0)).request
    assert "Authorization" not in retry.headers
    params = parse_challenge(retry.headers.get("Proxy-Authorization"),
                             what="Proxy-Authorization").params
    assert params["response"] == expected_digest(params, "secret")


def test_same_challenge_after_our_credentials_means_wrong_password():
    reg = registration(password="wrong")
    first = as_sent(only_send(reg.start(100)).request)
    retry = as_sent(only_send(reg.response_received(challenge(first, "n1"), 100)).request)
    actions = reg.response_received(challenge(retry, "n2"), 101)
    assert sends(actions) == []
    [event] = events(actions)
    assert event.state is FAILED and event.code == 401
    assert "wrong username or password" in event.reason and "wrong\"" not in event.reason
    assert event.retry_at >= 101 + 300  # a long pause, not a loop
    assert reg.next_deadline() == event.retry_at


def test_stale_nonce_is_answered_again():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    retry = as_sent(only_send(reg.response_received(challenge(first, "n1"), 0)).request)
    again = only_send(reg.response_received(challenge(retry, "n2", stale=True), 0)).request
    params = parse_challenge(again.headers.get("Authorization"), what="Authorization").params
    assert params["nonce"] == "n2" and params["response"] == expected_digest(params, "secret")


def test_a_registrar_that_always_says_stale_is_not_a_loop():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    count = 1
    for n in range(10):
        actions = reg.response_received(challenge(request, f"n{n}", stale=True), 0)
        if not sends(actions):
            break
        request = as_sent(only_send(actions).request)
        count += 1
    assert count <= 1 + reg.policy.max_challenges
    assert reg.state is FAILED and reg.last_event.code == 401


def test_no_password_set_fails_with_a_reason():
    reg = registration(password="")
    first = as_sent(only_send(reg.start(0)).request)
    [event] = events(reg.response_received(challenge(first), 0))
    assert event.state is FAILED and "none is set" in event.reason


def test_403_is_a_permanent_failure():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    actions = reg.response_received(reply(first, 403, "Forbidden"), 0)
    assert sends(actions) == []
    [event] = events(actions)
    assert event.state is FAILED and event.code == 403 and "403 Forbidden" in event.reason
    assert event.retry_at >= 300


def test_wrong_password_costs_a_handful_of_registers_per_hour():
    registrar = FakeRegistrar({"alice": "the-real-one"})
    reg = registration(targets=2, password="wrong", rng=random.Random(7))
    driver = Driver(reg, lambda request, target: registrar.handle(request))
    driver.start()
    driver.run_until(3600.0)
    # 0 s, then ~5, ~10 and ~20 min later: 4 attempts of 2 REGISTERs (one digest retry each).
    assert len(driver.sent) <= 8, [s.request.cseq for s in driver.sent]
    assert len(registrar.received) == len(driver.sent)
    assert set(driver.states()) == {"registering", "failed"}
    failures = [e for e in driver.events if e.state is FAILED]
    assert all(e.code == 401 and "wrong username or password" in e.reason for e in failures)
    # A wrong password is not a server failure: no failover to the second server.
    assert {s.target_index for s in driver.sent} == {0}


def test_fixing_the_registrar_side_password_recovers_on_the_next_retry():
    registrar = FakeRegistrar({"alice": "new"})
    reg = registration(password="new")
    answers = {"reject": True}

    def answer(request, target):
        if answers["reject"]:
            return reply(request, 403, "Forbidden")
        return registrar.handle(request)

    driver = Driver(reg, answer)
    driver.start()
    assert reg.state is FAILED
    answers["reject"] = False
    driver.run_until(reg.last_event.retry_at)
    assert reg.state is REGISTERED
    assert driver.states() == ["registering", "failed", "registering", "registered"]


# --- refresh ---------------------------------------------------------------------------------

@pytest.mark.parametrize("granted, delay", [
    (3600, 2880), (600, 480), (120, 90), (60, 30), (20, 10), (4, 4)])
def test_refresh_delay(granted, delay):
    assert refresh_delay(granted) == pytest.approx(delay)
    assert refresh_delay(granted) <= granted


def test_refresh_uses_preemptive_credentials_and_reports_only_changes():
    registrar = FakeRegistrar({"alice": "secret"})
    reg = registration()
    driver = Driver(reg, lambda request, target: registrar.handle(request))
    driver.start()
    assert driver.states() == ["registering", "registered"]
    assert len(driver.sent) == 2  # challenge, then credentials
    assert driver.events[-1] == StateChanged(REGISTERED, expires=600, contact=CONTACT)

    assert reg.timer(479.0) == []  # early: nothing
    driver.run_until(479.9)
    assert len(driver.sent) == 2
    driver.run_until(480.0)
    assert len(driver.sent) == 3
    refresh = driver.sent[-1].request
    assert refresh.cseq.number == 3 and refresh.call_id == reg.call_id
    params = parse_challenge(refresh.headers.get("Authorization"), what="Authorization").params
    assert params["nc"] == "00000002"  # the same nonce, next count: no new challenge
    assert driver.states() == ["registering", "registered"]  # nothing new to report
    assert reg.next_deadline() == pytest.approx(960.0)

    # Over an hour: one refresh every 480 s, one REGISTER each.
    driver.run_until(3600.0)
    assert len(driver.sent) == 2 + 3600 // 480
    assert reg.state is REGISTERED


def test_refresh_challenged_with_a_new_nonce_is_not_a_wrong_password():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    retry = as_sent(only_send(reg.response_received(challenge(first, "n1"), 0)).request)
    reg.response_received(ok(retry), 0)
    refresh = as_sent(only_send(reg.timer(480)).request)
    assert "Authorization" in refresh.headers  # preemptive, with the old nonce
    # The registrar forgot the nonce and challenges afresh (no stale=true).
    actions = reg.response_received(challenge(refresh, "n9"), 480)
    answer = only_send(actions).request
    params = parse_challenge(answer.headers.get("Authorization"), what="Authorization").params
    assert params["nonce"] == "n9" and params["response"] == expected_digest(params, "secret")
    assert events(actions) == []
    assert events(reg.response_received(ok(as_sent(answer)), 481)) == []
    assert reg.state is REGISTERED


def test_granted_expiry_is_honoured():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    # Our contact among others, each with its own lifetime: ours counts.
    response = reply(request, 200, "OK",
                     "Contact: <sip:alice@198.51.100.7>;expires=3000",
                     f"Contact: <{CONTACT}>;expires=120",
                     "Expires: 900")
    [event] = events(reg.response_received(response, 0))
    assert event.expires == 120 and reg.next_deadline() == pytest.approx(90)


def test_expires_header_is_used_when_the_contact_has_no_parameter():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    response = reply(request, 200, "OK", f"Contact: <{CONTACT}>", "Expires: 300")
    assert events(reg.response_received(response, 0))[0].expires == 300


def test_a_2xx_without_expiry_grants_what_was_asked():
    reg = registration(expires=1200)
    request = as_sent(only_send(reg.start(0)).request)
    assert events(reg.response_received(reply(request, 200, "OK"), 0))[0].expires == 1200


def test_expiry_change_on_refresh_is_reported():
    reg = registration()
    registered(reg, 0, expires=600)
    refresh = as_sent(only_send(reg.timer(480)).request)
    [event] = events(reg.response_received(ok(refresh, expires=300), 480))
    assert event == StateChanged(REGISTERED, expires=300, contact=CONTACT)


def test_a_2xx_granting_zero_is_a_failure():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    [event] = events(reg.response_received(ok(request, expires=0), 0))
    assert event.state is FAILED and "no binding" in event.reason


# --- 423 Interval Too Brief -------------------------------------------------------------------

def test_423_retries_at_once_with_min_expires_and_keeps_it():
    reg = registration(expires=60)
    first = as_sent(only_send(reg.start(0)).request)
    actions = reg.response_received(
        reply(first, 423, "Interval Too Brief", "Min-Expires: 1800"), 0)
    assert events(actions) == []
    retry = only_send(actions)
    assert retry.expires == 1800 and retry.request.expires == 1800
    assert retry.request.cseq.number == 2
    reg.response_received(ok(as_sent(retry.request), expires=1800), 0)
    assert reg.last_event.expires == 1800
    refresh = only_send(reg.timer(reg.next_deadline()))
    assert refresh.request.expires == 1800


def test_423_without_a_larger_min_expires_fails_instead_of_looping():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    [event] = events(reg.response_received(reply(first, 423, "Interval Too Brief"), 0))
    assert event.state is FAILED and event.code == 423
    reg2 = registration()
    first = as_sent(only_send(reg2.start(0)).request)
    actions = reg2.response_received(reply(first, 423, "Interval Too Brief",
                                           "Min-Expires: 300"), 0)
    assert sends(actions) == [] and reg2.state is FAILED


def test_423_with_digest_through_the_fake_registrar():
    registrar = FakeRegistrar({"alice": "secret"}, min_expires=3600)
    reg = registration(expires=600)
    driver = Driver(reg, lambda request, target: registrar.handle(request))
    driver.start()
    assert reg.state is REGISTERED and reg.last_event.expires == 3600
    assert [s.expires for s in driver.sent] == [600, 600, 3600]


# --- failures, backoff, failover ---------------------------------------------------------------

def test_503_fails_over_to_the_next_server_then_backs_off():
    reg = registration(targets=3)
    first = only_send(reg.start(0))
    assert first.target_index == 0
    second = only_send(reg.response_received(
        reply(as_sent(first.request), 503, "Service Unavailable"), 1))
    assert second.target_index == 1 and second.request.cseq.number == 2
    third = only_send(reg.timed_out(2, as_sent(second.request)))
    assert third.target_index == 2
    actions = reg.transport_failed(3, as_sent(third.request), "connection refused")
    assert sends(actions) == []
    [event] = events(actions)
    assert event.state is FAILED and event.code == 503
    assert "connection refused" in event.reason
    assert event.retry_at == pytest.approx(3 + 30)
    # The retry starts a new round at the first server.
    actions = reg.timer(33)
    assert events(actions) == [StateChanged(REGISTERING)]
    assert only_send(actions).target_index == 0


def test_refreshes_stay_with_the_server_that_registered_us_and_fail_over_from_it():
    reg = registration(targets=3)
    first = only_send(reg.start(0))
    second = only_send(reg.response_received(reply(as_sent(first.request), 500, "Oops"), 0))
    assert second.target_index == 1
    reg.response_received(ok(as_sent(second.request)), 0)
    refresh = only_send(reg.timer(480))
    assert refresh.target_index == 1
    after = only_send(reg.timed_out(500, as_sent(refresh.request)))
    assert after.target_index == 2
    wrap = only_send(reg.response_received(reply(as_sent(after.request), 503, "Busy"), 501))
    assert wrap.target_index == 0
    [event] = events(reg.response_received(reply(as_sent(wrap.request), 503, "Busy"), 502))
    assert event.state is FAILED


def test_backoff_doubles_up_to_the_cap():
    reg = registration(targets=1)
    delays = []
    now = 0.0
    actions = reg.start(now)
    for _ in range(8):
        request = as_sent(only_send(actions).request)
        [event] = events(reg.response_received(reply(request, 500, "Error"), now))
        delays.append(event.retry_at - now)
        now = event.retry_at
        actions = reg.timer(now)
    assert delays == [30, 60, 120, 240, 480, 600, 600, 600]


def test_success_resets_the_backoff():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    reg.response_received(reply(request, 500, "Error"), 0)
    request = as_sent(only_send(reg.timer(30)).request)
    reg.response_received(reply(request, 500, "Error"), 30)
    assert reg.last_event.retry_at == pytest.approx(90)
    request = as_sent(only_send(reg.timer(90)).request)
    reg.response_received(ok(request), 90)
    refresh = as_sent(only_send(reg.timer(570)).request)
    reg.response_received(reply(refresh, 500, "Error"), 570)
    assert reg.last_event.retry_at == pytest.approx(600)


def test_jitter_stays_within_bounds_and_spreads_retries():
    backoff = Backoff(30.0, 600.0, jitter=0.25)
    rng = random.Random(1)
    for failures in range(1, 12):
        low, high = backoff.bounds(failures)
        assert low == min(600.0, 30.0 * 2 ** (failures - 1)) and high == low * 1.25
        samples = [backoff.delay(failures, rng) for _ in range(200)]
        assert all(low <= s <= high for s in samples)
        assert max(samples) - min(samples) > 0.15 * low  # actually spread
    assert backoff.delay(1, FixedRandom(0.0)) == 30.0
    assert backoff.delay(1, FixedRandom(0.999999)) == pytest.approx(37.5, abs=1e-3)
    with pytest.raises(ValueError):
        Backoff(0, 10)


def test_fifty_accounts_failing_together_retry_apart():
    rng = random.Random(42)
    retry_times = []
    for n in range(50):
        reg = Registration(account(aor=f"sip:user{n}@example.test"), contact=CONTACT, rng=rng)
        request = as_sent(only_send(reg.start(0)).request)
        reg.response_received(reply(request, 503, "Service Unavailable"), 0)
        retry_times.append(reg.last_event.retry_at)
    assert all(30 <= t <= 37.5 for t in retry_times)
    assert len({round(t, 3) for t in retry_times}) > 40


def test_retry_after_of_a_503_is_honoured():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    reg.response_received(reply(request, 503, "Service Unavailable", "Retry-After: 120"), 0)
    assert reg.last_event.retry_at == pytest.approx(120)


def test_other_4xx_and_6xx_are_permanent_and_redirects_explained():
    for status, reason in [(404, "Not Found"), (400, "Bad Request"), (603, "Decline"),
                           (302, "Moved Temporarily")]:
        reg = registration(targets=2)
        request = as_sent(only_send(reg.start(0)).request)
        actions = reg.response_received(reply(request, status, reason), 0)
        assert sends(actions) == []  # no failover
        [event] = events(actions)
        assert event.state is FAILED and event.code == status and event.retry_at >= 300
        if status == 302:
            assert "redirect" in event.reason


def test_answers_to_other_requests_are_ignored():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    assert reg.response_received(reply(first, 100, "Trying"), 0) == []
    retry = as_sent(only_send(reg.response_received(challenge(first), 0)).request)
    # A late retransmission of the answer to the first REGISTER: old CSeq.
    assert reg.response_received(ok(first), 0) == []
    assert reg.timed_out(0, first) == [] and reg.transport_failed(0, first) == []
    other = retry.copy()
    other.headers.set("Call-ID", "someone-else")
    assert reg.response_received(ok(other), 0) == []
    assert reg.phase == "registering"
    assert events(reg.response_received(ok(retry), 0))[0].state is REGISTERED


def test_a_transaction_layer_that_never_reports_is_guarded():
    reg = registration()
    reg.start(0)
    deadline = reg.next_deadline()
    assert deadline == pytest.approx(RegistrationPolicy().response_timeout)
    assert reg.timer(deadline - 1) == []
    [event] = events(reg.timer(deadline))
    assert event.state is FAILED and event.code == 408


def test_start_while_registered_does_nothing_and_after_failure_retries_now():
    reg = registration()
    registered(reg)
    assert reg.start(1) == []
    reg2 = registration()
    request = as_sent(only_send(reg2.start(0)).request)
    reg2.response_received(reply(request, 403, "Forbidden"), 0)
    actions = reg2.start(5)  # the user fixed the password and asks again
    assert events(actions) == [StateChanged(REGISTERING)] and len(sends(actions)) == 1


# --- network changes --------------------------------------------------------------------------

def test_network_change_re_registers_now_and_drops_the_old_contact():
    address = {"value": "sip:alice@192.0.2.1:5060"}
    reg = Registration(account(), contact=lambda: address["value"], rng=FixedRandom())
    request = as_sent(only_send(reg.start(0)).request)
    reg.response_received(ok(request), 0)
    address["value"] = "sip:alice@198.51.100.4:5060"
    actions = reg.network_changed(100)
    assert events(actions) == []
    new = only_send(actions).request
    contacts = new.contacts
    assert [str(c.uri) for c in contacts] == ["sip:alice@198.51.100.4:5060",
                                              "sip:alice@192.0.2.1:5060"]
    assert contacts[0].expires is None and contacts[1].expires == 0
    assert new.call_id == request.call_id
    [event] = events(reg.response_received(ok(as_sent(new)), 101))
    assert event.contact == "sip:alice@198.51.100.4:5060"
    assert reg.next_deadline() == pytest.approx(101 + 480)


def test_network_change_abandons_the_register_in_flight():
    reg = registration()
    old = as_sent(only_send(reg.start(0)).request)
    new = as_sent(only_send(reg.network_changed(1)).request)
    assert reg.response_received(ok(old), 2) == []
    assert reg.timed_out(3, old) == []
    assert events(reg.response_received(ok(new), 2))[0].state is REGISTERED


def test_network_change_cuts_a_transient_backoff_but_not_a_wrong_password():
    reg = registration()
    request = as_sent(only_send(reg.start(0)).request)
    reg.transport_failed(0, request, "network unreachable")
    assert reg.state is FAILED
    actions = reg.network_changed(5)
    assert events(actions) == [StateChanged(REGISTERING)] and len(sends(actions)) == 1

    reg2 = registration()
    request = as_sent(only_send(reg2.start(0)).request)
    reg2.response_received(reply(request, 403, "Forbidden"), 0)
    assert reg2.network_changed(5) == []
    assert registration().network_changed(0) == []  # never started


# --- unregister --------------------------------------------------------------------------------

def test_stop_unregisters_the_binding():
    reg = registration(targets=2)
    first = only_send(reg.start(0))
    second = only_send(reg.response_received(reply(as_sent(first.request), 503, "x"), 0))
    reg.response_received(ok(as_sent(second.request)), 0)
    actions = reg.stop(100, wait=5)
    assert events(actions) == []
    send = only_send(actions)
    assert send.target_index == 1 and send.expires == 0
    request = send.request
    assert request.expires == 0 and [str(c.uri) for c in request.contacts] == [CONTACT]
    assert request.call_id == reg.call_id and request.cseq.number == 3
    assert reg.next_deadline() == pytest.approx(105)
    actions = reg.response_received(reply(as_sent(request), 200, "OK"), 101)
    assert events(actions) == [StateChanged(UNREGISTERED)]
    assert reg.is_stopped and reg.next_deadline() is None and reg.contact is None


def test_unregister_is_bounded():
    reg = registration()
    registered(reg)
    only_send(reg.stop(10, wait=3))
    assert reg.timer(12.9) == []
    [event] = events(reg.timer(13))
    assert event.state is UNREGISTERED and "in time" in event.reason
    assert reg.is_stopped and reg.next_deadline() is None


def test_unregister_failure_still_ends_unregistered():
    reg = registration()
    registered(reg)
    request = as_sent(only_send(reg.stop(10)).request)
    [event] = events(reg.response_received(reply(request, 500, "Server Error"), 11))
    assert event.state is UNREGISTERED and event.code == 500
    assert "expires on its own" in event.reason


def test_unregister_answers_a_challenge():
    registrar = FakeRegistrar({"alice": "secret"})
    reg = registration()
    driver = Driver(reg, lambda request, target: registrar.handle(request))
    driver.start()
    assert registrar.bindings == {CONTACT: 600}
    registrar.issued.clear()  # nonces expired: the unregister is challenged
    driver.feed(reg.stop(50))
    assert registrar.bindings == {}
    assert driver.events[-1] == StateChanged(UNREGISTERED)
    assert [s.expires for s in driver.sent][-2:] == [0, 0]


def test_stop_without_a_binding_is_immediate():
    reg = registration()
    assert reg.stop(0) == []  # never started: already unregistered
    request = as_sent(only_send(reg.start(0)).request)
    reg.response_received(reply(request, 403, "Forbidden"), 0)
    actions = reg.stop(1)
    assert actions == [StateChanged(UNREGISTERED)]
    assert reg.is_stopped and reg.next_deadline() is None


def test_stop_while_the_first_register_is_in_flight_unregisters():
    reg = registration()
    first = as_sent(only_send(reg.start(0)).request)
    send = only_send(reg.stop(1))
    assert send.expires == 0
    assert reg.response_received(ok(first), 1.5) == []  # the abandoned REGISTER
    assert events(reg.response_received(reply(as_sent(send.request), 200, "OK"), 2)) == \
        [StateChanged(UNREGISTERED)]


def test_stop_with_no_time_reports_at_once():
    reg = registration()
    registered(reg)
    [event] = reg.stop(5, wait=0)
    assert event.state is UNREGISTERED and "expires on its own" in event.reason


def test_stop_after_a_failed_refresh_still_unregisters_a_live_binding():
    reg = registration()
    registered(reg)
    refresh = as_sent(only_send(reg.timer(480)).request)
    reg.response_received(reply(refresh, 500, "Error"), 480)
    assert reg.state is FAILED
    send = only_send(reg.stop(490))  # the binding lasts until 600
    assert send.expires == 0
    reg2 = registration()
    registered(reg2)
    refresh = as_sent(only_send(reg2.timer(480)).request)
    reg2.response_received(reply(refresh, 500, "Error"), 480)
    assert reg2.stop(700) == [StateChanged(UNREGISTERED)]  # expired by now


def test_start_after_stop_registers_again_with_the_same_call_id():
    reg = registration()
    first = registered(reg)
    request = as_sent(only_send(reg.stop(10)).request)
    reg.response_received(reply(request, 200, "OK"), 10)
    actions = reg.start(20)
    send = only_send(actions)
    assert send.request.call_id == first.call_id and send.request.cseq.number == 3
    assert events(actions) == [StateChanged(REGISTERING)]


# --- events and scale --------------------------------------------------------------------------

def test_event_data_matches_the_rpc_contract():
    assert StateChanged(REGISTERED, expires=600, contact=CONTACT).data("alice") == {
        "account": "alice", "state": "registered", "expires": 600, "contact": CONTACT}
    failed = StateChanged(FAILED, code=503, reason="503 Busy", retry_at=130.0)
    assert failed.data("alice", now=100.0, wall_now=1_700_000_000.0) == {
        "account": "alice", "state": "failed", "code": 503, "reason": "503 Busy",
        "retry_in": 30.0, "retry_at": 1_700_000_030.0}
    assert StateChanged(UNREGISTERED).data("x") == {"account": "x", "state": "unregistered"}
    reg = registration()
    assert reg.snapshot("alice", 0) == {"account": "alice", "state": "unregistered",
                                        "phase": "idle"}


def test_fifty_accounts_register_at_once():
    registrar = FakeRegistrar({f"user{n}": f"pw{n}" for n in range(50)})
    regs = [Registration(AccountConfig.create(f"a{n}", {"aor": f"sip:user{n}@example.test",
                                                        "password": f"pw{n}"}),
                         contact=f"sip:user{n}@192.0.2.10:5070", rng=random.Random(n))
            for n in range(50)]
    inflight = []  # (registration, request): every REGISTER is out before any answer
    for reg in regs:
        inflight.append((reg, as_sent(only_send(reg.start(0)).request)))
    while inflight:
        reg, request = inflight.pop(0)
        for action in reg.response_received(registrar.handle(request), 1):
            if isinstance(action, SendRegister):
                inflight.append((reg, as_sent(action.request)))
    assert all(reg.state is REGISTERED for reg in regs)
    assert len({reg.call_id for reg in regs}) == 50
    assert len(registrar.bindings) == 50 and len(registrar.received) == 100


def test_set_targets_validates_and_resets_a_stale_index():
    reg = registration(targets=3)
    with pytest.raises(ValueError):
        reg.set_targets(0)
    first = only_send(reg.start(0))
    second = only_send(reg.response_received(reply(as_sent(first.request), 503, "x"), 0))
    third = only_send(reg.response_received(reply(as_sent(second.request), 503, "x"), 0))
    reg.response_received(ok(as_sent(third.request)), 0)  # registered with server 2
    reg.set_targets(1)  # a new lookup found one server
    assert only_send(reg.timer(480)).target_index == 0


def test_accounts_registered_together_refresh_spread_over_the_interval():
    """1,000 accounts registered in the same second (a daemon starting) must not come back
    in the same second: their refreshes spread over a quarter of the interval, evenly."""
    rng = random.Random(3)
    refresh_times = []
    for n in range(1000):
        reg = Registration(account(aor=f"sip:user{n}@example.test"), contact=CONTACT, rng=rng)
        request = as_sent(only_send(reg.start(0)).request)
        reg.response_received(ok(request, expires=600), 0)
        refresh_times.append(reg.next_deadline())
    latest = refresh_delay(600)  # 480 s: what every one of them used to wait
    assert all(0.75 * latest <= t <= latest for t in refresh_times)
    per_ten_seconds = [0] * 12  # 360..480 s in 10 s slices
    for t in refresh_times:
        per_ten_seconds[min(11, int((t - 360) // 10))] += 1
    assert max(per_ten_seconds) < 1000 / 12 * 1.5 and min(per_ten_seconds) > 1000 / 12 * 0.5
    # and each refresh draws again: the next round drifts further apart
    reg = Registration(account(), contact=CONTACT, rng=random.Random(5))
    request = as_sent(only_send(reg.start(0)).request)
    reg.response_received(ok(request, expires=600), 0)
    first = reg.next_deadline()
    refresh = as_sent(only_send(reg.timer(first)).request)
    reg.response_received(ok(refresh, expires=600), first)
    assert reg.next_deadline() - first != pytest.approx(first)


def test_a_register_that_carries_on_an_attempt_says_so():
    """The I/O side queues new attempts behind a bound (registrar_client.IN_FLIGHT) but not
    the REGISTERs that carry on one already answered: credentials after a challenge, the
    next server after a failure, the Min-Expires after a 423."""
    reg = registration(targets=2)
    first = only_send(reg.start(0))
    assert first.continues is False
    answer = only_send(reg.response_received(challenge(as_sent(first.request)), 0))
    assert answer.continues is True
    failover = only_send(reg.response_received(reply(as_sent(answer.request), 503,
                                                     "Service Unavailable"), 0))
    assert failover.continues is True and failover.target_index == 1
    too_brief = only_send(reg.response_received(
        reply(as_sent(failover.request), 423, "Interval Too Brief", "Min-Expires: 1200"), 0))
    assert too_brief.continues is True and too_brief.expires == 1200
    unregister = only_send(reg.stop(1, wait=5))
    assert unregister.continues is False


def test_a_register_replaced_before_it_was_sent_is_no_longer_awaited():
    reg = registration()
    first = only_send(reg.start(0))
    assert reg.awaits(first.request)
    unregister = only_send(reg.stop(1, wait=5))
    assert not reg.awaits(first.request) and reg.awaits(unregister.request)
