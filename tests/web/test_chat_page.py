"""Chat in the page, in a real headless chromium: the page on daemon A chats with daemon B's
`local` account, B driven over RPC. Messages both ways, is-composing both ways (the page's
"active" while typing and "idle" after a pause), delivery ticks (delivered, then displayed
when B shows it), the page's own display notifications for what it showed, an incoming chat
accepted with the earlier chat from the history in its window, screenshots and an axe-core
check of the chat view."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from sipctl.client import RpcCallError
from tests.harness.chat import CHAT_TOPICS
from tests.harness.peer import DaemonPeer, daemon_settings, open_peer
from tests.harness.process import SipdProcess, running
from tests.web.browser import Page, Shots
from tests.web.test_page import connected, rpc, tab

pytestmark = [pytest.mark.peer, pytest.mark.daemon]

T = TypeVar("T")


class Remote:
    """Daemon B over RPC from a thread of its own (the page's test is synchronous): its event
    log fills while the page works; `run` runs one step of B's in B's trio loop."""

    def __init__(self, daemon: SipdProcess, topics: tuple[str, ...] = CHAT_TOPICS) -> None:
        self.daemon = daemon
        self.topics = topics
        self.peer: DaemonPeer | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            async with open_peer(self.daemon, self.topics) as peer:
                self.peer = peer
                self.stop = trio.Event()
                self.token = trio.lowlevel.current_trio_token()
                self.ready.set()
                await self.stop.wait()
        try:
            trio.run(serve)
        except BaseException as exc:  # noqa: BLE001  (told to the test, which fails)
            self.failure = exc
            self.ready.set()

    def run(self, step: Callable[[DaemonPeer], Awaitable[T]]) -> T:
        assert self.peer is not None
        peer = self.peer

        async def call() -> T:
            return await step(peer)
        return trio.from_thread.run(call, trio_token=self.token)

    def call(self, method: str, **params: Any) -> Any:
        return self.run(lambda peer: peer.call(method, **params))

    def wait(self, name: str, **match: Any) -> Any:
        return self.run(lambda peer: peer.events.wait(name, **match))


async def trio_now(value: T) -> T:
    return value


@contextmanager
def remote(daemon: SipdProcess, topics: tuple[str, ...] = CHAT_TOPICS) -> Iterator[Remote]:
    side = Remote(daemon, topics)
    side.thread.start()
    side.ready.wait(30)
    if side.failure is not None or side.token is None:
        raise RuntimeError(f"no RPC connection to daemon B: {side.failure!r}")
    try:
        yield side
    finally:
        trio.from_thread.run_sync(side.stop.set, trio_token=side.token)
        side.thread.join(10)


def test_page_chats_with_another_daemon(tmp_path: Path, browser: Any, shots: Shots) -> None:
    with running(tmp_path, daemon_settings()) as (a, b), remote(b) as bob:
        assert bob.peer is not None
        bob_uri = bob.peer.uri()
        page = Page(browser)
        p = page.page
        p.goto(rpc(a, "web.link")["url"])
        connected(page)

        # the page starts a chat; B answers it
        tab(page, "Chat")
        p.get_by_label("Chat with").fill(bob_uri)
        p.get_by_role("button", name="Start chat").click()
        new = bob.wait("session.new", direction="incoming")
        assert new["streams"] == ["chat"]
        bob.wait("session.state", id=new["id"], state="ringing")
        bob.call("sessions.answer", id=new["id"])
        window = p.locator("#conversation[data-state=established]")
        window.wait_for()
        page_session = window.get_attribute("data-session")
        b_id = new["id"]
        assert rpc(a, "sessions.get", id=page_session)["streams"] == ["chat"]

        # "Send a file" from the chat: the files view, addressed to the same party
        p.get_by_role("button", name="Send a file").click()
        assert p.get_by_role("tab", name="Files").get_attribute("aria-selected") == "true"
        assert p.get_by_label("Send to").input_value() == bob_uri
        tab(page, "Chat")

        # the page types: B is told "active", then "idle" after a pause
        text = p.get_by_label("Message", exact=True)
        text.press_sequentially("Hello B")
        bob.wait("chat.composing", session=b_id, state="active")
        bob.wait("chat.composing", session=b_id, state="idle")
        text.press_sequentially(", with ünïcode ✓")
        text.press("Enter")
        got = bob.wait("chat.message", session=b_id, content="Hello B, with ünïcode ✓")
        sent = p.locator(f"#chat-log li.msg.out[data-id='{got['message_id']}']")
        sent.locator(".tick.delivered").wait_for()
        assert text.input_value() == ""
        bob.call("chat.displayed", session=b_id, message_ids=[got["message_id"]])
        sent.locator(".tick.displayed").wait_for()
        assert sent.get_attribute("data-status") == "displayed"

        # B types and answers: the page shows it, and tells B it was seen
        bob.call("chat.composing", session=b_id, state="active")
        composing = p.get_by_role("status").filter(has_text="is typing")
        composing.wait_for()
        reply = bob.call("chat.send", session=b_id, content="Hi page\nsecond line")
        received = p.locator(f"#chat-log li.msg.in[data-id='{reply['message_id']}']")
        received.wait_for()
        assert "Hi page\nsecond line" in received.inner_text()
        composing.wait_for(state="detached")
        assert p.locator("#chat-composing").inner_text() == ""
        bob.wait("chat.delivery", session=b_id, message_id=reply["message_id"],
                 status="displayed")
        shots.take(page, "chat")
        assert page.serious_violations() == []

        # a reload finds the chat going on, its messages and ticks from the history
        p.reload()
        connected(page)
        tab(page, "Chat")
        p.locator(f"#chats li[data-session='{page_session}'] button").click()
        window.wait_for()
        p.locator(f"#chat-log li.msg.out[data-id='{got['message_id']}'] .tick.displayed") \
            .wait_for()
        p.locator(f"#chat-log li.msg.in[data-id='{reply['message_id']}']").wait_for()

        # the page ends the chat; B sees the hangup
        p.get_by_role("button", name="End chat").click()
        bob.wait("session.state", id=b_id, state="ended")
        p.locator("#conversation[data-state=ended]").wait_for()
        p.get_by_role("button", name="Close").click()
        p.locator("#no-chats").wait_for()

        # B opens a chat: the page asks, accepts, and shows the earlier chat with B
        a_uri = f"sip:local@127.0.0.1:{rpc(a, 'system.state')['sip']['ports']['udp']}"
        tab(page, "Accounts")  # elsewhere: accepting brings the chat forward
        started = bob.call("sessions.start", account="local", to=a_uri, streams=["chat"])
        incoming = p.get_by_role("alertdialog", name="Incoming chat")
        incoming.wait_for()
        assert "127.0.0.1" in incoming.inner_text()
        assert page.serious_violations() == []
        incoming.get_by_role("button", name="Accept").click()
        bob.wait("session.state", id=started["id"], state="established")
        window.wait_for()
        assert p.get_by_role("tab", name="Chat").get_attribute("aria-selected") == "true"
        earlier = p.locator("#chat-log li.msg.old")
        earlier.filter(has_text="Hi page").wait_for()
        earlier.filter(has_text="Hello B, with ünïcode ✓").wait_for()
        assert earlier.filter(has_text="Hello B").get_attribute("data-status") == "displayed"
        # a message that comes while the chat is out of sight waits, counted, for its
        # display notification until the user looks
        tab(page, "History")
        again = bob.call("chat.send", session=started["id"], content="back again")
        p.locator("#chat-unread:text-is('1')").wait_for()
        bob.wait("chat.delivery", session=started["id"], message_id=again["message_id"],
                 status="delivered")
        assert not bob.run(lambda peer: trio_now(peer.events.matching(
            "chat.delivery", message_id=again["message_id"], status="displayed")))
        tab(page, "Chat")
        p.locator(f"#chat-log li.msg.in:not(.old)[data-id='{again['message_id']}']").wait_for()
        bob.wait("chat.delivery", session=started["id"], message_id=again["message_id"],
                 status="displayed")
        assert p.locator("#chat-unread").is_hidden()
        bob.call("sessions.end", id=started["id"])
        p.locator("#conversation[data-state=ended]").wait_for()
        assert p.get_by_label("Message", exact=True).is_disabled()
        assert page.errors == []
        page.close()


def test_chat_beside_a_call_added_by_either_side(tmp_path: Path, browser: Any) -> None:
    """The page adds a chat to a call and B accepts; the page ends it and the call goes on;
    then B proposes one and the page accepts it."""
    with running(tmp_path, daemon_settings()) as (a, b), remote(b) as bob:
        assert bob.peer is not None
        page = Page(browser)
        p = page.page
        p.goto(rpc(a, "web.link")["url"])
        connected(page)
        p.get_by_label("Talk through this browser").uncheck()
        p.get_by_label("Call", exact=True).fill(bob.peer.uri())
        p.get_by_role("button", name="Call", exact=True).click()
        new = bob.wait("session.new", direction="incoming")
        bob.wait("session.state", id=new["id"], state="ringing")
        bob.call("sessions.answer", id=new["id"])
        card = p.locator("#calls li[data-state=established]")
        card.get_by_role("button", name="Add chat").click()
        proposal = bob.wait("session.proposal", id=new["id"], state="pending")
        bob.call("sessions.accept_proposal", id=new["id"], proposal=proposal["proposal"])
        card.get_by_role("button", name="Chat", exact=True).click()
        window = p.locator(f"#conversation[data-state=established]"
                           f"[data-session='{card.get_attribute('data-id')}']")
        window.wait_for()
        p.get_by_label("Message", exact=True).fill("beside the call")
        window.get_by_role("button", name="Send", exact=True).click()
        bob.wait("chat.message", session=new["id"], content="beside the call")
        window.locator(".tick.delivered").wait_for()

        p.get_by_role("button", name="End chat").click()  # the chat goes, the call stays
        bob.wait("session.streams", id=new["id"], change="removed")
        p.locator("#conversation[data-state=ended]").wait_for()
        card.get_by_role("button", name="Add chat").wait_for()

        bob.call("sessions.add_stream", id=new["id"], stream="chat")
        proposed = p.get_by_role("alertdialog", name="Chat proposed")
        proposed.wait_for()
        assert page.serious_violations() == []
        proposed.get_by_role("button", name="Accept").click()
        bob.wait("session.streams", id=new["id"], change="added")
        p.locator("#conversation[data-state=established]").wait_for()
        reply = retry_send(bob, new["id"], "and again")
        p.locator(f"#chat-log li.msg.in[data-id='{reply}']").wait_for()
        p.get_by_role("button", name="End chat").click()  # and once more from the page
        p.locator("#conversation[data-state=ended]").wait_for()
        mark = bob.run(lambda peer: trio_now(peer.events.mark()))
        card.get_by_role("button", name="Add chat").click()
        again = bob.wait("session.proposal", id=new["id"], state="pending", since=mark)
        bob.call("sessions.accept_proposal", id=new["id"], proposal=again["proposal"])
        card.get_by_role("button", name="Chat", exact=True).click()
        window.wait_for()
        card.get_by_role("button", name="Hang up").click()
        bob.wait("session.state", id=new["id"], state="ended")

        # B calls with audio and chat: it rings as a call, and its chat opens once answered
        a_uri = f"sip:local@127.0.0.1:{rpc(a, 'system.state')['sip']['ports']['udp']}"
        both = bob.call("sessions.start", account="local", to=a_uri, streams=["audio", "chat"])
        ringing = p.get_by_role("alertdialog", name="Incoming call")
        ringing.wait_for()
        assert p.locator("#chat-incoming").is_hidden()
        ringing.get_by_role("button", name="Answer").click()
        bob.wait("session.state", id=both["id"], state="established")
        answered = p.locator("#calls li[data-state=established]")
        answered.get_by_role("button", name="Chat", exact=True).click()
        p.locator(f"#conversation[data-state=established]"
                  f"[data-session='{answered.get_attribute('data-id')}']").wait_for()
        hello = retry_send(bob, both["id"], "talking and typing")
        p.locator(f"#chat-log li.msg.in[data-id='{hello}']").wait_for()
        bob.call("sessions.end", id=both["id"])
        p.locator("#conversation[data-state=ended]").wait_for()
        assert page.errors == []
        page.close()


def retry_send(bob: Remote, session: str, content: str) -> str:
    """chat.send once B's side of a chat just accepted is connected (it refuses before)."""
    for _ in range(50):
        try:
            return str(bob.call("chat.send", session=session, content=content)["message_id"])
        except RpcCallError as error:
            if "not connected" not in str(error.data):
                raise
        time.sleep(0.1)
    raise AssertionError("B's chat never connected")


def test_a_message_the_peer_refuses_shows_why(tmp_path: Path, browser: Any) -> None:
    """B takes chat messages of at most 1 KiB: the page's longer one is ticked failed, with
    B's answer (413)."""
    a = SipdProcess(tmp_path, daemon_settings(), name="a").start()
    b = SipdProcess(tmp_path, {**daemon_settings(), "msrp.max_message_size": 1024},
                    name="b").start()
    try:
        with remote(b) as bob:
            assert bob.peer is not None
            page = Page(browser)
            p = page.page
            p.goto(rpc(a, "web.link")["url"])
            connected(page)
            tab(page, "Chat")
            p.get_by_label("Chat with").fill(bob.peer.uri())
            p.get_by_role("button", name="Start chat").click()
            new = bob.wait("session.new", direction="incoming")
            bob.wait("session.state", id=new["id"], state="ringing")
            bob.call("sessions.answer", id=new["id"])
            p.locator("#conversation[data-state=established]").wait_for()
            p.get_by_label("Message", exact=True).fill("long " * 400)
            p.get_by_label("Message", exact=True).press("Enter")
            failed = p.locator("#chat-log li.msg.out .tick.failed")
            failed.wait_for()
            assert "413" in failed.inner_text(), failed.inner_text()
            p.get_by_role("status").filter(has_text="was not delivered").wait_for()
            p.get_by_label("Message", exact=True).fill("short")
            p.get_by_label("Message", exact=True).press("Enter")
            bob.wait("chat.message", session=new["id"], content="short")
            assert page.errors == []
            page.close()
    finally:
        a.stop()
        b.stop()
