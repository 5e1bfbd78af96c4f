import pytest

from sipd.msrp.errors import MsrpParseError
from sipd.msrp.sdp import (
    Fingerprint,
    MsrpMedia,
    Setup,
    answer_setup,
    connection_role,
    media_protocol,
    parse_fingerprint,
)
from sipd.msrp.uri import parse_uri

URI = parse_uri("msrps://127.0.0.1:2855/abc123;tcp")


def test_attributes_round_trip():
    ours = MsrpMedia([parse_uri("msrps://relay.example/r1;tcp"), URI],
                     ["message/cpim", "text/plain"], ["*"], Setup.ACTPASS,
                     [Fingerprint.of_certificate(b"certificate")], 65536)
    attrs = ours.attributes()
    assert ("setup", "actpass") in attrs and ("max-size", "65536") in attrs
    assert dict(attrs)["path"] == "msrps://relay.example/r1;tcp msrps://127.0.0.1:2855/abc123;tcp"
    theirs = MsrpMedia.from_attributes(attrs + [("sendrecv", None)])
    assert theirs == ours
    assert media_protocol(ours.path) == "TCP/TLS/MSRP"


def test_fingerprint_format():
    fingerprint = Fingerprint.of_certificate(b"x")
    assert str(fingerprint).startswith("sha-256 2D:71:16")
    assert len(fingerprint.value.split(":")) == 32
    assert parse_fingerprint(str(fingerprint).lower()) == fingerprint
    assert fingerprint.matches(b"x") and not fingerprint.matches(b"y")
    for bad in ("md5 AA:BB", "sha-256 zz", "sha-256 AA:BB"):
        with pytest.raises(MsrpParseError):
            parse_fingerprint(bad)


@pytest.mark.parametrize("attrs, words", [
    ([("accept-types", "text/plain")], "no a=path"),
    ([("path", str(URI))], "no a=accept-types"),
    ([("path", "sip:x"), ("accept-types", "*")], "not an MSRP URI"),
    ([("path", str(URI)), ("accept-types", "text")], "bad media type"),
    ([("path", str(URI)), ("accept-types", "*"), ("setup", "sideways")], "a=setup"),
    ([("path", str(URI)), ("accept-types", "*"), ("max-size", "-1")], "max-size"),
])
def test_unusable_media(attrs, words):
    with pytest.raises(MsrpParseError, match=words):
        MsrpMedia.from_attributes(attrs)


def test_roles():
    assert answer_setup(Setup.ACTPASS) == Setup.ACTIVE
    assert answer_setup(Setup.PASSIVE) == Setup.ACTIVE
    assert answer_setup(Setup.ACTIVE) == Setup.PASSIVE
    assert answer_setup(None) == Setup.PASSIVE  # RFC 4975: the offerer connects
    assert connection_role(Setup.ACTPASS, Setup.PASSIVE, we_offered=True) is True
    assert connection_role(Setup.ACTPASS, Setup.ACTIVE, we_offered=True) is False
    assert connection_role(Setup.ACTPASS, None, we_offered=True) is True
    assert connection_role(Setup.PASSIVE, Setup.ACTIVE, we_offered=False) is False
    assert connection_role(Setup.PASSIVE, None, we_offered=False) is False
    with pytest.raises(MsrpParseError):
        connection_role(Setup.ACTIVE, Setup.ACTIVE, we_offered=False)
    with pytest.raises(MsrpParseError):
        answer_setup(Setup.HOLDCONN)
