"""The web page in a real headless chromium against real daemons: logging in (token, one-time
link), registering at Kamailio, calling baresip and being called by it, history search, the
event stream resumed after a lost connection, screenshots at 1280x800 and 390x844, and an
axe-core accessibility check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from sipctl.client import connect
from tests.harness.peer import daemon_settings
from tests.harness.process import SipdProcess, running
from tests.peers.fixtures import PEER_USERS
from tests.web.browser import Page, Shots

pytestmark = [pytest.mark.peer, pytest.mark.daemon]


def rpc(daemon: SipdProcess, method: str, **params: Any) -> Any:
    async def call() -> Any:
        async with connect(daemon.endpoint) as client:
            return await client.call(method, params or None)
    return trio.run(call)


@pytest.fixture
def sipd(tmp_path: Any) -> Iterator[SipdProcess]:
    daemon = SipdProcess(tmp_path, daemon_settings())
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        print(daemon.log())


def web_url(daemon: SipdProcess) -> str:
    url = rpc(daemon, "system.state")["web"]["url"]
    assert url
    return url


def logged_in(browser: Any, daemon: SipdProcess, size: str = "wide") -> Page:
    """A page opened with a one-time link from `sipctl web`'s method."""
    page = Page(browser, size)
    page.page.goto(rpc(daemon, "web.link")["url"])
    connected(page)
    return page


def connected(page: Page) -> None:
    page.page.wait_for_selector("#connection:text-is('Connected')")
    page.page.wait_for_selector("#accounts li[data-account=local]")


def tab(page: Page, name: str) -> None:
    page.page.get_by_role("tab", name=name).click()


def test_login_with_a_pasted_token_or_a_one_time_link(browser: Any, sipd: SipdProcess,
                                                      shots: Shots) -> None:
    page = Page(browser)
    page.page.goto(web_url(sipd))
    login = page.page.get_by_label("Token")
    login.wait_for()
    shots.take(page, "login")
    assert page.serious_violations() == []
    # the check is live: an image without a text alternative is a critical finding
    page.page.evaluate("document.body.append(Object.assign(document.createElement('img'),"
                       " {src: 'icon.svg'}))")
    assert [v["id"] for v in page.serious_violations()] == ["image-alt", "image-alt"]
    page.page.evaluate("document.querySelector('body > img').remove()")
    login.fill("not-the-token")
    page.page.get_by_role("button", name="Log in").click()
    page.page.wait_for_selector("#login-error:has-text('refused the token')")
    assert page.page.is_visible("#login-view")
    login.fill(sipd.endpoint.token)
    page.page.get_by_role("button", name="Log in").click()
    connected(page)
    page.page.reload()  # the tab keeps its login
    connected(page)
    page.page.get_by_role("button", name="Log out").click()
    page.page.get_by_label("Token").wait_for()
    page.close()

    link = rpc(sipd, "web.link")["url"]
    first = Page(browser)
    first.page.goto(link)
    connected(first)
    assert "#" not in first.page.url and "login=" not in first.page.url
    second = Page(browser)
    second.page.goto(link)
    second.page.wait_for_selector("#login-error:has-text('used up or expired')")
    assert first.errors == []
    assert all("status of 403" in error for error in second.errors)  # the refused exchange
    first.close()
    second.close()
    assert sipd.endpoint.token not in sipd.log()
    assert link.split("login=")[1] not in sipd.log()


