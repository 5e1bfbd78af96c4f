"""Edge cases of audio sessions, as an outside tester would try them: bad input on every
sessions.* method, hanging up in each state, races between clients, SIP requests a sipd does
not send itself (Require, in-dialog OPTIONS, a BYE with wrong tags...) and the limits.

Two real daemons (a, b) with only their `local` account; raw SIP comes from
tests.sessions.test_calls.RawUac on a plain UDP socket.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
import trio

from sipctl.client import RpcCallError
from tests.harness.peer import call_and_answer, daemon_settings, open_peer
from tests.harness.raw_uac import raw_uac
from tests.harness.waits import EVENT_TIMEOUT, eventually
from tests.media.audio import write_tone

NOT_FOUND, INVALID, CONFLICT = -32002, -32602, -32003


async def _refused(peer, method, **params) -> RpcCallError:
    with pytest.raises(RpcCallError) as caught:
        await peer.call(method, **params)
    return caught.value


def _text(error: RpcCallError) -> str:
    return f"{error.message} {error.data}"


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("method,params", [
    ("sessions.get", {}), ("sessions.answer", {}), ("sessions.reject", {"code": 486}),
    ("sessions.end", {}), ("sessions.hold", {}), ("sessions.unhold", {}),
    ("sessions.send_dtmf", {"digits": "1"}), ("sessions.play", {"path": "/tmp/x.wav"}),
    ("sessions.record", {"path": "/tmp/x.wav"}), ("sessions.transfer", {"to": "sip:x@127.0.0.1"}),
])
async def test_every_method_names_an_unknown_session(a, method, params):
    error = await _refused(a, method, id="no-such-id", **params)
    assert error.code == NOT_FOUND and "no-such-id" in _text(error), _text(error)
    wrong = await _refused(a, method, id=5, **params)
    assert wrong.code == INVALID and "id" in _text(wrong), _text(wrong)
    missing = await _refused(a, method, **params)
    assert missing.code == INVALID and "id" in _text(missing), _text(missing)


async def test_bad_media_files_are_refused_with_the_reason(a, b, tmp_path):
    a_id, b_id = await call_and_answer(a, b)
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("this is not audio\n")
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(b"\x00\x01" * 2 * 44100)
    eight = tmp_path / "eight.wav"
    with wave.open(str(eight), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 8000)
    results = {}
    for name, method, path in [
            ("missing", "sessions.play", tmp_path / "nothing.wav"),
            ("not a WAV", "sessions.play", not_wav),
            ("8-bit", "sessions.play", eight),
            ("folder", "sessions.play", tmp_path),
            ("no folder", "sessions.record", tmp_path / "nowhere" / "out.wav"),
            ("read-only", "sessions.record", Path("/proc/sipd-out.wav")),
            ("folder", "sessions.record", tmp_path),
            ("not .wav", "sessions.record", tmp_path / "out.mp4")]:
        with trio.fail_after(EVENT_TIMEOUT):
            error = await _refused(a, method, id=a_id, path=str(path))
        results[(method, name)] = (error.code, error.data)
    for (method, name), (code, data) in results.items():
        assert code == INVALID and data["field"] == "path", (method, name, code, data)
    reasons = {key: data["reason"] for key, (_, data) in results.items()}
    assert "no such file" in reasons[("sessions.play", "missing")]
    assert "not a WAV file" in reasons[("sessions.play", "not a WAV")]
    assert "8-bit" in reasons[("sessions.play", "8-bit")]
    assert "no folder" in reasons[("sessions.record", "no folder")]
    assert ".wav" in reasons[("sessions.record", "not .wav")]
    # A stereo 44.1 kHz file plays (the bridge mixes it down and resamples).
    await a.call("sessions.play", id=a_id, path=str(stereo))
    # the call and its worker are fine: a good tone still plays, and the call ends normally
    tone = write_tone(tmp_path / "tone.wav", 440)
    await a.call("sessions.play", id=a_id, path=str(tone))
    assert (await a.call("sessions.get", id=a_id))["state"] == "established"
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


# -- raw SIP --------------------------------------------------------------------------------

def _offer(port: int, payloads: str = "0", rtpmap: str = "a=rtpmap:0 PCMU/8000\r\n",
           version: int = 1) -> str:
    return (f"v=0\r\no=raw 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {payloads}\r\n{rtpmap}a=sendrecv\r\n")


def _to_tag(headers: dict[str, str]) -> str:
    return headers["to"].split("tag=", 1)[1].split(";", 1)[0]


def _uri_of(address: str) -> str:
    return address.split("<", 1)[1].split(">", 1)[0]


def _cancel_of(invite: bytes) -> bytes:
    """The CANCEL of an INVITE (RFC 3261 §9.1: its Via, Call-ID, From, To, CSeq number)."""
    head = invite.decode().split("\r\n\r\n", 1)[0].split("\r\n")
    method, uri, _ = head[0].split(" ")
    keep = [line for line in head[1:] if line.split(":", 1)[0] in
            ("Via", "Max-Forwards", "From", "To", "Call-ID")]
    cseq = next(line for line in head if line.startswith("CSeq:")).split()[1]
    return ("\r\n".join([f"CANCEL {uri} SIP/2.0", *keep, f"CSeq: {cseq} CANCEL",
                         "Content-Length: 0"]) + "\r\n\r\n").encode()


async def test_an_invite_that_requires_what_we_lack_gets_420(b):
    async with raw_uac(b) as uac:
        uri = f"sip:local@127.0.0.1:{uac.peer_port}"
        await uac.send(uac.request("INVITE", uri, 1, body=_offer(4000),
                                   extra="Require: 100rel\r\nSupported: 100rel\r\n"))
        headers, _ = await uac.response(420)
        assert headers["unsupported"] == "100rel"
    async with raw_uac(b) as uac:  # RFC 4028 we do: an interval too small gets 422
        await uac.send(uac.request("INVITE", uri, 1, body=_offer(4000),
                                   extra="Require: timer\r\nSession-Expires: 60\r\n"))
        headers, _ = await uac.response(422)
        assert headers["min-se"] == "90"


async def test_sipp_requiring_100rel_gets_420_a_short_timer_422_and_supported_rings(b, sipp):
    from tests.harness.waits import off_loop
    from tests.peers.ports import free_port
    mark = b.events.mark()
    uac = sipp.start("call_uac_require.xml", ("127.0.0.1", b.ports["udp"]),
                     rows=[[str(free_port())]])
    result = await off_loop(uac.wait)
    assert result.ok, result.report()
    sessions = b.events.matching("session.new", since=mark,
                                 remote=f"sip:sipp@127.0.0.1:{uac.local_port}")
    assert len(sessions) == 2  # the 420 made none, the 422 one that failed
    assert (await _over(b, sessions[0]["id"]))["code"] == 422
    assert (await _over(b, sessions[1]["id"]))["code"] == 487


async def test_session_timers_asked_for_ring_as_any_call(b):
    async with raw_uac(b) as uac:
        uri = f"sip:local@127.0.0.1:{uac.peer_port}"
        invite = uac.request("INVITE", uri, 1, body=_offer(4000),
                             extra="Supported: timer, 100rel\r\nSession-Expires: 90\r\n"
                                   "Min-SE: 90\r\n")
        await uac.send(invite)
        await uac.response(180)
        new = await b.events.wait("session.new", remote=f"sip:raw@127.0.0.1:{uac.port}")
        await uac.send(_cancel_of(invite))
        await uac.response(487)
        assert (await b.state(new["id"], "failed"))["code"] == 487


async def test_an_offer_of_codecs_we_lack_gets_488_with_a_warning(b):
    async with raw_uac(b) as uac:
        uri = f"sip:local@127.0.0.1:{uac.peer_port}"
        await uac.send(uac.request("INVITE", uri, 1, body=_offer(
            4000, "18 97", "a=rtpmap:18 G729/8000\r\na=rtpmap:97 iLBC/8000\r\n")))
        status, headers, _ = await _final(uac)
        # At once, not after ringing until someone answers.
        assert status == 488 and "G729" in headers["warning"], (status, headers)
        assert headers["warning"].startswith("399 ")


def test_the_codec_check_matches_by_name_and_ignores_telephone_events():
    from sipd.sessions.streams.audio import sdp as b2bua_sdp
    from sipd.sessions.streams.audio.codecs import missing_codecs

    def offer(formats: str, maps: str = "") -> object:
        return b2bua_sdp.parse(_offer(4000, formats, maps).encode())

    g722 = offer("9 101", "a=rtpmap:101 telephone-event/8000\r\n")
    assert missing_codecs(g722, ["G722/16000"]) is None  # written G722/8000 (RFC 3551)
    assert "G722/8000" in missing_codecs(g722, ["PCMU", "PCMA"])
    events_only = offer("101", "a=rtpmap:101 telephone-event/8000\r\n")
    assert missing_codecs(events_only, ["PCMU"]) is None  # nothing to judge: the worker does
    assert missing_codecs(offer("96", "a=rtpmap:96 opus/48000/2\r\n"), ["opus"]) is None


async def _final(uac, timeout: float = EVENT_TIMEOUT) -> tuple[int, dict[str, str], str]:
    """The next final response: (status, headers, body); provisional ones skipped."""
    with trio.fail_after(timeout):
        while True:
            data = (await uac.sock.recv(65535)).decode()
            head, _, body = data.partition("\r\n\r\n")
            lines = head.split("\r\n")
            status = int(lines[0].split()[1])
            if status < 200:
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            return status, headers, body


async def _established(b, uac, rtp_port: int):
    """The raw UAC calls B, B answers: (session id, INVITE bytes, to tag, contact)."""
    uri = f"sip:local@127.0.0.1:{uac.peer_port}"
    invite = uac.request("INVITE", uri, 1, body=_offer(rtp_port))
    await uac.send(invite)
    await uac.response(180)
    new = await b.events.wait("session.new", remote=f"sip:raw@127.0.0.1:{uac.port}")
    await uac.send(invite)  # a retransmission while it rings: the 180 again, no new session
    await uac.response(180)
    await b.call("sessions.answer", id=new["id"])
    headers, _ = await uac.response(200)
    to_tag, contact = _to_tag(headers), _uri_of(headers["contact"])
    await uac.send(uac.request("ACK", contact, 1, to_tag=to_tag))
    await b.state(new["id"], "established")
    return new["id"], invite, to_tag, contact


async def test_in_dialog_requests_of_an_established_call(b):
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as rtp:
        await rtp.bind(("127.0.0.1", 0))
        async with raw_uac(b) as uac:
            mark = b.events.mark()
            session, invite, to_tag, contact = await _established(
                b, uac, rtp.getsockname()[1])
            # A retransmission of the INVITE after the ACK: absorbed (RFC 6026), no second
            # session (the one while it rang is in _established).
            await uac.send(invite)
            # A CANCEL after the 200: 200 to the CANCEL, the call stays.
            await uac.send(_cancel_of(invite))
            await uac.response(200)
            # An OPTIONS in the dialog: 200.
            await uac.send(uac.request("OPTIONS", contact, 2, to_tag=to_tag))
            status, headers, _ = await _final(uac)
            assert status == 200, (status, headers)
            # An UPDATE (RFC 3311), which we do not do: refused, with our Allow.
            await uac.send(uac.request("UPDATE", contact, 3, to_tag=to_tag))
            status, headers, _ = await _final(uac)
            assert status in (405, 501) and "allow" in headers, (status, headers)
            # A BYE with a wrong To tag: 481, the call stays.
            await uac.send(uac.request("BYE", contact, 4, to_tag="not-" + to_tag))
            status, _, _ = await _final(uac)
            assert status == 481
            assert len(b.events.matching("session.new", since=mark)) == 1
            assert (await b.call("sessions.get", id=session))["state"] == "established"
            # A re-INVITE offering only a codec we lack: 488 with why, the call stays.
            await uac.send(uac.request("INVITE", contact, 5, to_tag=to_tag, body=_offer(
                rtp.getsockname()[1], "18", "a=rtpmap:18 G729/8000\r\n", 2)))
            status, headers, _ = await _final(uac)
            assert status == 488 and "G729" in headers.get("warning", ""), (status, headers)
            await uac.send(uac.request("ACK", contact, 5, to_tag=to_tag))
            # A re-INVITE moving the audio to another port: the worker sends there.
            with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as moved:
                await moved.bind(("127.0.0.1", 0))
                await uac.send(uac.request("INVITE", contact, 6, to_tag=to_tag,
                                           body=_offer(moved.getsockname()[1], "8",
                                                       "a=rtpmap:8 PCMA/8000\r\n", 3)))
                status, headers, body = await _final(uac)
                assert status == 200, (status, headers)
                assert "RTP/AVP 8" in body, body
                await uac.send(uac.request("ACK", contact, 6, to_tag=to_tag))
                with trio.fail_after(EVENT_TIMEOUT):
                    packet = await moved.recv(2048)
                assert packet[1] & 0x7F == 8  # PCMA now
            # A MESSAGE in the dialog (RFC 3428 §4): the pager takes it.
            await uac.send(uac.request("MESSAGE", contact, 7, to_tag=to_tag, body="hi there",
                                       content_type="text/plain"))
            status, headers, _ = await _final(uac)
            assert status == 200, (status, headers)
            received = await b.events.wait("message.received", since=mark)
            assert received["content"] == "hi there", received
            await uac.send(uac.request("BYE", contact, 8, to_tag=to_tag))
            await uac.response(200)
            assert (await b.state(session, "ended"))["reason"] == "remote hangup"


# -- states and races -------------------------------------------------------------------------

async def _over(peer, session: str) -> dict:
    """The session's first failed or ended event."""
    with trio.fail_after(EVENT_TIMEOUT):
        while True:
            for event in peer.events.matching("session.state", id=session):
                if event["state"] in ("failed", "ended"):
                    return event
            await peer.events.wait("session.state", id=session, since=peer.events.mark())


