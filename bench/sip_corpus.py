"""The SIP messages the parse benchmark reads: what a registration, a call and a chat put on
the wire, written the way sipd, Kamailio and common phones write them (compact forms and all).

Each is a complete UDP datagram (CRLF line ends, a Content-Length that matches the body).
"""

from __future__ import annotations


def _datagram(head: str, body: str = "") -> bytes:
    """Head lines (one per line, no line ends) and a body; Content-Length filled in."""
    lines = [line.strip() for line in head.strip().splitlines()]
    payload = body.strip().replace("\n", "\r\n") + "\r\n" if body.strip() else ""
    encoded = payload.encode()
    lines.append(f"Content-Length: {len(encoded)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + encoded


# The long header values, apart so that the messages below stay readable.
INSTANCE = '+sip.instance="<urn:uuid:0f1e2d3c-4b5a-6978-8899-aabbccddeeff>"'
AUTHORIZATION = ('Digest username="alice", realm="example.test", '
                 'nonce="ZyKb8GcimsW5f0rT1x3sYk0Xq0wAAAAA", uri="sip:example.test", '
                 'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, '
                 'cnonce="0a4f113b", qop=auth, nc=00000001')
WWW_AUTHENTICATE = ('Digest realm="example.test", nonce="ZyKb8GcimsW5f0rT1x3sYk0Xq0wAAAAA", '
                    'qop="auth", algorithm=MD5, opaque="5ccc069c403ebaf9f0171e9517f40e41"')
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, REFER, UPDATE"
KAMAILIO_VIA = ("SIP/2.0/UDP 127.0.0.1:5062;rport=5062;branch=z9hG4bK.a7e3c1f0d2b94e6f8c1a;"
                "received=127.0.0.1")
CONTACTS = (f"<sip:alice-example-test@127.0.0.1:5062;transport=udp>;expires=600;{INSTANCE}, "
            "<sip:alice@192.0.2.10:5060>;expires=312")

REGISTER_WITH_AUTH = _datagram(f"""
    REGISTER sip:example.test SIP/2.0
    Via: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK.a7e3c1f0d2b94e6f8c1a
    Max-Forwards: 70
    From: "Alice Liddell" <sip:alice@example.test>;tag=8d4f2a61c3e7
    To: "Alice Liddell" <sip:alice@example.test>
    Call-ID: 5b0d6f3e9a2c4e1b8f7d6c5a4b3e2f1d
    CSeq: 2 REGISTER
    Contact: <sip:alice-example-test@127.0.0.1:5062;transport=udp>;expires=600;{INSTANCE}
    Authorization: {AUTHORIZATION}
    Expires: 600
    Allow: {ALLOW}
    Supported: path, outbound, gruu
    User-Agent: sipd/0.1.0
""")

OK_WITH_CONTACT = _datagram(f"""
    SIP/2.0 200 OK
    Via: {KAMAILIO_VIA}
    From: "Alice Liddell" <sip:alice@example.test>;tag=8d4f2a61c3e7
    To: "Alice Liddell" <sip:alice@example.test>;tag=2fa3b5c26bbd4fc0a5a2b0a3ab8d1f37.4c2a
    Call-ID: 5b0d6f3e9a2c4e1b8f7d6c5a4b3e2f1d
    CSeq: 2 REGISTER
    Contact: {CONTACTS}
    Server: kamailio (5.6.3 (x86_64/linux))
""")

UNAUTHORIZED_401 = _datagram(f"""
    SIP/2.0 401 Unauthorized
    Via: SIP/2.0/UDP 127.0.0.1:5062;rport=5062;branch=z9hG4bK.3c9e1b7a5d2f4e8c;received=127.0.0.1
    From: "Alice Liddell" <sip:alice@example.test>;tag=8d4f2a61c3e7
    To: "Alice Liddell" <sip:alice@example.test>;tag=2fa3b5c26bbd4fc0a5a2b0a3ab8d1f37.b1e0
    Call-ID: 5b0d6f3e9a2c4e1b8f7d6c5a4b3e2f1d
    CSeq: 1 REGISTER
    WWW-Authenticate: {WWW_AUTHENTICATE}
    Server: kamailio (5.6.3 (x86_64/linux))
""")

SDP_OFFER = """
v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=sipd
c=IN IP4 127.0.0.1
t=0 0
m=audio 50000 RTP/AVP 0 8 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
a=rtcp:50001
m=message 2855 TCP/TLS/MSRP *
a=accept-types:message/cpim text/plain
a=accept-wrapped-types:*
a=path:msrps://127.0.0.1:2855/kjhd37s2s20w2a;tcp
"""

INVITE_WITH_SDP = _datagram(f"""
    INVITE sip:bob@example.test SIP/2.0
    Via: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK.77e1f0c2a9d84b3e
    Max-Forwards: 70
    Route: <sip:127.0.0.1:5060;lr>
    From: "Alice Liddell" <sip:alice@example.test>;tag=4e8b2c91f05a
    To: <sip:bob@example.test>
    Call-ID: c3f84e0b27d9461aa5e6f1b0d2c9a873
    CSeq: 20 INVITE
    Contact: <sip:alice-example-test@127.0.0.1:5062;transport=udp>
    Allow: {ALLOW}
    Supported: replaces, norefersub, timer
    Session-Expires: 1800
    User-Agent: sipd/0.1.0
    Content-Type: application/sdp
""", SDP_OFFER)

MESSAGE_TEXT = _datagram("""
    MESSAGE sip:bob@example.test SIP/2.0
    v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK5c2b.91a1e5d7e0f3b4c6d8a2f1e0;rport
    Via: SIP/2.0/UDP 127.0.0.1:5062;received=127.0.0.1;rport=5062;branch=z9hG4bK.5d3a1c
    Max-Forwards: 69
    f: <sip:alice@example.test>;tag=91c5e0a2b7d4
    t: <sip:bob@example.test>
    i: 1f0e2d3c4b5a69788796a5b4c3d2e1f0
    CSeq: 7 MESSAGE
    Content-Type: text/plain;charset=UTF-8
    Date: Tue, 24 Nov 2026 01:15:00 GMT
    User-Agent: sipd/0.1.0
""", "Hello Bob, are we still on for lunch at noon? The usual place.")

#: name -> datagram, in the order the tables list them
CORPUS: dict[str, bytes] = {
    "REGISTER with Authorization": REGISTER_WITH_AUTH,
    "401 with WWW-Authenticate": UNAUTHORIZED_401,
    "200 OK with Contact": OK_WITH_CONTACT,
    "INVITE with SDP": INVITE_WITH_SDP,
    "MESSAGE (text/plain)": MESSAGE_TEXT,
}
