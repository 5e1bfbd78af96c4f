"""Digest authentication: RFC test vectors, independently computed values, retry logic."""

from __future__ import annotations

import hashlib

import pytest

from sipd.sip.auth import (
    AuthFailure,
    Credentials,
    CredentialStore,
    DigestAuthenticator,
    challenges_of,
    digest_response,
    parse_challenge,
)
from sipd.sip.builder import build_response
from sipd.sip.errors import SipParseError

from .helpers import request

REGISTER = """
REGISTER sip:registrar.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKreg1;rport
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:alice@example.com>
Call-ID: reg-1@192.0.2.1
CSeq: 1 REGISTER
Contact: <sip:alice@192.0.2.1:5070>
Expires: 600
"""


def h(algorithm: str, text: str) -> str:
    return hashlib.new(algorithm, text.encode()).hexdigest()


def challenge_response(req, *challenges: tuple[str, str], status: int = 401):
    response = build_response(req, status, to_tag="srv")
    for name, value in challenges:
        response.headers.add(name, value)
    return response


def fields(value: str) -> dict[str, str]:
    challenge = parse_challenge(value, what="Authorization")
    assert challenge.scheme == "Digest"
    return challenge.params


# --- the computation -----------------------------------------------------------------------

def test_rfc2617_section_3_5_example():
    assert digest_response(
        algorithm="MD5", username="Mufasa", password="Circle Of Life",
        realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method="GET", uri="/dir/index.html", qop="auth", nc="00000001", cnonce="0a4f113b",
    ) == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("algorithm, expected", [
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
])
def test_rfc7616_section_3_9_1_example(algorithm, expected):
    assert digest_response(
        algorithm=algorithm, username="Mufasa", password="Circle of Life",
        realm="http-auth@example.org", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        method="GET", uri="/dir/index.html", qop="auth", nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    ) == expected


def test_legacy_sess_and_auth_int_variants_against_independent_values():
    args = dict(username="bob", password="zanzibar", realm="biloxi.com", nonce="n0nce",
                method="INVITE", uri="sip:bob@biloxi.com")
    ha2 = h("md5", "INVITE:sip:bob@biloxi.com")
    # RFC 2069 style: no qop, no cnonce.
    ha1 = h("md5", "bob:biloxi.com:zanzibar")
    assert digest_response(algorithm="MD5", **args) == h("md5", f"{ha1}:n0nce:{ha2}")
    # SHA-256-sess: HA1 also covers nonce and cnonce.
    sess_ha1 = h("sha256", f"{h('sha256', 'bob:biloxi.com:zanzibar')}:n0nce:c1")
    expected = h("sha256", f"{sess_ha1}:n0nce:00000002:c1:auth:"
                           f"{h('sha256', 'INVITE:sip:bob@biloxi.com')}")
    assert digest_response(algorithm="sha-256-sess", qop="auth", nc="00000002", cnonce="c1",
                           **args) == expected
    # auth-int: HA2 covers the body.
    body = b"v=0\r\n"
    ha2_int = h("md5", f"INVITE:sip:bob@biloxi.com:{hashlib.md5(body).hexdigest()}")
    assert digest_response(algorithm="MD5", qop="auth-int", nc="00000001", cnonce="c",
                           body=body, **args) == h("md5",
                                                   f"{ha1}:n0nce:00000001:c:auth-int:{ha2_int}")
    with pytest.raises(ValueError, match="unsupported"):
        digest_response(algorithm="SHA-1", **args)


# --- parsing challenges --------------------------------------------------------------------

def test_parse_challenge():
    challenge = parse_challenge(
        'Digest realm="atlanta.com, inc", domain="sip:ss1.carrier.com", qop="auth,auth-int",'
        ' nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=TRUE, algorithm=md5-sess',
        proxy=True)
    assert challenge.is_digest and challenge.proxy
    assert challenge.header_name == "Proxy-Authorization"
    assert challenge.realm == "atlanta.com, inc"
    assert challenge.nonce == "f84f1cec41e6cbe5aea9c8e88d359"
    assert challenge.qop_options == ["auth", "auth-int"] and challenge.stale
    assert challenge.algorithm == "MD5-SESS" and challenge.opaque == "" and challenge.supported
    assert parse_challenge('Digest realm="r", nonce="n"').algorithm == "MD5"
    basic = parse_challenge('Basic realm="x"')
    assert not basic.is_digest and not basic.supported
    for bad in ('Digest realm', 'Digest realm="x" nonce="y"', 'Digest realm="unterminated'):
        with pytest.raises(SipParseError):
            parse_challenge(bad)