async def test_hanging_up_at_once_while_the_worker_sets_up(a, b):
    mark = b.events.mark()
    a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    await a.call("sessions.end", id=a_id)
    over = await _over(a, a_id)
    assert over["state"] == "failed" and over["code"] == 487, over
    for new in b.events.matching("session.new", since=mark):
        assert (await _over(b, new["id"]))["code"] == 487
    a_id, b_id = await call_and_answer(a, b)  # and the next call works
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


async def test_hang_up_on_hold_and_the_remote_hangs_up_while_held(a, b):
    a_id, b_id = await call_and_answer(a, b)
    await a.call("sessions.hold", id=a_id)
    await b.events.wait("session.hold", id=b_id, on_hold=True)
    # B holds A while A holds B: both are on hold, each way.
    await b.call("sessions.hold", id=b_id)
    await a.events.wait("session.hold", id=a_id, on_hold=True, originator="remote")
    await b.events.wait("session.hold", id=b_id, on_hold=True, originator="local")
    view = await a.call("sessions.get", id=a_id)
    assert view["on_hold"] is True and view["remote_hold"] is True, view
    await b.call("sessions.end", id=b_id)  # the remote hangs up while we hold
    assert (await a.state(a_id, "ended"))["reason"] == "remote hangup"
    await b.state(b_id, "ended")

    a_id, b_id = await call_and_answer(a, b)
    await a.call("sessions.hold", id=a_id)
    await a.events.wait("session.hold", id=a_id, on_hold=True)
    await a.call("sessions.end", id=a_id)  # we hang up a call we hold
    await a.state(a_id, "ended")
    assert (await b.state(b_id, "ended"))["reason"] == "remote hangup"


