"""The presence machines against a real presence server: Kamailio with presence,
presence_xml (presence and presence.winfo), presence_mwi, presence_dialoginfo and rls, driven
by a tiny UDP client (tests/presence/udp_client.py) until the user agent drives them.

PUBLISH (initial, modify, refresh with SIP-If-Match, remove), SUBSCRIBE with NOTIFYs read
into presence states, watcher information, a message summary published by a voicemail
stand-in, the dialog package answered, and a resource list of three contacts: one
subscription, RLMI and PIDF in multipart/related, a state per contact."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import pytest

from sipd.presence.events import (
    Notified,
    PublicationChanged,
    PublicationState,
    SubscriptionState,
)
from sipd.presence.message_summary import MessageCounts, MessageSummary, build_message_summary
from sipd.presence.payload import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    PIDF_TYPE,
    WATCHERINFO_TYPE,
)
from sipd.presence.pidf_build import DocumentIds, PublishedStatus, build_pidf
from sipd.presence.publisher import Publisher, PublishTarget
from sipd.presence.reader import (
    DialogInfoReader,
    MessageSummaryReader,
    PresenceReader,
    WatcherInfoReader,
)
from sipd.presence.subscriber import Subscriber, SubscribeTarget
from sipd.sip.header_values import parse_address
from sipd.sip.timers import TimerSettings
from tests.peers.kamailio import Kamailio
from tests.peers.sipp import Sipp

from .udp_client import UdpClient

pytestmark = pytest.mark.interop

USERS = {"alice": "alice-pw", "bob": "bob-pw", "dave": "dave-pw"}


@pytest.fixture(scope="module")
def kam(tmp_path_factory):
    with Kamailio(tmp_path_factory.mktemp("kamailio-presence"), users=USERS, tls=False,
                  features={"presence"}) as kamailio:
        yield kamailio


def client(kam: Kamailio, user: str) -> UdpClient:
    return UdpClient(user, USERS[user], ("127.0.0.1", kam.udp_port))


def address(kam: Kamailio, user: str):
    return parse_address(f"<{kam.aor(user)}>")


def document(kam: Kamailio, ids: DocumentIds, **params) -> bytes:
    return build_pidf(kam.aor("alice"), PublishedStatus.from_params(**params), ids=ids,
                      now=datetime.datetime.now(datetime.UTC))


def subscription(kam: Kamailio, watcher: UdpClient, user: str, to: str, event: str,
                 accept: str) -> Subscriber:
    return Subscriber(SubscribeTarget(address(kam, to).uri, from_=address(kam, user),
                                      contact=watcher.contact),
                      event=event, accept=(accept,), expires=600)


def notified(watcher: UdpClient, sub: Subscriber) -> list[Notified]:
    keys = {dialog.id for dialog in sub.dialogs}
    return [n for n in watcher.of(Notified) if n.dialog in keys]


def test_publish_subscribe_modify_refresh_unpublish(kam):
    with client(kam, "alice") as alice, client(kam, "bob") as bob:
        pub = Publisher(PublishTarget(address(kam, "alice").uri, from_=address(kam, "alice")),
                        expires=600)
        ids = DocumentIds.new()
        alice.carry_out(pub, pub.publish(document(kam, ids, status="open", note="at my desk",
                                                  activities=["working"]), time.monotonic()))
        alice.pump(lambda: pub.state is PublicationState.PUBLISHED, what="the PUBLISH's 200")
        first_etag = pub.etag
        assert first_etag

        sub = subscription(kam, bob, "bob", "alice", "presence", PIDF_TYPE)
        bob.carry_out(sub, sub.start(time.monotonic()))
        bob.pump(lambda: sub.state is SubscriptionState.ACTIVE and notified(bob, sub),
                 what="an active subscription with a NOTIFY")
        reader = PresenceReader(kam.aor("alice"))

        def latest():
            note = notified(bob, sub)[-1]
            update = reader.read(note.content_type, note.body)
            return update.contacts[-1].view if update.contacts else None

        view = latest()
        assert view is not None and (view.basic, view.status, view.note) == (
            "open", "open", "at my desk")
        assert view.activities == ("working",)

        # a modification: SIP-If-Match and the new body; the watcher hears of it
        seen = len(notified(bob, sub))
        alice.carry_out(pub, pub.publish(document(kam, ids, status="open", note="lunch",
                                                  activities=["meal"]), time.monotonic()))
        alice.pump(lambda: len(alice.of(PublicationChanged)) >= 3, what="the modification")
        assert alice.of(PublicationChanged)[-1].state is PublicationState.PUBLISHED
        bob.pump(lambda: len(notified(bob, sub)) > seen, what="the NOTIFY of the change")
        view = latest()
        assert (view.status, view.note, view.activities) == ("away", "lunch", ("meal",))

        # a refresh: no body, the tag; the server answers 200 with a tag
        answered = len(alice.responses)
        alice.carry_out(pub, pub.refresh(time.monotonic()))
        alice.pump(lambda: any(r.status == 200 for r in alice.responses[answered:]),
                   what="the refresh's 200")
        assert pub.state is PublicationState.PUBLISHED and pub.etag

        # the watcher refreshes in its dialog: 200, and a NOTIFY with the same state
        answered, seen = len(bob.responses), len(notified(bob, sub))
        bob.carry_out(sub, sub.refresh(time.monotonic()))
        bob.pump(lambda: any(r.status == 200 for r in bob.responses[answered:])
                 and len(notified(bob, sub)) > seen, what="the refresh's 200 and NOTIFY")
        assert sub.state is SubscriptionState.ACTIVE and latest().note == "lunch"

        # removed: the watcher hears the presentity is gone (no document, or closed)
        alice.carry_out(pub, pub.unpublish(time.monotonic()))
        alice.pump(lambda: pub.finished, what="the remove's 200")

        def gone() -> bool:
            view = latest()
            return view is None or view.status == "closed"

        bob.pump(gone, what="the NOTIFY of the removal")

        bob.carry_out(sub, sub.unsubscribe(time.monotonic()))
        bob.pump(lambda: sub.finished, what="the final NOTIFY")


def test_winfo_message_summary_and_dialog(kam):
    # the voicemail stand-in publishes for alice with her credentials: Kamailio checks a
    # PUBLISH's credentials against its To, the presentity
    with client(kam, "alice") as alice, client(kam, "bob") as bob, \
            client(kam, "alice") as mailbox:
        # alice watches who watches her
        winfo = subscription(kam, alice, "alice", "alice", "presence.winfo", WATCHERINFO_TYPE)
        alice.carry_out(winfo, winfo.start(time.monotonic()))
        alice.pump(lambda: winfo.state is SubscriptionState.ACTIVE and notified(alice, winfo),
                   what="the winfo subscription")
        watchers = WatcherInfoReader()
        for note in notified(alice, winfo):
            watchers.read(note.content_type, note.body)

        presence = subscription(kam, bob, "bob", "alice", "presence", PIDF_TYPE)
        bob.carry_out(presence, presence.start(time.monotonic()))
        bob.pump(lambda: presence.state is SubscriptionState.ACTIVE, what="bob's subscription")

        def bob_watching() -> bool:
            for note in notified(alice, winfo)[len(handled):]:
                handled.append(note)
                watchers.read(note.content_type, note.body)
            return any(w.uri == kam.aor("bob") and w.status == "active"
                       for w in watchers.watchers.watchers.values())

        handled = list(notified(alice, winfo))
        alice.pump(bob_watching, what="winfo to show bob watching")

        # voicemail: alice subscribes to her message summary; a PUBLISH fills it
        mwi = subscription(kam, alice, "alice", "alice", "message-summary",
                           MESSAGE_SUMMARY_TYPE)
        alice.carry_out(mwi, mwi.start(time.monotonic()))
        alice.pump(lambda: mwi.state is SubscriptionState.ACTIVE, what="the MWI subscription")
        voicemail = Publisher(PublishTarget(address(kam, "alice").uri,
                                            from_=address(kam, "alice")),
                              event="message-summary", content_type=MESSAGE_SUMMARY_TYPE,
                              expires=600)
        summary = MessageSummary(True, kam.aor("alice"),
                                 {"voice-message": MessageCounts(2, 5)})
        mailbox.carry_out(voicemail, voicemail.publish(build_message_summary(summary),
                                                     time.monotonic()))
        mailbox.pump(lambda: voicemail.state is PublicationState.PUBLISHED,
                   what="the message summary's PUBLISH")
        reader = MessageSummaryReader()

        def waiting():
            for note in notified(alice, mwi):
                read = reader.read(note.content_type, note.body)
                if read is not None and read.waiting:
                    return read
            return None

        alice.pump(lambda: waiting() is not None, what="the message summary NOTIFY")
        assert (waiting().new, waiting().old) == (2, 5)

        # busy lamps: the dialog package is there (no calls: an empty full state)
        lamp = subscription(kam, alice, "alice", "bob", "dialog", DIALOG_INFO_TYPE)
        alice.carry_out(lamp, lamp.start(time.monotonic()))
        alice.pump(lambda: lamp.state is SubscriptionState.ACTIVE and notified(alice, lamp),
                   what="the dialog subscription")
        calls = DialogInfoReader()
        for note in notified(alice, lamp):
            calls.read(note.content_type, note.body)
        assert not calls.dialogs.busy

        for watcher, sub in ((alice, winfo), (bob, presence), (alice, mwi), (alice, lamp)):
            watcher.carry_out(sub, sub.unsubscribe(time.monotonic()))
            watcher.pump(lambda sub=sub: sub.finished, what="an unsubscription")
        mailbox.carry_out(voicemail, voicemail.unpublish(time.monotonic()))
        mailbox.pump(lambda: voicemail.finished, what="the summary's removal")


RLS_SERVICES = """<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"
    xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
 <service uri="sip:friends@{domain}">
  <list name="friends">
   <rl:entry uri="sip:alice@{domain}"/>
   <rl:entry uri="sip:bob@{domain}"/>
   <rl:entry uri="sip:carol@{domain}"/>
  </list>
  <packages><package>presence</package></packages>
 </service>