def test_unsupported_challenges():
    assert not parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-1').supported
    assert not parse_challenge('Digest realm="r", nonce="n", qop="auth-conf"').supported
    assert not parse_challenge('Digest realm="r"').supported  # no nonce


def test_challenges_of_reads_both_header_kinds():
    req = request(REGISTER)
    response = challenge_response(req, ("WWW-Authenticate", 'Digest realm="a", nonce="1"'),
                                  ("Proxy-Authenticate", 'Digest realm="b", nonce="2"'))
    assert [(c.realm, c.proxy) for c in challenges_of(response)] == [("a", False), ("b", True)]


# --- the authenticator ---------------------------------------------------------------------

def authenticator(*credentials: Credentials) -> DigestAuthenticator:
    counter = iter(range(1, 1000))
    return DigestAuthenticator(CredentialStore(credentials),
                               cnonce_factory=lambda: f"cnonce{next(counter)}")


def test_answers_401_with_the_strongest_algorithm():
    req = request(REGISTER)
    response = challenge_response(
        req,
        ("WWW-Authenticate", 'Digest realm="example.com", nonce="abc", qop="auth", algorithm=MD5'),
        ("WWW-Authenticate", 'Digest realm="example.com", nonce="def", qop="auth", '
                             'algorithm=SHA-256, opaque="op"'))
    result = authenticator(Credentials("alice", "secret")).authenticate(req, response)
    assert result.failure is None
    retry = result.request
    assert retry is not req and (retry.cseq.number, retry.cseq.method) == (2, "REGISTER")
    assert retry.top_via.branch != req.top_via.branch and retry.top_via.wants_rport
    assert retry.call_id == req.call_id and retry.from_.tag == req.from_.tag
    params = fields(retry.headers.get("Authorization"))
    assert params["algorithm"] == "SHA-256" and params["nonce"] == "def"
    assert params["username"] == "alice" and params["realm"] == "example.com"
    assert params["uri"] == "sip:registrar.example.com" and params["opaque"] == "op"
    assert params["qop"] == "auth" and params["nc"] == "00000001" and params["cnonce"] == "cnonce1"
    ha1 = h("sha256", "alice:example.com:secret")
    ha2 = h("sha256", "REGISTER:sip:registrar.example.com")
    assert params["response"] == h("sha256", f"{ha1}:def:00000001:cnonce1:auth:{ha2}")
    assert "Proxy-Authorization" not in retry.headers


def test_answers_407_with_proxy_authorization_and_legacy_digest():
    req = request(REGISTER)
    response = challenge_response(req, ("Proxy-Authenticate", 'Digest realm="proxy", nonce="p1"'),
                                  status=407)
    retry = authenticator(Credentials("alice", "pw")).authenticate(req, response).request
    params = fields(retry.headers.get("Proxy-Authorization"))
    assert "qop" not in params and "nc" not in params and "cnonce" not in params
    ha1, ha2 = h("md5", "alice:proxy:pw"), h("md5", "REGISTER:sip:registrar.example.com")
    assert params["response"] == h("md5", f"{ha1}:p1:{ha2}")
    assert "Authorization" not in retry.headers


def test_credentials_by_realm_with_a_default():
    store = CredentialStore([Credentials("default-user", "d"),
                             Credentials("proxy-user", "p", realm="proxy.example.com")])
    assert store.find("proxy.example.com").username == "proxy-user"
    assert store.find("anything").username == "default-user"
    assert CredentialStore([Credentials("x", "y", realm="only")]).find("other") is None
    req = request(REGISTER)
    response = challenge_response(
        req, ("WWW-Authenticate", 'Digest realm="example.com", nonce="1", qop=auth'),
        ("Proxy-Authenticate", 'Digest realm="proxy.example.com", nonce="2", qop=auth'))
    retry = DigestAuthenticator(store).authenticate(req, response).request
    assert fields(retry.headers.get("Authorization"))["username"] == "default-user"
    assert fields(retry.headers.get("Proxy-Authorization"))["username"] == "proxy-user"


