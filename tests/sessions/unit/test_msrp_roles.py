"""Who connects, with peers that bend RFC 6135: an answer that echoes a=setup:actpass (the
offerer connects, as RFC 4975 has it), and an actpass offer over TLS without a=fingerprint
(Blink, python-sipsimple), which we answer passive since as the active side we could not
check the peer's certificate."""

from __future__ import annotations

from sipd.msrp.sdp import MsrpMedia, Setup, connection_role
from sipd.msrp.uri import parse_path
from sipd.sessions.streams.msrp import answered_setup, unverifiable

BLINK = ("a=path:msrps://10.0.0.5:40123/9f3e1c2b7a6d5e4f3a2b;tcp",
         "a=accept-types:message/cpim text/* image/* application/im-iscomposing+xml",
         "a=accept-wrapped-types:text/* image/* application/im-iscomposing+xml",
         "a=setup:actpass")


def line(*attributes: str) -> MsrpMedia:
    return MsrpMedia.from_attributes(tuple(a[2:].partition(":")[::2]) for a in attributes)


def test_an_answer_saying_actpass_lets_the_offerer_connect():
    assert answered_setup(Setup.ACTPASS, we_offered=True) is None
    assert connection_role(Setup.ACTPASS, answered_setup(Setup.ACTPASS, we_offered=True),
                           we_offered=True) is True
    # an offer saying actpass is what it says
    assert answered_setup(Setup.ACTPASS, we_offered=False) is Setup.ACTPASS
    assert answered_setup(Setup.PASSIVE, we_offered=True) is Setup.PASSIVE


def test_blinks_tls_offer_cannot_be_checked_as_the_active_side():
    blink = line(*BLINK)
    assert blink.setup is Setup.ACTPASS and not blink.fingerprints
    assert unverifiable(blink, secure=True)
    assert not unverifiable(blink, secure=False)  # plain TCP: nothing to check
    # through its relay: the relay is the first hop, no fingerprint is checked anyway
    relayed = line(*BLINK)
    relayed.path = parse_path("msrps://relay.example.com:2855/r1;tcp "
                              "msrps://10.0.0.5:40123/9f3e1c2b7a6d5e4f3a2b;tcp")
    assert not unverifiable(relayed, secure=True)
    fingerprinted = line(*BLINK, "a=fingerprint:sha-256 " + ":".join(["AB"] * 32))
    assert not unverifiable(fingerprinted, secure=True)
