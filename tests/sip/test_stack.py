"""Two SipStacks talking over real sockets on 127.0.0.1: UDP, TCP and TLS."""

from __future__ import annotations

import logging

import pytest
import trio

from sipd.sip.trio.stack import (
    SipStack,
    StackConfig,
    TransactionTimeout,
    TransportError,
    open_sip_stack,
)
from sipd.sip.trio.tls import TlsConfig
from tests.harness.sip_stack import (
    LOOPBACK,
    Recorder,
    Target,
    config,
    make_tls,
    message_request,
    target_of,
    two_stacks,
    udp_socket,
)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_message_gets_200_over_each_transport(transport, tmp_path):
    _, server_tls, client_tls = make_tls(tmp_path)
    async with two_stacks({"tls": server_tls}, {"tls": client_tls}) as (a, b, recorder):
        request = message_request(port=b.ports[transport], transport=transport)

        response = await a.send_request(request, target_of(b, transport, "b.example.test"))

        assert response.status == 200
        assert [i.request.body for i in recorder.seen] == [b"hello"]
        incoming = recorder.seen[0]
        assert incoming.transport == transport
        via = request.top_via
        assert via.transport == transport.upper() and via.wants_rport
        assert via.host == LOOPBACK
        if transport == "tls":  # `a` does not listen on TLS: the connection's own port
            assert via.port == a.transports.connections[0].local[1]
        else:
            assert via.port == a.ports[transport]


async def test_ports_are_bound_and_reported():
    async with open_sip_stack(config()) as stack:
        ports = stack.ports
    assert set(ports) == {"udp", "tcp"}  # no TLS listener without a certificate
    assert all(port > 1024 for port in ports.values())


async def test_tls_listener_skipped_without_certificate_but_client_tls_works(tmp_path, caplog):
    _, server_tls, client_tls = make_tls(tmp_path)
    caplog.set_level(logging.WARNING, logger="sipd.sip.trio.transport")
    async with two_stacks({"tls": server_tls}, {"tls": client_tls}) as (a, b, _):
        assert "tls" not in a.ports and "tls" in b.ports
        assert "not listening for SIP over TLS" in caplog.text
        response = await a.send_request(message_request(),
                                        target_of(b, "tls", "b.example.test"))
        assert response.status == 200


async def test_tcp_connection_is_reused_and_responses_come_back_on_it():
    async with two_stacks() as (a, b, recorder):
        for _ in range(5):
            response = await a.send_request(message_request(), target_of(b, "tcp"))
            assert response.status == 200
        assert len(a.transports.connections) == 1
        assert len(b.transports.connections) == 1
        sources = {(i.source.address, i.source.port) for i in recorder.seen}
        assert len(sources) == 1
        (outgoing,) = a.transports.connections
        assert sources == {outgoing.local}


async def test_requests_back_to_a_source_use_its_connection():
    async with two_stacks() as (a, b, recorder):
        a_recorder = Recorder()
        a.set_request_handler(a_recorder)
        await a.send_request(message_request(), target_of(b, "tcp"))
        source = recorder.seen[0].source

        # back over the connection a opened, by its source ...
        response = await b.send_request(message_request("alice"), source)
        assert response.status == 200
        # ... and to a's listening port, thanks to the alias in a's Via (RFC 5923)
        response = await b.send_request(message_request("alice"), target_of(a, "tcp"))
        assert response.status == 200

        assert len(a.transports.connections) == len(b.transports.connections) == 1
        assert [i.source.port for i in a_recorder.seen] == [b.ports["tcp"]] * 2


async def test_concurrent_requests_share_one_new_connection():
    async with two_stacks() as (a, b, recorder):
        results = []

        async def send():
            results.append(await a.send_request(message_request(), target_of(b, "tcp")))

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(send)
        assert [r.status for r in results] == [200] * 4
        assert len(a.transports.connections) == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_options_answered_with_allow_accept_supported(transport):
    async with open_sip_stack(config()) as a, open_sip_stack(config()) as b:
        request = message_request(method="OPTIONS")
        response = await a.send_request(request, target_of(b, transport))
    assert response.status == 200
    assert "MESSAGE" in response.allow and "INVITE" in response.allow
    assert "text/plain" in response.headers.get("Accept")
    assert "Supported" in response.headers


async def test_options_left_by_the_handler_gets_the_default_answer():
    async with two_stacks() as (a, b, recorder):
        recorder.status = 0  # looks, does not answer
        response = await a.send_request(message_request(method="OPTIONS"), target_of(b, "udp"))
    assert response.status == 200 and "OPTIONS" in response.allow
    assert recorder.seen[0].method == "OPTIONS"


