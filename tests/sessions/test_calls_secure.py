"""Secure calls through Kamailio: SRTP-mandatory media with baresip, and SIP over TLS.

- alice is a sipd with rtp.srtp = mandatory; bob is baresip with the srtp module loaded and
  `mediaenc=srtp-mand` on his account. The call must carry RTP/SAVP with SDES keys (a=crypto),
  and each end must hear the other's tone.
- alice and dave are two sipd daemons registered at Kamailio over TLS (Kamailio as outbound
  proxy on its TLS port), each trusting Kamailio's CA (tls.ca_list) and with a certificate of
  its own (tls.certificate, signed by a CA made here) so that its TLS listener runs and Kamailio
  can open a TLS connection to the callee.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.harness.audio import (
    CALLEE_TONE,
    CALLER_TONE,
    assert_hears,
    finished_wav,
    recording_done,
    sipd_plays_and_records,
    sipd_talk,
)
from tests.harness.interop import TALK_SECONDS, call_user, sipd_calls_baresip
from tests.harness.peer import DaemonPeer
from tests.harness.useragent import PEER_TIMEOUT
from tests.harness.waits import off_loop
from tests.peers.baresip import Baresip, write_tone_wav
from tests.peers.certs import TestCA
from tests.peers.fixtures import PEER_USERS

pytestmark = pytest.mark.interop


def make_certificate(directory: Path, stem: str) -> tuple[Path, Path]:
    """A fresh CA and a certificate for 127.0.0.1/localhost signed by it: (key+cert PEM, CA)."""
    ca = TestCA(directory / f"{stem}-ca", name=f"{stem} test CA")
    issued = ca.issue(stem, ["localhost"], ["127.0.0.1"])
    return issued.chain_path, ca.ca_cert_path


# -- SRTP mandatory: sipd <-> baresip ----------------------------------------------------------

class SrtpBaresip(Baresip):
    """baresip with the srtp module (SDES) loaded."""

    def _write_config(self) -> None:
        super()._write_config()
        config = self.config_dir / "config"
        config.write_text(config.read_text() + "module srtp.so\n")


@pytest.fixture
async def alice_srtp(tmp_path, kamailio):
    async with call_user(tmp_path, kamailio, "alice", "udp",
                         {"rtp.srtp": "mandatory"}) as user:
        yield user


def srtp_bob(peers: Any, kamailio: Any, tmp_path: Path, tone: float) -> SrtpBaresip:
    source = write_tone_wav(tmp_path / f"bob-{tone}.wav", frequency=tone, seconds=60)
    bob = SrtpBaresip(tmp_path, account=kamailio.aor("bob"), password=PEER_USERS["bob"],
                      outbound=kamailio.proxy_uri("udp"), ca_file=kamailio.ca_cert_path,
                      audio_source=source, extra_account_params="mediaenc=srtp-mand")
    peers.add(bob)
    return bob.start()


def assert_srtp_media(view: dict[str, Any]) -> None:
    media = view["media"]
    assert media.get("srtp") is True, view
    assert media.get("proto") == "RTP/SAVP", view


def assert_baresip_srtp(bob: Baresip) -> None:
    """sipd logs no SDP bodies; baresip says it negotiated SDES-SRTP (from our a=crypto)."""
    log = bob.log_text()
    assert "Using media encryption 'srtp-mand'" in log, log
    assert "srtp: audio: SRTP is Enabled" in log, log

async def talk_over_srtp(alice: DaemonPeer, a_id: str, bob: Any, tmp_path: Path, *,
                         alice_tone: float, bob_tone: float) -> None:
    """Alice plays her tone into the call with baresip (which plays `bob_tone`), checks the call
    is SRTP on her side, hangs up; baresip used SRTP too, and each heard the other."""
    heard_by_alice = await sipd_plays_and_records(alice, a_id, tmp_path, alice_tone)
    await trio.sleep(TALK_SECONDS)
    view = await alice.call("sessions.get", id=a_id)
    print("alice's session:", view)
    assert_srtp_media(view)

    await alice.call("sessions.end", id=a_id)
    await alice.state(a_id, "ended")
    await off_loop(bob.wait_event, "CALL_CLOSED", timeout=PEER_TIMEOUT)
    await recording_done(alice, a_id, heard_by_alice)
    heard_by_bob = await finished_wav(lambda: bob.recordings()["received"],
                                      "baresip's recording of the call")
    assert_baresip_srtp(bob)
    assert_hears(heard_by_alice, bob_tone, alice_tone)
    assert_hears(heard_by_bob, alice_tone, bob_tone)


async def test_srtp_mandatory_sipd_calls_baresip(kamailio, alice_srtp, peers, tmp_path):
    alice = alice_srtp
    bob = srtp_bob(peers, kamailio, tmp_path, CALLEE_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")

    a_id = await sipd_calls_baresip(alice, bob, kamailio.aor("bob"))

    await talk_over_srtp(alice, a_id, bob, tmp_path, alice_tone=CALLER_TONE, bob_tone=CALLEE_TONE)


async def test_srtp_mandatory_baresip_calls_sipd(kamailio, alice_srtp, peers, tmp_path):
    alice = alice_srtp
    bob = srtp_bob(peers, kamailio, tmp_path, CALLER_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")

    mark = alice.events.mark()
    await off_loop(bob.dial, kamailio.aor("alice"))
    new = await alice.events.wait("session.new", direction="incoming", since=mark)
    a_id = new["id"]
    await alice.state(a_id, "ringing")
    await alice.call("sessions.answer", id=a_id)
    await alice.state(a_id, "established")
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)

    await talk_over_srtp(alice, a_id, bob, tmp_path, alice_tone=CALLEE_TONE, bob_tone=CALLER_TONE)


# -- SIP over TLS: sipd <-> sipd -----------------------------------------------------------------

def tls_daemon_settings(kamailio: Any, tmp_path: Path, user: str) -> dict[str, Any]:
    certificate, _ca = make_certificate(tmp_path / "certs", f"sipd-{user}")
    return {"tls.ca_list": str(kamailio.ca_cert_path), "tls.certificate": str(certificate)}


@pytest.fixture
async def alice_tls(tmp_path, kamailio):
    async with call_user(tmp_path, kamailio, "alice", "tls",
                         tls_daemon_settings(kamailio, tmp_path, "alice")) as user:
        yield user


@pytest.fixture
async def dave_tls(tmp_path, kamailio):
    async with call_user(tmp_path, kamailio, "dave", "tls",
                         tls_daemon_settings(kamailio, tmp_path, "dave")) as user:
        yield user


async def test_sipd_calls_sipd_over_tls(kamailio, alice_tls, dave_tls, tmp_path):
    alice, dave = alice_tls, dave_tls
    assert "tls" in alice.ports and "tls" in dave.ports, (alice.ports, dave.ports)
    bindings = kamailio.contacts("dave")
    print("dave's bindings at Kamailio:", bindings)
    assert bindings and all("transport=tls" in b for b in bindings), bindings

    mark = dave.events.mark()
    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("dave"),
                             streams=["audio"]))["id"]
    new = await dave.events.wait("session.new", direction="incoming", since=mark)
    d_id = new["id"]
    assert new["remote"] == kamailio.aor("alice"), new
    await dave.state(d_id, "ringing")
    await alice.state(a_id, "ringing")
    await dave.call("sessions.answer", id=d_id)
    await alice.state(a_id, "established")
    await dave.state(d_id, "established")

    await sipd_talk(alice, a_id, dave, d_id, tmp_path)
    # the INVITE went out over TLS from alice and reached dave over TLS
    assert f"sending INVITE {kamailio.aor('dave')} to <Hop tls " in alice.daemon.log()
    assert re.search(r"received INVITE sip:\S+;transport=tls from <Source tls ",
                     dave.daemon.log()), "dave did not receive the INVITE over TLS"
