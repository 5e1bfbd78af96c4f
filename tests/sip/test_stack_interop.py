"""The stack against real peers: Kamailio (OPTIONS, REGISTER with digest auth over UDP, TCP
and TLS) and sipp (a lost response recovered by retransmission, a peer that never answers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from sipd.sip.auth import Credentials, CredentialStore, DigestAuthenticator
from sipd.sip.builder import build_request
from sipd.sip.header_values import parse_address
from sipd.sip.timers import TimerSettings
from sipd.sip.trio.stack import TransactionTimeout, TransportError, open_sip_stack
from sipd.sip.trio.tls import TlsConfig
from sipd.sip.uri import parse_uri
from tests.harness.sip_stack import LOOPBACK, Target, config, message_request
from tests.harness.waits import off_loop
from tests.peers.fixtures import PEER_USERS
from tests.peers.ports import is_free

pytestmark = pytest.mark.interop


def kamailio_target(kamailio, transport: str) -> Target:
    port = {"udp": kamailio.udp_port, "tcp": kamailio.tcp_port, "tls": kamailio.tls_port}
    host = kamailio.domain if transport == "tls" else LOOPBACK
    return Target(transport, host, LOOPBACK, port[transport])


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_options_to_kamailio(kamailio, transport):
    tls = TlsConfig(ca_file=kamailio.ca_cert_path)
    target = kamailio_target(kamailio, transport)
    async with open_sip_stack(config(tls=tls)) as stack:
        uri = parse_uri(f"sip:{LOOPBACK}:{target.port};transport={transport}")
        request = build_request("OPTIONS", uri, from_=parse_address("<sip:probe@example.test>"),
                                to=parse_address(f"<{uri}>"))
        response = await stack.send_request(request, target)
        assert response.status == 200
        # Kamailio stamped what it saw: we learned our address
        assert stack.learned_address(transport, target)[0] == LOOPBACK


async def test_tls_to_kamailio_fails_clearly_without_its_ca(kamailio):
    async with open_sip_stack(config(tls=TlsConfig())) as stack:  # system CAs only
        request = message_request(method="OPTIONS")
        with pytest.raises(TransportError, match="certificate verification failed") as info:
            await stack.send_request(request, kamailio_target(kamailio, "tls"))
    assert f"127.0.0.1:{kamailio.tls_port} (example.test)" in str(info.value)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_register_with_digest_auth_at_kamailio(kamailio, transport):
    ours = kamailio.ca.issue("sipd", ["sipd.example.test"])  # so that we listen on TLS too
    tls = TlsConfig(ca_file=kamailio.ca_cert_path, cert_file=ours.cert_path,
                    key_file=ours.key_path)
    target = kamailio_target(kamailio, transport)
    async with open_sip_stack(config(tls=tls)) as stack:
        aor = parse_address("<sip:alice@example.test>")

        def register(expires: int):
            host, port = stack.local_contact(transport, target)
            contact = parse_address(f"<sip:alice@{host}:{port};transport={transport}>")
            return build_request("REGISTER", parse_uri("sip:example.test"), from_=aor, to=aor,
                                 contact=contact, call_id=call_id, cseq=cseq,
                                 headers=[("Expires", str(expires))])

        auth = DigestAuthenticator(CredentialStore([Credentials("alice", PEER_USERS["alice"])]))
        call_id, cseq = f"reg-{transport}-{time.monotonic_ns()}", 1
        request = register(60)
        challenge = await stack.send_request(request, target)
        assert challenge.status == 401
        retry = auth.authenticate(request, challenge).request
        assert retry is not None
        response = await stack.send_request(retry, target)
        assert response.status == 200, response

        contacts = await off_loop(kamailio.contacts, "alice")
        assert len(contacts) == 1
        if transport != "udp":
            assert f"transport={transport}" in contacts[0]

        # the refresh is authorised up front (next nonce count) and removes the binding
        cseq = retry.cseq.number + 1
        unregister = register(0)
        auth.authorize_preemptively(unregister)
        response = await stack.send_request(unregister, target)
        assert response.status == 200
        assert await off_loop(kamailio.contacts, "alice") == []


# --- sipp ---------------------------------------------------------------------------------

ANSWER = """
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]uas[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      {extra}Content-Length: 0
"""

# The first 200 is "lost" (sipp never sends it); sipp's own retransmission detection is off
# (-nr) so that our retransmission reaches the second <recv> and gets the second 200.
LOSES_FIRST_ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="loses the first answer">
  <recv request="{method}"/>
  <send lost="100"><![CDATA[
{first}
  ]]></send>
  <recv request="{method}"/>
  <send><![CDATA[
{second}
  ]]></send>
</scenario>
"""

NEVER_ANSWERS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="never answers">
  <recv request="MESSAGE"/>
  <pause milliseconds="20000"/>
</scenario>
"""


async def wait_listening(port: int) -> None:
    """Until sipp has bound its UDP port (bounded)."""
    with trio.fail_after(10):
        while is_free(port, tcp=False):
            await trio.sleep(0.05)


def scenario(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.xml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("method", ["MESSAGE", "REGISTER"])
async def test_lost_response_is_recovered_by_retransmission(sipp, tmp_path, method):
    text = LOSES_FIRST_ANSWER.format(method=method, first=ANSWER.format(extra=""),
                                     second=ANSWER.format(extra="X-Answer: second\n      "))
    run = sipp.start(scenario(tmp_path, "lose_first", text), transport="udp", timeout=20,
                     extra_args=["-nr"])
    try:
        await wait_listening(run.local_port)
        timers = TimerSettings(t1=0.1, t2=0.4, t4=0.5)
        async with open_sip_stack(config(timers=timers, transports=("udp",))) as stack:
            if method == "REGISTER":
                aor = parse_address("<sip:alice@example.test>")
                request = build_request("REGISTER", parse_uri("sip:example.test"), from_=aor,
                                        to=aor, headers=[("Expires", "60")])
            else:
                request = message_request()
            with trio.fail_after(10):
                response = await stack.send_request(
                    request, Target("udp", LOOPBACK, LOOPBACK, run.local_port))
        assert response.status == 200
        assert response.headers.get("X-Answer") == "second"
        result = await off_loop(run.wait, 10)
        assert result.ok, result.report()
        assert result.messages.count(f"{method} sip:") >= 2  # the original and a retransmission
    finally:
        run.stop()


async def test_peer_that_never_answers_times_out_after_64_t1(sipp, tmp_path):
    run = sipp.start(scenario(tmp_path, "never_answers", NEVER_ANSWERS), transport="udp",
                     timeout=30)
    try:
        await wait_listening(run.local_port)
        timers = TimerSettings(t1=0.05, t2=0.4, t4=0.5)
        async with open_sip_stack(config(timers=timers, transports=("udp",))) as stack:
            target = Target("udp", LOOPBACK, LOOPBACK, run.local_port)
            with trio.fail_after(15):
                with pytest.raises(TransactionTimeout, match=r"within 3.2 s"):
                    await stack.send_request(message_request(), target)
            assert stack.layer.transactions == []
    finally:
        run.stop()
