"""Files between two sipd daemons whose accounts are registered at Kamailio: the INVITE
through the proxy, the MSRP directly between the daemons or through Kamailio's msrp relay
(RFC 4976, chunks of 2 KB); a file from a contact taken without the user when the account
says so."""

from __future__ import annotations

import pytest

from tests.harness.files import FILE_TOPICS, make_file, push, sha1_of
from tests.harness.peer import registered_user
from tests.sessions.test_chat_kamailio import msrp_settings

pytestmark = pytest.mark.interop

TOPICS = (*FILE_TOPICS, "accounts")


async def test_a_file_between_accounts_registered_at_kamailio(kamailio_factory, tmp_path):
    kamailio = kamailio_factory(tls=True)
    source = make_file(tmp_path / "through kamailio.bin", 10 * 1024 * 1024)
    async with registered_user(tmp_path, kamailio, "alice", topics=TOPICS) as alice, \
            registered_user(tmp_path, kamailio, "bob", "tcp", topics=TOPICS) as bob:
        _, b_id, done = await push(alice, bob, source, to=kamailio.aor("bob"))
        rows = (await bob.call("history.files", session=b_id))["files"]
        assert [(r["direction"], r["result"], r["path"]) for r in rows] == [
            ("incoming", "completed", done["path"])]
        assert rows[0]["remote"].startswith("sip:alice@")


async def test_a_file_through_the_kamailio_msrp_relay(kamailio_factory, tmp_path):
    kamailio = kamailio_factory(tls=True, features={"msrp"})
    # 10 MB in 2 KB frames: the test Kamailio queues up to 32 MB a connection (tcp and tls
    # write queues), more than a burst the next hop is slow to read (tests/peers/kamailio.cfg.in)
    source = make_file(tmp_path / "relayed.bin", 10 * 1024 * 1024)
    async with registered_user(tmp_path, kamailio, "alice", topics=TOPICS,
                               settings=msrp_settings(kamailio, "tls", True)) as alice, \
            registered_user(tmp_path, kamailio, "bob", topics=TOPICS,
                            settings=msrp_settings(kamailio, "tls", False)) as bob:
        a_id, _, done = await push(alice, bob, source, to=kamailio.aor("bob"))
        assert done["hash"] == sha1_of(source) == sha1_of(done["path"])
        assert (await alice.state(a_id, "ended"))["reason"] == "completed"
        line = (await alice.call("sessions.get", id=a_id))["lines"][0]
        assert line["local_path"][0].startswith(f"msrps://127.0.0.1:{kamailio.tls_port}/")


async def test_a_file_from_a_contact_is_taken_when_the_account_says_so(kamailio_factory,
                                                                       tmp_path):
    kamailio = kamailio_factory(tls=True)
    source = make_file(tmp_path / "from a friend.txt", 5000)
    async with registered_user(tmp_path, kamailio, "alice", topics=TOPICS) as alice, \
            registered_user(tmp_path, kamailio, "bob", topics=TOPICS) as bob:
        await bob.call("accounts.update", id=bob.id,
                       changes={"accept_files_from_contacts": True})
        # not a contact yet: it waits for the user
        mark = bob.events.mark()
        first = await alice.call("files.send", account=alice.id, to=kamailio.aor("bob"),
                                 path=str(source))
        new = await bob.events.wait("session.new", direction="incoming", since=mark)
        await bob.state(new["id"], "ringing")
        await bob.call("sessions.reject", id=new["id"])
        await alice.state(first["id"], "failed")
        await bob.call("contacts.add", account=bob.id, uri=kamailio.aor("alice"))
        mark = bob.events.mark()
        second = await alice.call("files.send", account=alice.id, to=kamailio.aor("bob"),
                                  path=str(source))
        new = await bob.events.wait("session.new", direction="incoming", since=mark)
        done = await bob.events.wait("file.transfer", session=new["id"], state="completed")
        assert sha1_of(done["path"]) == sha1_of(source)
        assert (await alice.state(second["id"], "ended"))["reason"] == "completed"
