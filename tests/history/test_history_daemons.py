"""History in real daemons: two sipd exchange MESSAGEs and calls, and both remember them.

The daemons talk straight to each other (their built-in `local` accounts); everything is
driven and read over RPC, as a client does. Kill tests use daemons of their own.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import pytest
import trio

from sipctl.client import RpcCallError, connect
from tests.harness.peer import DaemonPeer as Peer
from tests.harness.peer import call_and_answer, daemon_settings, open_peer
from tests.harness.process import SipdProcess, running
from tests.history.v1 import DAY, write_v1

TEXT = "Grüße aus dem Verlauf ✓"


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    base = tmp_path_factory.mktemp("history")
    with running(base, daemon_settings()) as started:
        yield started


@pytest.fixture
async def a(daemons):
    async with open_peer(daemons[0]) as peer:
        yield peer


@pytest.fixture
async def b(daemons):
    async with open_peer(daemons[1]) as peer:
        yield peer


async def history(peer: Peer, method: str, **params: object) -> list[dict]:
    result = await peer.call(f"history.{method}", **params)
    return result["sessions" if method == "sessions" else "messages"]


async def test_message_is_in_both_histories(a, b):
    to = b.uri("tcp")
    sent = await a.call("messages.send", account="local", to=to, content=TEXT)
    assert sent["delivered"] is True

    (mine,) = await history(a, "messages", remote=to, query="GRÜ verl")
    assert mine["id"] == sent["id"]
    assert (mine["direction"], mine["remote"], mine["content"], mine["content_type"]) == \
        ("outgoing", to, TEXT, "text/plain")
    assert (mine["status"], mine["code"], mine["kind"]) == ("delivered", 200, "pager")
    # b's row is there as soon as a got its 200: b stored it before answering
    (theirs,) = await history(b, "messages", query="verlauf GRU")
    assert (theirs["direction"], theirs["content"], theirs["status"]) == \
        ("incoming", TEXT, "received")
    assert theirs["remote"] == a.uri("tcp")
    # the same party under another spelling of its URI (scheme, case, params)
    assert await history(b, "messages", remote=a.uri("udp").replace("sip:", "sips:"),
                         query="verlauf") == [theirs]
    assert await history(b, "messages", query="nowhere to be found") == []


async def test_failed_message_keeps_its_status(a):
    dead = f"sip:nobody@127.0.0.1:{a.ports['udp']}"  # our own daemon: 404 for "nobody"
    sent = await a.call("messages.send", account="local", to=dead, content="lost words")
    (row,) = await history(a, "messages", query="lost words")
    assert (row["status"], row["code"]) == ("failed", sent["code"])
    assert sent["delivered"] is False


async def test_call_is_in_both_histories(a, b):
    a_id, b_id = await call_and_answer(a, b)
    await trio.sleep(0.3)
    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "ended")
    await b.state(b_id, "ended")

    for peer, session, direction, remote in ((a, a_id, "outgoing", b.uri()),
                                             (b, b_id, "incoming", a.uri())):
        (row,) = [s for s in await history(peer, "sessions", remote=remote)
                  if s["id"] == session]
        assert (row["direction"], row["remote"], row["streams"]) == (direction, remote,
                                                                    ["audio"])
        assert row["result"] == "completed"
        assert row["start"] <= row["answer"] < row["end"]
        assert row["duration"] == pytest.approx(row["end"] - row["answer"])

    assert (await b.call("history.delete", session=b_id))["sessions"] == 1
    assert [s for s in await history(b, "sessions") if s["id"] == b_id] == []


async def test_unanswered_calls_are_cancelled_and_missed(a, b):
    mark = b.events.mark()
    a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    b_id = (await b.events.wait("session.new", direction="incoming", since=mark))["id"]
    await a.state(a_id, "ringing")
    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "failed")
    await b.state(b_id, "failed")

    assert [(s["result"], s["code"], s["answer"]) for s in await history(a, "sessions")
            if s["id"] == a_id] == [("cancelled", 487, None)]
    assert [s["result"] for s in await history(b, "sessions") if s["id"] == b_id] == ["missed"]


async def test_pages_and_deletion(a, b):
    remote = b.uri()
    for n in range(5):
        await a.call("messages.send", account="local", to=remote, content=f"page test {n}")
    seen, before = [], None
    while True:
        params = {"query": "page test", "limit": 2, **({"before": before} if before else {})}
        result = await a.call("history.messages", **params)
        seen += [m["content"] for m in result["messages"]]
        before = result["next"]
        if before is None:
            break
    assert seen == [f"page test {n}" for n in reversed(range(5))]

    newest = (await history(a, "messages", query="page test", limit=1))[0]
    assert await a.call("history.delete", message=newest["id"]) == \
        {"sessions": 0, "messages": 1, "file_transfers": 0}
    assert len(await history(a, "messages", query="page test")) == 4
    deleted = await a.call("history.delete", remote=remote)
    assert deleted["messages"] >= 4
    assert await history(a, "messages", remote=remote) == []
    assert await history(a, "sessions", remote=remote) == []


async def test_delete_all(tmp_path):
    with running(tmp_path, names=("alone",)) as (daemon,):
        async with connect(daemon.endpoint) as rpc:
            ports = (await rpc.call("system.state"))["sip"]["ports"]
            await rpc.call("messages.send", {"account": "local", "content": "to myself",
                                             "to": f"sip:local@127.0.0.1:{ports['tcp']}"})
            assert len((await rpc.call("history.messages"))["messages"]) == 2  # out and in
            assert (await rpc.call("history.delete", {"all": True}))["messages"] == 2
            assert (await rpc.call("history.messages"))["messages"] == []


@pytest.mark.parametrize("method,params,field", [
    ("history.messages", {"limit": 0}, "limit"),
    ("history.messages", {"limit": 100000}, "limit"),
    ("history.sessions", {"before": -1}, "before"),
    ("history.sessions", {"before": "yesterday"}, "before"),
    ("history.messages", {"query": "  ?!  "}, "query"),
    ("history.messages", {"query": "x" * 2000}, "query"),
    ("history.messages", {"remote": ""}, "remote"),
    ("history.sessions", {"since": 5}, "since"),
    ("history.delete", {}, "all"),
    ("history.delete", {"session": "s", "message": "m"}, "message"),
])
async def test_bad_params_are_refused_clearly(a, method, params, field):
    with pytest.raises(RpcCallError) as refused:
        await a.call(method, **params)
    assert refused.value.code == -32602
    assert field in str(refused.value.data), refused.value.data


async def test_state_shows_history(a, daemons):
    state = (await a.call("system.state"))["history"]
    assert state["enabled"] is True and "reason" not in state
    assert state["path"] == str(daemons[0].state_dir / "history.db")


# -- kill -9, migration, retention, broken files: daemons of their own ------------------------

@pytest.mark.parametrize("locked", ["sender", "receiver"])
async def test_kill_9_right_after_acknowledged_messages_keeps_them(tmp_path, locked):
    """While another process holds a history file's write lock, that daemon cannot store the
    message: the receiver's 200 (and so the reply to messages.send), or the sender's reply,
    must wait. Once the reply comes, both daemons are killed at once; after a restart both
    still have every message."""
    with running(tmp_path) as (first, second):
        locks = [sqlite3.connect((first if locked == "sender" else second).state_dir
                                 / "history.db", isolation_level=None)]
        async with connect(first.endpoint) as rpc_a, connect(second.endpoint) as rpc_b:
            ports = (await rpc_b.call("system.state"))["sip"]["ports"]
            to = f"sip:local@127.0.0.1:{ports['udp']}"

            async def send(n: int) -> dict:
                return await rpc_a.call("messages.send", {
                    "account": "local", "to": to, "content": f"survivor {n}"})

            sent = [await send(0), await send(1)]
            for lock in locks:
                lock.execute("BEGIN IMMEDIATE")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: _append(sent, send(2)))
                with trio.move_on_after(1.5):
                    while len(sent) < 3:
                        await trio.sleep(0.01)
                answered_while_locked = len(sent) == 3
                if not answered_while_locked:
                    for lock in locks:
                        lock.execute("ROLLBACK")
        # The last reply is in: kill both at once, before anything else can happen.
        for daemon in (first, second):
            daemon.signal(signal.SIGKILL)
        for daemon in (first, second):
            daemon.wait()
        for lock in locks:
            lock.close()
        assert not answered_while_locked, "messages.send answered before the history had it"
        for daemon in (first, second):
            daemon.start()
        async with connect(first.endpoint) as rpc_a, connect(second.endpoint) as rpc_b:
            mine = (await rpc_a.call("history.messages", {"query": "survivor"}))["messages"]
            theirs = (await rpc_b.call("history.messages", {"query": "survivor"}))["messages"]
    assert [(m["id"], m["status"]) for m in mine] == \
        [(s["id"], "delivered") for s in reversed(sent)]
    assert [m["content"] for m in theirs] == [f"survivor {n}" for n in (2, 1, 0)]


async def _append(results: list, call) -> None:
    results.append(await call)


async def test_call_going_on_at_kill_9_is_interrupted(tmp_path):
    with running(tmp_path, daemon_settings()) as (first, second):
        async with open_peer(first) as a, open_peer(second) as b:
            a_id, b_id = await call_and_answer(a, b)
            # a read waits for what was published before it to be stored: the answer is in
            # the file before the kill (the history writes behind the events it is told)
            (before,) = [s for s in await history(a, "sessions") if s["id"] == a_id]
            assert before["answer"] is not None and before["end"] is None
        first.signal(signal.SIGKILL)
        first.wait()
        first.start()
        async with open_peer(first) as a:
            (row,) = [s for s in await history(a, "sessions") if s["id"] == a_id]
    assert row["result"] == "interrupted" and row["answer"] is not None and row["end"] is None


async def test_migrates_a_version_1_file_and_prunes_by_keep_days(tmp_path):
    daemon = SipdProcess(tmp_path, name="old")
    write_v1(daemon.state_dir / "history.db", time.time())
    daemon.start()
    try:
        async with connect(daemon.endpoint) as rpc:
            found = (await rpc.call("history.messages", {"query": "version one"}))["messages"]
            assert [m["id"] for m in found] == ["recent-message", "old-message"]
            calls = {s["id"]: s for s in (await rpc.call("history.sessions"))["sessions"]}
            assert calls["open-call"]["result"] == "interrupted"
            assert set(calls) == {"open-call", "old-call"}

            await rpc.call("settings.set", {"key": "history.keep_days", "value": 30})
            with trio.fail_after(10):  # pruned by the writer's next turn
                while len((await rpc.call("history.messages"))["messages"]) != 1:
                    await trio.sleep(0.05)
            assert [s["id"] for s in (await rpc.call("history.sessions"))["sessions"]] == \
                ["open-call"]
    finally:
        daemon.stop()
    assert sqlite3.connect(daemon.state_dir / "history.db").execute(
        "PRAGMA user_version").fetchone()[0] == 2


async def test_keep_days_prunes_at_start(tmp_path):
    write_v1(tmp_path / "keep" / "state" / "history.db", time.time() + DAY * 0.5)  # "old" 39.5 days
    with running(tmp_path, {"history.keep_days": 2}, names=("keep",)) as (daemon,):
        async with connect(daemon.endpoint) as rpc:
            with trio.fail_after(10):
                while len((await rpc.call("history.messages"))["messages"]) != 1:
                    await trio.sleep(0.05)
            (kept,) = (await rpc.call("history.messages"))["messages"]
    assert kept["id"] == "recent-message"


@pytest.mark.parametrize("damage", ["garbage", "directory", "newer"])
async def test_broken_history_file_turns_history_off_not_the_daemon(tmp_path, damage):
    state_dir = tmp_path / "broken" / "state"
    state_dir.mkdir(parents=True)
    path = state_dir / "history.db"
    if damage == "garbage":
        path.write_bytes(b"\x00not a database, just bytes\xff" * 500)
    elif damage == "directory":
        path.mkdir()
    else:
        sqlite3.connect(path).execute("PRAGMA user_version = 99").close()
    with running(tmp_path, names=("broken",)) as (daemon,):
        async with connect(daemon.endpoint) as rpc:
            state = (await rpc.call("system.state"))["history"]
            assert state["enabled"] is False and str(path) in state["reason"]
            with pytest.raises(RpcCallError) as off:
                await rpc.call("history.messages")
            assert off.value.code == -32005 and str(path) in off.value.data["reason"]
            # the rest of the daemon works: a MESSAGE to itself is taken and answered
            ports = (await rpc.call("system.state"))["sip"]["ports"]
            sent = await rpc.call("messages.send", {
                "account": "local", "to": f"sip:local@127.0.0.1:{ports['udp']}",
                "content": "still here"})
            assert sent["delivered"] is True
    assert "history is off" in daemon.log()
    if damage == "garbage":
        assert path.read_bytes().startswith(b"\x00not a database")  # left as it was


async def test_history_that_stops_taking_writes_turns_off_not_the_daemon(tmp_path):
    """The files become immutable under the running daemon (as a failing or full disk would
    refuse writes): the next commit fails, the history turns off, messages still flow."""
    with running(tmp_path, names=("refused",)) as (daemon,):
        files = [daemon.state_dir / "history.db", daemon.state_dir / "history.db-wal"]
        async with connect(daemon.endpoint) as rpc:
            to = f"sip:local@127.0.0.1:{(await rpc.call('system.state'))['sip']['ports']['tcp']}"
            await rpc.call("messages.send", {"account": "local", "to": to, "content": "one"})
            subprocess.run(["chattr", "+i", *map(str, files)], check=True)  # noqa: ASYNC221 (instant)
            try:
                sent = await rpc.call("messages.send",
                                      {"account": "local", "to": to, "content": "two"})
                assert sent["delivered"] is True
                state = (await rpc.call("system.state"))["history"]
                assert state["enabled"] is False and "I/O error" in state["reason"], state
                with pytest.raises(RpcCallError) as off:
                    await rpc.call("history.messages")
                assert off.value.code == -32005
                again = await rpc.call("messages.send",
                                       {"account": "local", "to": to, "content": "three"})
                assert again["delivered"] is True
            finally:
                subprocess.run(["chattr", "-i", *map(str, files)], check=True)  # noqa: ASYNC221 (instant)
    assert daemon.log().count("history is off") == 1