async def test_two_clients_answer_the_same_call_and_one_wins(a, b, daemons):
    async with open_peer(daemons[1]) as other:
        mark = b.events.mark()
        a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
        new = await b.events.wait("session.new", direction="incoming", since=mark)
        await b.state(new["id"], "ringing")
        outcomes: list = []

        async def answer(peer):
            try:
                outcomes.append(await peer.call("sessions.answer", id=new["id"]))
            except RpcCallError as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, b)
            nursery.start_soon(answer, other)
        errors = [o for o in outcomes if isinstance(o, RpcCallError)]
        assert len(errors) == 1, outcomes
        assert errors[0].code == CONFLICT and "cannot be answered" in _text(errors[0])
        await a.state(a_id, "established")
        await b.state(new["id"], "established")
        await a.call("sessions.end", id=a_id)
        await b.state(new["id"], "ended")


async def test_answer_after_the_caller_cancelled(a, b):
    mark = b.events.mark()
    a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    await a.state(a_id, "ringing")
    await a.call("sessions.end", id=a_id)
    await b.state(new["id"], "failed")
    error = await _refused(b, "sessions.answer", id=new["id"])
    assert error.code == CONFLICT and "failed" in _text(error), _text(error)
    for method in ("sessions.hold", "sessions.send_dtmf", "sessions.transfer"):
        extra = {"digits": "1"} if "dtmf" in method else {"to": "sip:x@127.0.0.1"} \
            if "transfer" in method else {}
        error = await _refused(b, method, id=new["id"], **extra)
        assert error.code == CONFLICT, (method, _text(error))


