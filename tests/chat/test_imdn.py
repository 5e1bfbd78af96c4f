"""Disposition notifications (RFC 5438): built, read back, and hostile ones refused."""

from __future__ import annotations

import datetime

import pytest

from sipd.chat.imdn import Disposition, ImdnError, parse_disposition, requested

WHEN = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("kind,status", [("delivery", "delivered"), ("delivery", "failed"),
                                         ("display", "displayed"), ("processing", "stored")])
def test_round_trip(kind, status):
    sent = Disposition("34jk324j", kind, status, WHEN, "sip:bob@example.com")
    assert parse_disposition(sent.encode()) == sent


def test_reads_the_rfc_example_with_foreign_elements():
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn" xmlns:x="urn:example:ext">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <recipient-uri>im:bob@example.com</recipient-uri>
  <original-recipient-uri>im:bob@example.com</original-recipient-uri>
  <x:extra>ignored</x:extra>
  <display-notification><status><displayed/></status></display-notification>
</imdn>"""
    got = parse_disposition(body)
    assert (got.message_id, got.kind, got.status) == ("34jk324j", "display", "displayed")
    assert got.time is not None and got.time.utcoffset() == datetime.timedelta(hours=-5)


@pytest.mark.parametrize("body,reason", [
    (b"<imdn xmlns='urn:ietf:params:xml:ns:imdn'><delivery-notification><status><delivered/>"
     b"</status></delivery-notification></imdn>", "message-id"),
    (b"<imdn xmlns='urn:ietf:params:xml:ns:imdn'><message-id>a</message-id></imdn>",
     "no delivery"),
    (b"<imdn xmlns='urn:ietf:params:xml:ns:imdn'><message-id>a</message-id>"
     b"<delivery-notification><status><displayed/></status></delivery-notification></imdn>",
     "known status"),
    (b"<other/>", "not imdn"),
    (b"<?xml version='1.0'?><!DOCTYPE imdn [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"
     b"<imdn xmlns='urn:ietf:params:xml:ns:imdn'><message-id>&b;</message-id></imdn>",
     "DOCTYPE"),
    (b"<imdn", "well-formed"),
    (b"<imdn>" + b"x" * 20000 + b"</imdn>", "too large"),
])
def test_bad_documents_are_refused_with_the_reason(body, reason):
    with pytest.raises(ImdnError, match=reason):
        parse_disposition(body)


def test_requested_dispositions_ignore_unknown_values():
    assert requested("positive-delivery, Display, x-other") == {"positive-delivery", "display"}
    assert requested(None) == frozenset()


def test_a_status_that_does_not_fit_its_notification_is_refused():
    with pytest.raises(ImdnError):
        Disposition("a", "display", "delivered")