</rls-services>"""


def store_rls_services(kam: Kamailio, owner: str) -> None:
    """Puts `owner`'s rls-services document where Kamailio's integrated XCAP server keeps it
    (the db_text xcap table, which Kamailio reads again when the file changes): what an XCAP
    PUT would leave there. Document type 8 is Kamailio's RLS_SERVICE."""
    assert kam.run_dir is not None
    table = kam.run_dir / "dbtext" / "xcap"
    doc = " ".join(RLS_SERVICES.format(domain=kam.domain).split("\n"))
    escaped = doc.replace("\\", "\\\\").replace(":", "\\:")
    row = f"1:{owner}:{kam.domain}:{escaped}:8:etag-1:0:rls-services/users/sip\\:{owner}@" \
          f"{kam.domain}/index:0\n"
    stat = table.stat()
    with table.open("a") as file:
        file.write(row)
    os.chown(table, stat.st_uid, stat.st_gid)


def test_a_resource_list_gives_one_subscription_and_a_state_per_contact(kam):
    store_rls_services(kam, "dave")
    with client(kam, "alice") as alice, client(kam, "dave") as dave:
        pub = Publisher(PublishTarget(address(kam, "alice").uri, from_=address(kam, "alice")),
                        expires=600)
        alice.carry_out(pub, pub.publish(document(kam, DocumentIds.new(), status="open",
                                                  note="here"), time.monotonic()))
        alice.pump(lambda: pub.state is PublicationState.PUBLISHED, what="alice's PUBLISH")

        friends = Subscriber(SubscribeTarget(parse_address(f"<sip:friends@{kam.domain}>").uri,
                                             from_=address(kam, "dave"),
                                             contact=dave.contact),
                             accept=(PIDF_TYPE,), expires=600, eventlist=True,
                             timers=TimerSettings(t1=0.05))
        dave.carry_out(friends, friends.start(time.monotonic()))
        reader = PresenceReader(f"sip:friends@{kam.domain}")
        states: dict[str, object] = {}
        read = 0

        def alice_seen() -> bool:
            nonlocal read
            for note in notified(dave, friends)[read:]:
                read += 1
                assert note.content_type and note.content_type.startswith("multipart/related")
                for contact in reader.read(note.content_type, note.body).contacts:
                    states[contact.contact] = contact
            alice_state = states.get(kam.aor("alice"))
            return alice_state is not None and alice_state.view is not None

        dave.pump(alice_seen, timeout=15.0, what="the list's NOTIFY with alice's state")
        assert set(states) == {kam.aor(user) for user in ("alice", "bob", "carol")}
        assert states[kam.aor("alice")].view.note == "here"
        assert len(friends.dialogs) == 1  # one subscription for the three of them
        # a refresh in the dialog reaches the list server (through the proxy's Record-Route)
        answered = len(dave.responses)
        dave.carry_out(friends, friends.refresh(time.monotonic()))
        dave.pump(lambda: any(r.status == 200 for r in dave.responses[answered:]),
                  what="the refresh's 200")
        assert friends.state is SubscriptionState.ACTIVE
        # Kamailio's rls answers the unsubscription 200 but sends no final NOTIFY: the
        # subscriber stops waiting for it after 64*T1 (here T1 is 50 ms)
        answered = len(dave.responses)
        dave.carry_out(friends, friends.unsubscribe(time.monotonic()))
        dave.pump(lambda: friends.finished, what="the end of the list subscription")
        assert [r.status for r in dave.responses[answered:]] == [200]
        alice.carry_out(pub, pub.unpublish(time.monotonic()))
        alice.pump(lambda: pub.finished, what="alice's removal")