async def test_bad_transfers_and_digits_are_refused(a, b):
    a_id, b_id = await call_and_answer(a, b)
    for params, _field in [({"to": "tel:+15551234"}, "to"), ({"to": "mailto:x@y"}, "to"),
                          ({"to": ""}, "to"), ({"replaces": a_id}, "replaces"),
                          ({}, "to"), ({"to": "sip:x@127.0.0.1", "replaces": b_id}, "to")]:
        error = await _refused(a, "sessions.transfer", id=a_id, **params)
        assert error.code in (INVALID, NOT_FOUND), (params, _text(error))
    for digits in ("", "12x", "1" * 65, 5):
        error = await _refused(a, "sessions.send_dtmf", id=a_id, digits=digits)
        assert error.code == INVALID, (digits, _text(error))
    assert (await a.call("sessions.get", id=a_id))["state"] == "established"
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


# -- limits -----------------------------------------------------------------------------------

async def test_limits_fail_with_a_reason(a, tmp_path, dnsmasq_factory):
    """media.max_workers = 1 (4 sessions): the 5th call fails "media unavailable", an
    incoming one answered then gets 503; nobody on a UDP port, and a domain that does not
    exist, fail the call with a code and a reason (sip.t1 = 50 ms keeps timer B short)."""
    from tests.harness.process import SipdProcess
    dns = dnsmasq_factory(a={"known.example.test": "127.0.0.1"})
    settings = {**daemon_settings(), "media.max_workers": 1, "sip.t1": 50,
                "dns.nameservers": [f"127.0.0.1:{dns.port}"]}
    daemon = SipdProcess(tmp_path / "one", settings, name="one").start()
    try:
        async with open_peer(daemon) as one:
            calls = [await call_and_answer(one, a) for _ in range(4)]
            fifth = (await one.call("sessions.start", account="local", to=a.uri()))["id"]
            failed = await one.state(fifth, "failed")
            assert failed["code"] == 503 and "media unavailable" in failed["reason"], failed

            mark = one.events.mark()
            incoming = (await a.call("sessions.start", account="local", to=one.uri()))["id"]
            new = await one.events.wait("session.new", direction="incoming", since=mark)
            await one.state(new["id"], "ringing")
            error = await _refused(one, "sessions.answer", id=new["id"])
            assert "media" in _text(error).lower(), _text(error)
            refused = await a.state(incoming, "failed")
            assert refused["code"] == 503, refused
            for one_id, a_id in calls:
                await one.call("sessions.end", id=one_id)
                await a.state(a_id, "ended")

            for to, codes in [("sip:nobody@127.0.0.1:9", (408, 503)),
                              ("sip:nobody@no-such-host.example.test", (404, 503))]:
                session = (await one.call("sessions.start", account="local", to=to))["id"]
                over = await _over(one, session)
                assert over["state"] == "failed" and over["code"] in codes, (to, over)
                assert over.get("reason"), over
    finally:
        daemon.stop()


