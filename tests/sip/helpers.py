"""Shared helpers for the SIP core tests: load RFC 4475 messages, build typical messages."""

from __future__ import annotations

from pathlib import Path

from sipd.sip.message import Request, Response, parse_datagram

RFC4475 = Path(__file__).parent / "rfc4475"


def torture(name: str) -> bytes:
    """The bytes of one RFC 4475 message (tests/sip/rfc4475/<name>.dat)."""
    return (RFC4475 / f"{name}.dat").read_bytes()


def sip(text: str, body: bytes = b"") -> bytes:
    """A message written with \\n line ends in a test, as wire bytes (CRLF)."""
    head = text.strip("\n").replace("\n", "\r\n")
    return head.encode() + b"\r\n\r\n" + body


def request(text: str, body: bytes = b"") -> Request:
    message = parse_datagram(sip(text, body))
    assert isinstance(message, Request)
    return message


def response(text: str, body: bytes = b"") -> Response:
    message = parse_datagram(sip(text, body))
    assert isinstance(message, Response)
    return message


INVITE = """
INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
"""

OPTIONS = """
OPTIONS sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: options-1@pc33.atlanta.example.com
CSeq: 63104 OPTIONS
"""