def test_register_call_baresip_answer_its_call_and_search_history(
        browser: Any, sipd: SipdProcess, kamailio: Any, baresip_factory: Any,
        shots: Shots) -> None:
    bob = baresip_factory("bob", answermode="auto")
    page = logged_in(browser, sipd)
    p = page.page

    # register alice at Kamailio through the page's form
    p.get_by_text("Add an account").click()
    p.get_by_label("Address of record").fill(kamailio.aor("alice"))
    p.get_by_label("Password").fill(PEER_USERS["alice"])
    p.get_by_label("Registrar (optional)").fill(
        kamailio.proxy_uri("udp").replace(";transport=udp", ""))
    p.get_by_role("button", name="Add and register").click()
    row = p.locator("#accounts li:not([data-account=local])")
    row.locator(".badge:text-is('registered')").wait_for()
    alice = row.get_attribute("data-account")
    kamailio.wait_registered("alice")
    shots.take(page, "accounts")

    # call bob (baresip answers by itself), hold, tones, hang up
    p.get_by_label("Account", exact=True).select_option(alice)
    p.get_by_label("Call", exact=True).fill(kamailio.aor("bob"))
    p.get_by_role("button", name="Call", exact=True).click()
    card = p.locator("#calls li[data-state=established]")
    card.wait_for()
    session = card.get_attribute("data-id")
    bob.wait_event("CALL_ESTABLISHED")
    shots.take(page, "call")
    card.get_by_role("button", name="Hold").click()
    card.locator(".call-state:has-text('on hold')").wait_for()
    card.get_by_role("button", name="Resume").click()
    card.get_by_role("button", name="Hold").wait_for()
    card.get_by_label("Send tones").fill("12#")
    card.get_by_role("button", name="Send").click()
    card.get_by_role("button", name="Hang up").click()
    p.locator(f"#calls li[data-id='{session}'][data-state=ended]").wait_for()
    bob.wait_event("CALL_CLOSED")
    assert rpc(sipd, "sessions.get", id=session)["state"] == "ended"

    # bob calls alice: the page announces it, alice answers, then bob hangs up
    bob.dial(kamailio.aor("alice"))
    incoming = p.get_by_role("alertdialog", name="Incoming call")
    incoming.wait_for()
    assert "bob@" in incoming.inner_text()
    shots.take(page, "incoming")
    assert page.serious_violations() == []
    incoming.get_by_role("button", name="Answer").click()
    answered = p.locator("#calls li[data-state=established]")
    answered.wait_for()
    answered_id = answered.get_attribute("data-id")
    incoming.wait_for(state="hidden")
    bob.hangup()
    p.locator(f"#calls li[data-id='{answered_id}'][data-state=ended]").wait_for()

    # and again: alice rejects it
    bob.wait_event("CALL_CLOSED")
    bob.dial(kamailio.aor("alice"))
    incoming.wait_for()
    incoming.get_by_role("button", name="Reject").click()
    bob.wait_event("CALL_CLOSED")
    incoming.wait_for(state="hidden")

    # history: bob's calls, found by his address; the views go by keyboard too
    p.get_by_role("tab", name="Accounts").focus()
    p.keyboard.press("ArrowRight")
    assert p.get_by_role("tab", name="Chat").get_attribute("aria-selected") == "true"
    p.keyboard.press("ArrowRight")
    assert p.get_by_role("tab", name="Files").get_attribute("aria-selected") == "true"
    p.keyboard.press("ArrowRight")
    assert p.get_by_role("tab", name="History").get_attribute("aria-selected") == "true"
    assert p.get_by_role("tabpanel", name="History").is_visible()
    p.keyboard.press("End")
    assert p.get_by_role("tab", name="Activity").get_attribute("aria-selected") == "true"
    tab(page, "History")
    p.get_by_label("Search").fill(kamailio.aor("bob").removeprefix("sip:"))
    p.get_by_role("button", name="Search").click()
    calls = p.locator("#history-calls li")
    calls.filter(has_text="rejected").wait_for()
    results = calls.locator(".badge").all_inner_texts()
    assert results.count("completed") == 2 and results.count("rejected") == 1, results
    shots.take(page, "history")
    assert page.serious_violations() == []
    assert page.errors == []
    page.close()