async def test_a_held_call_transferred_to_ourselves(a, b):
    """B's party is sent (REFER) to A itself while A holds the call: the transfer goes through
    or fails with a reason, and no call is left hanging."""
    a_id, b_id = await call_and_answer(a, b)
    await a.call("sessions.hold", id=a_id)
    await b.events.wait("session.hold", id=b_id, on_hold=True)
    mark = a.events.mark()
    started = await a.call("sessions.transfer", id=a_id, to=a.uri())
    assert started["state"] == "requested"
    with trio.fail_after(EVENT_TIMEOUT):
        while True:
            done = [e for e in a.events.matching("session.transfer", since=mark, id=a_id)
                    if e["state"] in ("completed", "failed")]
            if done:
                break
            new = a.events.matching("session.new", since=mark, direction="incoming")
            if new and not a.events.matching("session.state", since=mark, id=new[0]["id"],
                                             state="established"):
                if a.events.matching("session.state", since=mark, id=new[0]["id"],
                                     state="ringing"):
                    try:
                        await a.call("sessions.answer", id=new[0]["id"])
                    except RpcCallError:
                        pass
            await trio.sleep(0.1)
    print(a.events.matching("session.transfer", since=mark))
    for session in [e["id"] for e in a.events.matching("session.new", since=mark)]:
        view = await a.call("sessions.get", id=session)
        if view["state"] == "established":
            await a.call("sessions.end", id=session)
    for peer in (a, b):
        for view in (await peer.call("sessions.list"))["sessions"]:
            if view["state"] not in ("ended", "failed"):
                await peer.call("sessions.end", id=view["id"])
    await _over(b, b_id)
    assert done[0]["state"] == "completed", done


