import pytest

from sipd.msrp.errors import MsrpParseError
from sipd.msrp.uri import format_path, parse_path, parse_uri


@pytest.mark.parametrize("text", [
    "msrp://alice.example.com:7394/2s93i9ek2a;tcp",
    "msrps://bob@relay.example.net:2855/jsd9e;tcp;x=y;flag",
    "msrp://[2001:db8::1]:9000/a+b=c/d;tcp",
    "msrps://relay.example.net;tcp",
    "msrp://127.0.0.1/x;ws",
])
def test_round_trip(text):
    assert str(parse_uri(text)) == text


def test_parts():
    uri = parse_uri("MSRPS://bob@Relay.Example.net:2856/jsd9e;TCP")
    assert (uri.secure, uri.user, uri.host, uri.port, uri.session_id, uri.transport) == \
        (True, "bob", "Relay.Example.net", 2856, "jsd9e", "TCP")
    assert uri.scheme == "msrps"


@pytest.mark.parametrize("a, b, same", [
    ("msrp://h.example:2855/s1;tcp", "MSRP://H.EXAMPLE/s1;TCP", True),   # default port, case
    ("msrp://u@h.example/s1;tcp", "msrp://h.example/s1;tcp", True),       # userinfo ignored
    ("msrp://h.example/s1;tcp;a=b", "msrp://h.example/s1;tcp", True),     # other params ignored
    ("msrp://h.example/s1;tcp", "msrp://h.example/S1;tcp", False),        # session-id exact
    ("msrp://h.example/s1;tcp", "msrps://h.example/s1;tcp", False),
    ("msrp://h.example/s1;tcp", "msrp://h.example:2856/s1;tcp", False),
    ("msrp://h.example;tcp", "msrp://h.example/s1;tcp", False),
    ("msrp://[2001:db8:0::1]/s;tcp", "msrp://[2001:db8::1]/s;tcp", True),
    ("msrp://h.example/s1;tcp", "msrp://h.example/s1;sctp", False),
])
def test_comparison(a, b, same):
    assert parse_uri(a).same_as(parse_uri(b)) is same


@pytest.mark.parametrize("bad", [
    "sip:alice@example.com", "msrp://host/abc", "msrp:///abc;tcp", "msrp://h:0/a;tcp",
    "msrp://h:99999/a;tcp", "msrp://h/a b;tcp", "msrp://[::1/a;tcp", "msrp://h/a;", "msrp://h/a;tcp;=x",
    "msrp://h/a;tcp=1", "msrp://h@/a;tcp",
])
def test_bad(bad):
    with pytest.raises(MsrpParseError):
        parse_uri(bad)


def test_path():
    path = parse_path(" msrps://r.example/x;tcp \t msrps://me.example:3000/y;tcp ")
    assert [u.session_id for u in path] == ["x", "y"]
    assert format_path(path) == "msrps://r.example/x;tcp msrps://me.example:3000/y;tcp"
    with pytest.raises(MsrpParseError):
        parse_path("   ")
