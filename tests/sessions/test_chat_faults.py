"""A chat peer that vanishes in the middle of a conversation: the messages it never took are
told failed with the reason, the session ends failed with it (BYE), and the daemon's other
sessions carry on."""

from __future__ import annotations

import signal

from tests.harness.peer import daemon_settings, open_peer
from tests.harness.process import running
from tests.harness.waits import EVENT_TIMEOUT

PEER_TOPICS = ("sessions", "media", "chat")
CHUNKY = "y" * 900_000  # each message is many chunks; a stopped peer soon takes no more


async def chat_between(a, b):
    mark = b.events.mark()
    a_id = (await a.call("sessions.start", account="local", to=b.uri(),
                         streams=["chat"]))["id"]
    b_id = (await b.events.wait("session.new", direction="incoming", since=mark))["id"]
    await b.call("sessions.answer", id=b_id)
    await a.state(a_id, "established")
    await b.state(b_id, "established")
    return a_id, b_id


async def test_a_peer_killed_mid_message(tmp_path):
    # T1 = 50 ms: the BYE to the dead peer gives up within seconds
    settings = {**daemon_settings(), "sip.t1": 50}
    with running(tmp_path, settings, names=("a", "b", "c")) as (one, two, three):
        async with open_peer(one, PEER_TOPICS) as a, open_peer(two, PEER_TOPICS) as b, \
                open_peer(three, PEER_TOPICS) as c:
            ab, ba = await chat_between(a, b)
            ac, ca = await chat_between(a, c)
            first = (await a.call("chat.send", session=ab, content="before"))["message_id"]
            await b.events.wait("chat.message", session=ba, message_id=first)

            two.signal(signal.SIGSTOP)  # b stops reading: a's messages pile up unacknowledged
            pending = [(await a.call("chat.send", session=ab, content=CHUNKY))["message_id"]
                       for _ in range(8)]
            two.signal(signal.SIGKILL)
            two.signal(signal.SIGCONT)

            failures = [await a.events.wait("chat.delivery", session=ab, message_id=message_id,
                                            status="failed", timeout=EVENT_TIMEOUT)
                        for message_id in pending[-1:]]
            told = a.events.matching("chat.delivery", session=ab, status="failed")
            assert told and all(f.get("reason") for f in failures), told
            assert not a.events.matching("chat.delivery", session=ab, message_id=pending[-1],
                                         status="delivered")
            ended = await a.state(ab, "failed", timeout=30)
            assert "connection" in ended["reason"], ended
            assert a.events.matching("session.state", id=ab, state="ending")  # our BYE

            # the daemon and its other session are fine
            after = (await a.call("chat.send", session=ac, content="still here"))["message_id"]
            assert (await c.events.wait("chat.message", session=ca,
                                        message_id=after))["content"] == "still here"
            await a.events.wait("chat.delivery", session=ac, message_id=after,
                                status="delivered")
            await c.call("sessions.end", id=ca)
            await a.state(ac, "ended")
