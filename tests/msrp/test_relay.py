"""The RFC 4976 AUTH exchange, against a relay played by the test (digest checked with the
SIP core's digest computation, as a relay would)."""

from sipd.msrp.message import MsrpResponse, make_response
from sipd.msrp.parser import FrameParser
from sipd.msrp.relay import RelayAuthClient, RelayGranted, RelayRefused
from sipd.msrp.uri import parse_uri
from sipd.sip.auth import Credentials, digest_response, parse_challenge

RELAY = parse_uri("msrps://relay.example.test;tcp")
ME = parse_uri("msrps://127.0.0.1:7000/me12345;tcp")
CHALLENGE = 'Digest realm="example.test", nonce="n0nce", qop="auth", algorithm=MD5'


def one(data: bytes):
    (frame,) = FrameParser().feed(data)
    return frame


def reply(request, code, *headers) -> MsrpResponse:
    response = make_response(request, code)
    for name, value in headers:
        response.headers.add(name, value)
    return one(response.serialize())


def check_digest(request, password="secret") -> bool:
    auth = parse_challenge(request.headers.get("Authorization"))
    p = auth.params
    expected = digest_response(algorithm=p["algorithm"], username=p["username"],
                               password=password, realm=p["realm"], nonce=p["nonce"],
                               method="AUTH", uri=p["uri"], qop=p.get("qop"), nc=p.get("nc"),
                               cnonce=p.get("cnonce"))
    return p["response"] == expected and p["uri"] == str(RELAY)


def test_challenge_then_grant_then_refresh():
    client = RelayAuthClient(RELAY, ME, Credentials("alice", "secret"))
    first = one(client.start(0.0))
    assert first.method == "AUTH" and first.to_path[0].same_as(RELAY)
    assert first.from_path[0].same_as(ME) and "Authorization" not in first.headers
    second = one(client.handle_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 1.0))
    assert check_digest(second)
    assert parse_challenge(second.headers.get("Authorization")).params["nc"] == "00000001"
    use_path = "msrps://127.0.0.1:9000/abcdef;tcp"
    assert client.handle_response(
        reply(second, 200, ("Use-Path", use_path), ("Expires", "600")), 2.0) == b""
    (granted,) = client.events()
    assert isinstance(granted, RelayGranted)
    assert str(granted.use_path[0]) == use_path and granted.expires == 600
    assert granted.refresh_at == 2.0 + 450
    refresh = one(client.refresh(450.0))
    assert check_digest(refresh)
    assert parse_challenge(refresh.headers.get("Authorization")).params["nc"] == "00000002"


def test_wrong_password_is_refused_once_not_looped():
    client = RelayAuthClient(RELAY, ME, Credentials("alice", "wrong"))
    first = one(client.start(0.0))
    second = one(client.handle_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 0))
    assert not check_digest(second)
    assert client.handle_response(reply(second, 401, ("WWW-Authenticate", CHALLENGE)), 0) == b""
    (refused,) = client.events()
    assert isinstance(refused, RelayRefused) and refused.code == 401
    assert "rejected the credentials" in refused.reason


def test_interval_too_brief_and_no_answer():
    client = RelayAuthClient(RELAY, ME, Credentials("alice", "secret"), expires=10)
    first = one(client.start(0.0))
    assert first.expires == 10
    again = one(client.handle_response(reply(first, 423, ("Min-Expires", "60")), 0.0))
    assert again.expires == 60
    assert client.next_deadline() == 30.0
    client.handle_timers(30.0)
    (refused,) = client.events()
    assert refused.code is None and "no answer" in refused.reason


def test_other_refusals():
    client = RelayAuthClient(RELAY, ME, None)
    first = one(client.start(0.0))
    client.handle_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 0)
    assert "none are configured" in next(client.events()).reason
    client = RelayAuthClient(RELAY, ME, Credentials("a", "b"))
    first = one(client.start(0.0))
    client.handle_response(reply(first, 403), 0)
    assert next(client.events()).code == 403
    client = RelayAuthClient(RELAY, ME, Credentials("a", "b"))
    first = one(client.start(0.0))
    client.handle_response(reply(first, 200), 0)  # no Use-Path
    assert "without Use-Path" in next(client.events()).reason