async def test_request_for_unknown_user_gets_404():
    async with two_stacks() as (a, b, recorder):
        b.set_local_uri_check(lambda uri: uri.user == "bob")

        unknown = await a.send_request(message_request("nobody"), target_of(b, "udp"))
        known = await a.send_request(message_request("bob"), target_of(b, "udp"))

    assert (unknown.status, known.status) == (404, 200)
    assert [i.request.uri.user for i in recorder.seen] == ["bob"]


async def test_handler_that_raises_gets_500_and_the_stack_goes_on(caplog):
    async def broken(incoming):
        raise RuntimeError("boom")

    async with two_stacks() as (a, b, _):
        b.set_request_handler(broken)
        first = await a.send_request(message_request(), target_of(b, "udp"))
        second = await a.send_request(message_request(), target_of(b, "tcp"))
    assert first.status == second.status == 500
    assert "boom" in caplog.text


async def test_handler_leaving_a_request_unanswered_gets_500():
    async with two_stacks() as (a, b, recorder):
        recorder.status = 0
        response = await a.send_request(message_request(), target_of(b, "udp"))
    assert response.status == 500


async def test_validation_rejects_before_the_handler():
    async with two_stacks() as (a, b, recorder):
        bad_type = message_request()
        bad_type.headers.set("Content-Type", "application/x-unknown")
        require = message_request()
        require.headers.add("Require", "foo")
        method = message_request(method="PUBLISH")

        responses = [await a.send_request(r, target_of(b, "udp"))
                     for r in (bad_type, require, method)]
    assert [r.status for r in responses] == [415, 420, 405]
    assert responses[1].headers.get("Unsupported") == "foo"
    assert recorder.seen == []


async def test_provisional_responses_reach_the_callback():
    async def slow(incoming):
        await incoming.respond(180)
        await incoming.respond(200)

    seen = []
    async with two_stacks() as (a, b, _):
        b.set_request_handler(slow)
        response = await a.send_request(message_request(), target_of(b, "tcp"),
                                        on_provisional=lambda r: seen.append(r.status))
    assert response.status == 200 and seen == [180]


async def test_learned_address_and_local_contact():
    async with two_stacks() as (a, b, _):
        await a.send_request(message_request(), target_of(b, "udp"))
        assert a.learned_address("udp", target_of(b, "udp")) == (LOOPBACK, a.ports["udp"])
        assert a.local_contact("udp", target_of(b, "udp")) == (LOOPBACK, a.ports["udp"])
        assert a.local_contact("tcp") == (LOOPBACK, a.ports["tcp"])


async def test_local_contact_on_a_wildcard_bind_is_the_routed_address():
    async with open_sip_stack(StackConfig(listen_address="0.0.0.0",
                                          transports=("udp",))) as stack:
        host, port = stack.local_contact("udp", Target("udp", LOOPBACK, LOOPBACK, 5060))
    assert (host, port) == (LOOPBACK, stack.ports["udp"])


async def test_no_answer_raises_transaction_timeout():
    silent = udp_socket()  # receives, never answers
    try:
        async with open_sip_stack(config()) as a:
            target = Target("udp", LOOPBACK, LOOPBACK, silent.getsockname()[1])
            with trio.fail_after(10):
                with pytest.raises(TransactionTimeout, match="within 3.2 s"):
                    await a.send_request(message_request(), target)
    finally:
        silent.close()


async def test_connection_refused_raises_transport_error():
    closed = udp_socket()  # a TCP port nobody listens on: take a free number from UDP
    port = closed.getsockname()[1]
    closed.close()
    async with open_sip_stack(config()) as a:
        with pytest.raises(TransportError, match=f"cannot connect to TCP 127.0.0.1:{port}"):
            await a.send_request(message_request(), Target("tcp", LOOPBACK, LOOPBACK, port))


async def test_disabled_transport_raises_transport_error():
    async with open_sip_stack(config(transports=("udp",))) as a:
        with pytest.raises(TransportError, match="TCP is not enabled"):
            await a.send_request(message_request(), Target("tcp", LOOPBACK, LOOPBACK, 5060))


async def test_connection_lost_before_the_answer_fails_at_once():
    async def hang_up(incoming):
        incoming.source.connection.abort()

    async with two_stacks() as (a, b, _):
        b.set_request_handler(hang_up)
        with trio.fail_after(2):  # well before 64*T1
            with pytest.raises(TransportError, match="closed before a final response"):
                await a.send_request(message_request(), target_of(b, "tcp"))