async def test_a_cancel_that_crosses_the_answer_ends_the_call(b):
    """The caller's CANCEL arrives while the worker answers (sessions.answer has returned):
    whichever comes first, the session ends (487, or BYE after the 200) and frees its media,
    never waiting for an ACK that cannot come."""
    for delay in [n / 1000 for n in range(0, 24)] + [0.03, 0.05]:  # sweep the window
        async with raw_uac(b) as uac:
            mark = b.events.mark()
            invite = uac.request("INVITE", f"sip:local@127.0.0.1:{uac.peer_port}", 1,
                                 body=_offer(4000))
            await uac.send(invite)
            await uac.response(180)
            new = await b.events.wait("session.new", since=mark,
                                      remote=f"sip:raw@127.0.0.1:{uac.port}")
            await b.call("sessions.answer", id=new["id"])
            await trio.sleep(delay)
            await uac.send(_cancel_of(invite))
            status, headers, _ = await _final(uac)  # the CANCEL's 200, or the INVITE's
            if headers["cseq"].endswith("INVITE") and status == 200:
                to_tag, contact = _to_tag(headers), _uri_of(headers["contact"])
                await uac.send(uac.request("ACK", contact, 1, to_tag=to_tag))
                await uac.send(uac.request("BYE", contact, 2, to_tag=to_tag))
            over = await _over(b, new["id"])
            assert over["state"] in ("failed", "ended"), (delay, over)
    async def workers_idle() -> bool:
        return not any(w["sessions"] for w in (await b.call("system.state"))["media"]["workers"])

    await eventually(workers_idle, what="no session left on a worker", interval=0.1)
