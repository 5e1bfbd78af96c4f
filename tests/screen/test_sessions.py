"""Screen sharing between two real sipd daemons over RPC: Xvfb shows a known colour, x11vnc
serves it, sipd A shares it (bridging to x11vnc), sipd B views it (a loopback port), and
vncdotool connects to B's port and captures the screen; the test checks the colour. Both
directions: A offers to show its screen, or B asks to see A's; and added to a chat."""

from __future__ import annotations

import pytest
import trio

from tests.harness.peer import DaemonPeer
from tests.screen.test_bridge import COLOUR, VNCDO, dominant_colour

pytestmark = pytest.mark.peer

PEER_TOPICS = ("sessions", "chat")


async def capture(viewer: str, path) -> None:
    host, port = viewer.rsplit(":", 1)
    with trio.fail_after(60):
        result = await trio.run_process(
            [str(VNCDO), "-s", f"{host}::{port}", "capture", str(path)],
            capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")


async def viewer_of(peer: DaemonPeer, session: str) -> str:
    event = await peer.wait("session.screen", id=session, role="view")
    line = next(line for line in (await peer.call("sessions.get", id=session))["lines"]
                if line["kind"] == "screen-sharing")
    assert line["screen"]["viewer"] == event["viewer"]
    assert event["viewer"].startswith("127.0.0.1:")
    return event["viewer"]


async def test_a_shares_its_screen_and_b_views_it(a, b, vnc_server, tmp_path):
    mark = b.events.mark()
    started = await a.call("sessions.start", account=a.id, to=b.uri("tcp"),
                           streams=["screen-sharing"],
                           screen={"role": "share", "vnc": f"127.0.0.1:{vnc_server}"})
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    assert new["streams"] == ["screen-sharing"] and new["screen"] == {"role": "view"}
    await b.state(new["id"], "ringing")
    await b.call("sessions.answer", id=new["id"])
    await a.state(started["id"], "established")
    viewer = await viewer_of(b, new["id"])
    await capture(viewer, tmp_path / "seen.png")
    assert dominant_colour(tmp_path / "seen.png") == COLOUR
    # the viewer left: the session ends, saying why
    ended = await b.state(new["id"], "ended")
    assert "VNC side closed" in ended["reason"]
    await a.state(started["id"], "ended")


async def test_b_asks_to_see_the_screen_of_a(a, b, vnc_server, tmp_path):
    mark = a.events.mark()
    started = await b.call("sessions.start", account=b.id, to=a.uri("tcp"),
                           streams=["screen-sharing"], screen={"role": "view"})
    new = await a.events.wait("session.new", direction="incoming", since=mark)
    assert new["screen"] == {"role": "share"}
    await a.state(new["id"], "ringing")
    await a.call("sessions.answer", id=new["id"], screen={"vnc": f"127.0.0.1:{vnc_server}"})
    viewer = await viewer_of(b, started["id"])
    await capture(viewer, tmp_path / "asked.png")
    assert dominant_colour(tmp_path / "asked.png") == COLOUR
    await b.state(started["id"], "ended")


async def test_screen_sharing_is_added_to_a_chat(a, b, vnc_server, tmp_path):
    mark = b.events.mark()
    started = await a.call("sessions.start", account=a.id, to=b.uri("tcp"), streams=["chat"])
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    await b.state(new["id"], "ringing")
    await b.call("sessions.answer", id=new["id"])
    await a.state(started["id"], "established")
    await b.call("sessions.add_stream", id=new["id"], stream="screen-sharing",
                 screen={"role": "view"})
    proposal = await a.wait("session.proposal", id=started["id"], state="pending")
    await a.call("sessions.accept_proposal", id=started["id"], proposal=proposal["proposal"],
                 screen={"vnc": f"127.0.0.1:{vnc_server}"})
    viewer = await viewer_of(b, new["id"])
    sent = (await a.call("chat.send", session=started["id"], content="still here"))
    await b.wait("chat.message", session=new["id"], message_id=sent["message_id"])
    await capture(viewer, tmp_path / "added.png")
    assert dominant_colour(tmp_path / "added.png") == COLOUR
    await a.state(started["id"], "ended")  # the viewer left: the session ends with it