async def test_tls_verification_fails_without_the_ca(tmp_path):
    _, server_tls, _ = make_tls(tmp_path)
    async with two_stacks({"tls": server_tls}) as (a, b, _):
        with pytest.raises(TransportError, match="certificate verification failed") as info:
            await a.send_request(message_request(), target_of(b, "tls", "b.example.test"))
    assert "tls.ca_list" in str(info.value)


async def test_tls_verification_checks_the_host_name(tmp_path):
    _, server_tls, client_tls = make_tls(tmp_path)
    async with two_stacks({"tls": server_tls}, {"tls": client_tls}) as (a, b, _):
        with pytest.raises(TransportError, match="other.example.test"):
            await a.send_request(message_request(), target_of(b, "tls", "other.example.test"))


async def test_tls_verification_can_be_turned_off(tmp_path):
    _, server_tls, _ = make_tls(tmp_path)
    async with two_stacks({"tls": server_tls},
                          {"tls": TlsConfig(verify_server=False)}) as (a, b, _):
        response = await a.send_request(message_request(),
                                        target_of(b, "tls", "other.example.test"))
    assert response.status == 200


async def test_ack_without_transaction_goes_to_the_handler():
    async with two_stacks() as (a, b, recorder):
        ack = message_request(method="ACK")
        await a.send_stateless(ack, target_of(b, "udp"))
        with trio.fail_after(5):
            await recorder.arrived.wait()
    assert recorder.seen[0].method == "ACK" and recorder.seen[0].transaction is None


async def test_stack_reports_bind_errors():
    async with open_sip_stack(config(transports=("udp",))) as a:
        with pytest.raises(OSError, match="cannot bind SIP UDP"):
            async with open_sip_stack(config(transports=("udp",), udp_port=a.ports["udp"])):
                pass


def test_stack_rejects_unknown_transport():
    with pytest.raises(ValueError, match="unknown transport 'sctp'"):
        SipStack(StackConfig(transports=("udp", "sctp")))


async def test_tls_client_certificate_required_by_the_server(tmp_path):
    ca, server_tls, client_tls = make_tls(tmp_path)
    mine = ca.issue("client", ["a.example.test"])
    strict = TlsConfig(ca_file=ca.ca_cert_path, cert_file=server_tls.cert_file,
                       key_file=server_tls.key_file, verify_client=True)
    with_certificate = TlsConfig(ca_file=ca.ca_cert_path, cert_file=mine.cert_path,
                                 key_file=mine.key_path)
    async with two_stacks({"tls": strict}, {"tls": with_certificate}) as (a, b, _):
        response = await a.send_request(message_request(), target_of(b, "tls", "b.example.test"))
        assert response.status == 200
    async with two_stacks({"tls": strict}, {"tls": client_tls}) as (a, b, recorder):
        with trio.fail_after(10):
            with pytest.raises(TransportError):
                await a.send_request(message_request(), target_of(b, "tls", "b.example.test"))
        assert recorder.seen == []


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_invite_cancelled_while_ringing_gets_487(transport):
    async def ring(incoming):
        await incoming.respond(180)
        with trio.fail_after(5):
            await incoming.cancelled.wait()

    async with two_stacks() as (a, b, _):
        b.set_request_handler(ring)
        invite = message_request(method="INVITE")
        invite.headers.add("Contact", f"<sip:alice@{LOOPBACK}:{a.ports[transport]}>")
        handle = await a.start_client_transaction(invite, target_of(b, transport))
        statuses = []
        with trio.fail_after(5):
            async for response in handle:
                statuses.append(response.status)
                if response.status == 180:
                    a.cancel(handle)
                if response.status >= 200:
                    break
    assert statuses[-2:] == [180, 487]


async def test_tls_verifies_the_server_name_of_the_target_not_its_host(tmp_path):
    """RFC 5922 §4: the certificate must match the URI's domain (the locator's
    Target.server_name), not the SRV target the address was found for (Target.host)."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NamedTarget:
        transport: str
        host: str
        address: str
        port: int
        server_name: str

    _, server_tls, client_tls = make_tls(tmp_path)
    async with two_stacks({"tls": server_tls}, {"tls": client_tls}) as (a, b, _):
        port = b.ports["tls"]
        good = NamedTarget("tls", "sip-tls.other.test", LOOPBACK, port, "b.example.test")
        response = await a.send_request(message_request(), good)
        assert response.status == 200
        a.transports.connections[0].abort()
        with trio.fail_after(5):
            while a.transports.connections:
                await trio.sleep(0.01)
        bad = NamedTarget("tls", "b.example.test", LOOPBACK, port, "sip-tls.other.test")
        with pytest.raises(TransportError, match="sip-tls.other.test"):
            await a.send_request(message_request(), bad)