SCENARIOS = Path(__file__).with_name("scenarios")


def test_a_call_lights_the_busy_lamp(kam, tmp_path):
    """pua_dialoginfo publishes the state of a call the proxy routes (sipp to sipp); a third
    party watching the caller's dialog state sees it confirmed, then terminated."""
    sipp = Sipp(tmp_path)
    with client(kam, "bob") as bob:
        lamp = subscription(kam, bob, "bob", "alice", "dialog", DIALOG_INFO_TYPE)
        bob.carry_out(lamp, lamp.start(time.monotonic()))
        bob.pump(lambda: lamp.state is SubscriptionState.ACTIVE, what="the dialog subscription")
        calls = DialogInfoReader()
        read = 0
        seen: list[str] = []

        def lamp_shows(state: str) -> bool:
            nonlocal read
            for note in notified(bob, lamp)[read:]:
                read += 1
                seen.extend(d.state for d in calls.read(note.content_type, note.body).changed)
            return state in seen

        callee = sipp.start(SCENARIOS / "call_uas_answer.xml", timeout=20)
        caller = sipp.start(SCENARIOS / "call_uac_auth.xml", target=("127.0.0.1", kam.udp_port),
                            rows=[["alice", kam.domain, "carol", str(callee.local_port),
                                   f"[authentication username=alice "
                                   f"password={USERS['alice']}]"]], timeout=20)
        bob.pump(lambda: lamp_shows("confirmed"), timeout=10.0, what="the lamp to light")
        assert calls.dialogs.busy
        bob.pump(lambda: lamp_shows("terminated"), timeout=10.0, what="the lamp to go out")
        assert not calls.dialogs.busy
        for run in (caller, callee):
            result = run.wait(timeout=15)
            assert result.ok, result.report()
        bob.carry_out(lamp, lamp.unsubscribe(time.monotonic()))
        bob.pump(lambda: lamp.finished, what="the end of the dialog subscription")