def test_same_realm_again_means_wrong_password_unless_stale():
    auth = authenticator(Credentials("alice", "wrong"))
    req = request(REGISTER)
    first = challenge_response(req, ("WWW-Authenticate", 'Digest realm="r", nonce="n1", qop=auth'))
    retry = auth.authenticate(req, first).request
    again = challenge_response(retry,
                               ("WWW-Authenticate", 'Digest realm="r", nonce="n2", qop=auth'))
    result = auth.authenticate(retry, again)
    assert result.request is None and result.failure is AuthFailure.REJECTED
    assert "'r'" in result.reason and "wrong" not in result.reason  # no secrets in messages
    # stale=true: the nonce expired, try again with the new one.
    stale = challenge_response(retry, ("WWW-Authenticate",
                                       'Digest realm="r", nonce="n3", qop=auth, stale=true'))
    result = auth.authenticate(retry, stale)
    assert result.failure is None
    assert result.request.headers.count("Authorization") == 1
    params = fields(result.request.headers.get("Authorization"))
    assert params["nonce"] == "n3" and params["nc"] == "00000001"
    assert result.request.cseq.number == 3


def test_missing_credentials_and_unsupported_challenges():
    req = request(REGISTER)
    response = challenge_response(req, ("WWW-Authenticate", 'Digest realm="r", nonce="n"'))
    result = DigestAuthenticator(CredentialStore()).authenticate(req, response)
    assert result.failure is AuthFailure.NO_CREDENTIALS and "'r'" in result.reason
    basic = challenge_response(req, ("WWW-Authenticate", 'Basic realm="r"'))
    result = authenticator(Credentials("a", "b")).authenticate(req, basic)
    assert result.failure is AuthFailure.UNSUPPORTED and "Basic" in result.reason
    garbage = challenge_response(req, ("WWW-Authenticate", 'Digest realm="r" nonce'))
    assert authenticator(Credentials("a", "b")).authenticate(req, garbage).failure \
        is AuthFailure.UNSUPPORTED


def test_preemptive_authorization_counts_nonce_uses():
    auth = authenticator(Credentials("alice", "secret"))
    req = request(REGISTER)
    response = challenge_response(req,
                                  ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop=auth'))
    auth.authenticate(req, response)
    refresh = request(REGISTER.replace("CSeq: 1", "CSeq: 3"))
    auth.authorize_preemptively(refresh)
    assert fields(refresh.headers.get("Authorization"))["nc"] == "00000002"
    auth.authorize_preemptively(refresh)  # replaces, does not add
    assert refresh.headers.count("Authorization") == 1
    assert fields(refresh.headers.get("Authorization"))["nc"] == "00000003"
    auth.forget()
    fresh = request(REGISTER)
    auth.authorize_preemptively(fresh)
    assert "Authorization" not in fresh.headers


def test_userhash_and_sha512_256():
    req = request(REGISTER)
    response = challenge_response(req, ("WWW-Authenticate", 'Digest realm="r", nonce="n", '
                                        'qop="auth", algorithm=SHA-512-256, userhash=true'))
    params = fields(authenticator(Credentials("alice", "pw")).authenticate(req, response)
                    .request.headers.get("Authorization"))
    assert params["userhash"] == "true" and params["algorithm"] == "SHA-512-256"
    assert params["username"] == h("sha512_256", "alice:r")
    ha1 = h("sha512_256", "alice:r:pw")
    ha2 = h("sha512_256", "REGISTER:sip:registrar.example.com")
    assert params["response"] == h("sha512_256", f"{ha1}:n:00000001:cnonce1:auth:{ha2}")


def test_credentials_repr_hides_the_password():
    assert "hunter2" not in repr(Credentials("alice", "hunter2"))