def test_history_search_and_missed_events_after_a_reconnect(browser: Any, sipd: SipdProcess,
                                                            shots: Shots) -> None:
    ports = rpc(sipd, "system.state")["sip"]["ports"]
    me = f"sip:local@127.0.0.1:{ports['udp']}"
    rpc(sipd, "messages.send", account="local", to=me, content="Grüße vom Bahnhof")

    page = Page(browser)
    # The test's hand on the page's WebSockets (not the page's code): it can cut them and
    # keep new ones from connecting, as a network that went away would.
    page.context.add_init_script("""
        window.__sockets = [];
        window.__offline = false;
        const Real = window.WebSocket;
        window.WebSocket = function (url, protocols) {
            const ws = new Real(window.__offline ? url.replace(/\\/rpc$/, "/offline") : url,
                                protocols);
            window.__sockets.push(ws);
            return ws;
        };
        window.WebSocket.prototype = Real.prototype;
        Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
    """)
    p = page.page
    p.goto(rpc(sipd, "web.link")["url"])
    connected(page)

    tab(page, "History")
    p.get_by_label("Search").fill("GRUSSE bahn")  # no match: ß is not ss
    p.get_by_role("button", name="Search").click()
    p.locator("#history-messages li:has-text('No messages')").wait_for()
    p.get_by_label("Search").fill("grüße BAHN")
    p.get_by_role("button", name="Search").click()
    found = p.locator("#history-messages li", has_text="Grüße vom Bahnhof")
    found.first.wait_for()
    assert found.count() == 2  # sent and received: the daemon wrote to itself

    p.evaluate("window.__offline = true; window.__sockets.forEach((ws) => ws.close())")
    p.wait_for_selector("#connection:has-text('trying again')")
    for n in range(3):
        rpc(sipd, "messages.send", account="local", to=me, content=f"while away {n}")
    p.evaluate("window.__offline = false")
    notice = p.locator("#notice")
    notice.filter(has_text=re.compile(r"Reconnected: \d+ events? happened")).wait_for()
    replayed = int(re.search(r"(\d+) event", notice.inner_text()).group(1))
    assert replayed >= 6  # per message at least message.sending and message.received
    tab(page, "Activity")
    missed = p.locator("#activity li[data-missed=yes]")
    assert missed.count() == replayed
    assert "message.received" in " ".join(missed.all_inner_texts())
    shots.take(page, "activity")
    assert page.serious_violations() == []

    tab(page, "History")
    p.get_by_label("Search").fill("away")
    p.get_by_role("button", name="Search").click()
    p.locator("#history-messages li", has_text="while away 2").first.wait_for()
    # the history shown follows what happens: a new message appears without a click
    rpc(sipd, "messages.send", account="local", to=me, content="away once more")
    p.locator("#history-messages li", has_text="away once more").first.wait_for()
    shots.take(page, "messages")
    tab(page, "Contacts")
    p.locator("#contacts li").first.wait_for()
    assert page.serious_violations() == []
    assert page.errors == []
    page.close()


def test_contacts_show_presence(browser: Any, tmp_path: Any, shots: Shots) -> None:
    """A contact on another daemon (which lets everyone watch it): open, then closed with a
    note when it publishes so."""
    settings = {**daemon_settings(), "presence.allow_everyone": True}
    with running(tmp_path, settings) as (a, b):
        bob = f"sip:local@127.0.0.1:{rpc(b, 'system.state')['sip']['ports']['udp']}"
        rpc(a, "contacts.add", account="local", uri=bob, name="Bob", presence=True)
        page = logged_in(browser, a)
        p = page.page
        tab(page, "Contacts")
        row = p.locator("#contacts li", has_text="Bob")
        row.locator(".badge:text-is('open')").wait_for()
        rpc(b, "presence.publish", account="local", status="closed", note="in a meeting")
        row.locator(".badge:text-is('closed')").wait_for()
        row.filter(has_text="in a meeting").wait_for()
        shots.take(page, "contacts")
        assert page.serious_violations() == []
        row.get_by_role("button", name="Call Bob").click()
        assert p.get_by_label("Call", exact=True).input_value() == bob
        tab(page, "Contacts")
        row.get_by_role("button", name="Chat with Bob").click()  # a chat session to Bob
        chat = p.locator("#conversation:not([hidden])")
        chat.filter(has_text="Chat with local@127.0.0.1").wait_for()
        assert p.get_by_role("tab", name="Chat").get_attribute("aria-selected") == "true"
        session = chat.get_attribute("data-session")
        assert rpc(a, "sessions.get", id=session)["streams"] == ["chat"]
        p.get_by_role("button", name="End chat").click()  # cancelled before B answers
        p.locator("#conversation-state").filter(has_text="ended").wait_for()
        assert page.errors == []
        page.close()
