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
    mark_a, mark_b = a.events.mark(), b.events.mark()
    await capture(viewer, tmp_path / "added.png")
    assert dominant_colour(tmp_path / "added.png") == COLOUR
    # the viewer left: only the screen stream goes (B's re-INVITE, its line at port 0)
    for peer, sid, by in ((b, new["id"], "local"), (a, started["id"], "remote")):
        removed = await peer.wait("session.streams", id=sid, change="removed",
                                  stream="screen-sharing")
        assert removed["streams"] == ["chat"] and removed["by"] == by, removed
    # the session and its chat live on
    for peer, sid in ((a, started["id"]), (b, new["id"])):
        got = await peer.call("sessions.get", id=sid)
        assert got["state"] == "established" and got["streams"] == ["chat"], got
    again = await b.call("chat.send", session=new["id"], content="and after")
    await a.wait("chat.message", session=started["id"], message_id=again["message_id"])
    assert not a.events.matching("session.state", since=mark_a, id=started["id"],
                                 state="ended")
    assert not b.events.matching("session.state", since=mark_b, id=new["id"], state="ended")
    await a.call("sessions.end", id=started["id"])
    await b.state(new["id"], "ended")


async def test_the_shared_vnc_server_leaving_removes_only_the_screen(a, b, tmp_path):
    """The sharing side's VNC server goes away (x11vnc stopped) in a chat + screen session:
    A removes its screen line, the chat goes on."""
    from tests.screen.test_bridge import start_vnc_server

    with start_vnc_server(tmp_path) as (vnc_port, stop):
        mark = b.events.mark()
        started = await a.call("sessions.start", account=a.id, to=b.uri("tcp"),
                               streams=["chat", "screen-sharing"],
                               screen={"role": "share", "vnc": f"127.0.0.1:{vnc_port}"})
        new = await b.events.wait("session.new", direction="incoming", since=mark)
        await b.state(new["id"], "ringing")
        await b.call("sessions.answer", id=new["id"])
        await a.state(started["id"], "established")
        host, port = (await viewer_of(b, new["id"])).rsplit(":", 1)
        # a viewer that stays: it reads x11vnc's RFB greeting through both daemons
        viewer = await trio.open_tcp_stream(host, int(port))
        greeting = b""
        with trio.fail_after(30):
            while not greeting.endswith(b"\n"):
                greeting += await viewer.receive_some(12)
        assert greeting.startswith(b"RFB 003.")
        await trio.to_thread.run_sync(stop)  # the VNC server A bridges to leaves
        for peer, sid, by in ((a, started["id"], "local"), (b, new["id"], "remote")):
            removed = await peer.wait("session.streams", id=sid, change="removed",
                                      stream="screen-sharing")
            assert removed["streams"] == ["chat"] and removed["by"] == by, removed
        sent = await a.call("chat.send", session=started["id"], content="screen gone")
        await b.wait("chat.message", session=new["id"], message_id=sent["message_id"])
        got = await b.call("sessions.get", id=new["id"])
        assert got["state"] == "established" and got["streams"] == ["chat"], got
        await b.call("sessions.end", id=new["id"])
        await a.state(started["id"], "ended")
        await viewer.aclose()
