"""PIDF with the data model, RPID and CIPID: documents as the RFCs and real clients write them,
the view `presence.state` carries, and our own documents for `presence.publish`."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.presence.payload import InvalidInput, PayloadError
from sipd.presence.pidf import parse_pidf
from sipd.presence.pidf_build import DocumentIds, PublishedStatus, build_pidf
from sipd.presence.rpid import ACTIVITIES, MOODS, status_of
from sipd.presence.view import view_of

# RFC 3863 §3.4 (the example with an im:im status extension)
RFC3863 = b"""<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
    xmlns:myex="http://id.example.com/presence/"
    entity="pres:someone@example.com">
  <impp:tuple id="ck38g9">
    <impp:status>
      <impp:basic>open</impp:basic>
    </impp:status>
    <myex:complete>
      <myex:x/>
    </myex:complete>
    <impp:contact priority="0.65">tel:+09012345678</impp:contact>
  </impp:tuple>
  <impp:tuple id="md6tjh">
    <impp:status>
      <impp:basic>closed</impp:basic>
    </impp:status>
    <impp:contact priority="1.0">im:someone@mobilecarrier.net</impp:contact>
    <impp:note xml:lang="en">Don't Disturb Please!</impp:note>
    <impp:note xml:lang="fr">Ne derangez pas, s'il vous plait</impp:note>
    <impp:timestamp>2001-10-27T16:49:29Z</impp:timestamp>
  </impp:tuple>
  <impp:note xml:lang="en">I'll be in Tokyo next week</impp:note>
</impp:presence>
"""

# RFC 4479/4480/4482 together, as a rich client publishes
RICH = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
    xmlns:lt="urn:ietf:params:xml:ns:location-type"
    entity="sip:bob@example.com">
  <tuple id="sg89ae">
    <status><basic>open</basic></status>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <rpid:class>sip</rpid:class>
    <contact priority="0.8">sip:bob@192.0.2.2:5062</contact>
    <timestamp>2005-05-30T22:00:29Z</timestamp>
  </tuple>
  <tuple id="desk">
    <status><basic>closed</basic></status>
    <contact>sip:bob@desk.example.com</contact>
    <note>the desk phone</note>
  </tuple>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:note>in a meeting till noon</rpid:note>
      <rpid:meeting/>
      <rpid:other>planning</rpid:other>
    </rpid:activities>
    <rpid:mood><rpid:happy/><rpid:unknown/></rpid:mood>
    <rpid:place-type><lt:office/></rpid:place-type>
    <rpid:privacy><rpid:text/></rpid:privacy>
    <rpid:sphere>work</rpid:sphere>
    <rpid:time-offset>-240</rpid:time-offset>
    <rpid:user-input>idle</rpid:user-input>
    <c:display-name>Bob Builder</c:display-name>
    <c:icon>http://example.com/bob.png</c:icon>
    <c:homepage>http://example.com/~bob</c:homepage>
    <dm:note xml:lang="fr">en réunion</dm:note>
    <dm:note>Meeting, back at 12 ☕</dm:note>
    <dm:timestamp>2005-05-30T22:02:44+02:00</dm:timestamp>
  </dm:person>
  <dm:device id="pc122">
    <rpid:user-input>idle</rpid:user-input>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <dm:note>PC</dm:note>
    <dm:timestamp>2005-05-30T22:00:27Z</dm:timestamp>
  </dm:device>
</presence>
""".encode()

# baresip's presence module: an empty activities element
BARESIP = b"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>\r
<presence xmlns="urn:ietf:params:xml:ns:pidf"\r
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"\r
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"\r
    entity="sip:carol@example.com">\r
  <dm:person id="p4159"><rpid:activities/></dm:person>\r
  <tuple id="t4109">\r
    <status>\r
      <basic>open</basic>\r
    </status>\r
    <contact>sip:carol@example.com</contact>\r
  </tuple>\r
</presence>\r
"""

# linphone: an extension element in the status, the person away
LINPHONE = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
 xmlns:pidfonline="http://www.linphone.org/xsds/pidfonline.xsd" entity="sip:dave@example.com">
 <tuple id="qmgg7w"><status><basic>open</basic><pidfonline:online/></status>
  <contact priority="0.8">sip:dave@192.0.2.4</contact>
  <timestamp>2024-03-01T10:00:00.123456789Z</timestamp></tuple>
 <dm:person id="fjtxgb"><rpid:activities><rpid:away/></rpid:activities>
  <dm:note xml:lang="en">Back soon</dm:note></dm:person>
</presence>
"""

# an old client: RPID inside the tuple's status, im:im, a timestamp without a zone
OLD_STYLE = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf"
  xmlns:im="urn:ietf:params:xml:ns:pidf:im" entity="sip:eve@example.com">
 <tuple id="a"><status><basic>open</basic><im:im>onthephone</im:im></status>
  <timestamp>2024-03-01T10:00:00</timestamp><contact priority="7">sip:eve@h</contact></tuple>
</presence>
"""


def test_rfc3863_example():
    document = parse_pidf(RFC3863)
    assert document.entity == "pres:someone@example.com"
    assert [(s.id, s.basic, s.contact, s.priority) for s in document.services] == [
        ("ck38g9", "open", "tel:+09012345678", 0.65),
        ("md6tjh", "closed", "im:someone@mobilecarrier.net", 1.0)]
    assert document.services[1].notes[1].lang == "fr"
    view = view_of(document)
    assert (view.status, view.basic) == ("open", "open")
    # the open service has no note, so the closed one's (its first) is shown
    assert view.note == "Don't Disturb Please!"
    assert view.time == "2001-10-27T16:49:29.000+00:00"
    assert [d.id for d in view.devices] == ["ck38g9", "md6tjh"]


def test_data_model_rpid_cipid():
    document = parse_pidf(RICH)
    person = document.persons[0]
    assert person.activities == ["meeting", "planning"]
    assert person.mood == ["happy"]
    assert person.place_type == ["office"] and person.privacy == ["text"]
    assert person.sphere == "work" and person.time_offset == -240
    assert person.user_input == "idle"
    assert document.services[0].device_id == "mac:8asd7d7d70"
    assert document.services[0].service_class == "sip"
    assert document.devices[0].notes[0].text == "PC"
    view = view_of(document)
    assert view.status == "busy" and view.basic == "open"
    assert view.note == "Meeting, back at 12 ☕"  # the one without a language tag
    assert view.activities == ("meeting", "planning") and view.mood == ("happy",)
    assert (view.display_name, view.icon, view.homepage) == (
        "Bob Builder", "http://example.com/bob.png", "http://example.com/~bob")
    # the device's note stands in for the service that has none
    assert view.devices[0].note == "PC"
    assert view.devices[1].data() == {"id": "desk", "basic": "closed",
                                      "contact": "sip:bob@desk.example.com",
                                      "note": "the desk phone", "time": None,
                                      "device_id": None}
    # the newest of all timestamps (22:02:44+02:00 is 20:02:44Z: older than 22:00:29Z)
    assert view.time == "2005-05-30T22:00:29.000+00:00"
    data = view.data()
    assert set(data) >= {"status", "note", "activities", "devices", "basic", "time", "mood",
                         "display_name", "icon"}


def test_baresip_and_linphone():
    carol = view_of(parse_pidf(BARESIP))
    assert (carol.status, carol.activities, carol.note) == ("open", (), None)
    dave = view_of(parse_pidf(LINPHONE))
    assert (dave.status, dave.note) == ("away", "Back soon")
    assert dave.time == "2024-03-01T10:00:00.123+00:00"
    assert dave.devices[0].contact == "sip:dave@192.0.2.4"


def test_liberal_about_old_clients():
    document = parse_pidf(OLD_STYLE)
    service = document.services[0]
    assert service.activities == ["on-the-phone"]
    assert service.timestamp is None and service.priority is None  # unreadable: dropped
    assert view_of(document).status == "busy"


@pytest.mark.parametrize("body, status", [
    (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>', "closed"),
    (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x">'
     b'<status><basic>OPEN</basic></status></tuple></presence>', "open"),
    (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x">'
     b'<status><basic>maybe</basic></status></tuple></presence>', "closed"),
    (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
     b'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
     b'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b">'
     b'<dm:person id="p"><rpid:activities><rpid:vacation/></rpid:activities></dm:person>'
     b'</presence>', "away"),
])
def test_short_status(body, status):
    assert view_of(parse_pidf(body)).status == status


def test_status_of():
    assert status_of("open", []) == "open"
    assert status_of("open", ["on-the-phone"]) == "busy"
    assert status_of("open", ["Sleeping"]) == "away"
    assert status_of("open", ["tv"]) == "open"
    assert status_of("closed", ["busy"]) == "closed"
    assert status_of(None, []) == "closed"
    assert status_of(None, ["meeting"]) == "busy"


def test_the_newest_person_speaks():
    body = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf"
      xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
      xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b">
      <dm:person id="old"><rpid:activities><rpid:away/></rpid:activities>
        <dm:timestamp>2024-01-01T00:00:00Z</dm:timestamp></dm:person>
      <dm:person id="new"><rpid:activities><rpid:busy/></rpid:activities>
        <dm:timestamp>2024-01-02T00:00:00Z</dm:timestamp></dm:person>
    </presence>"""
    assert view_of(parse_pidf(body)).activities == ("busy",)


# --- our own documents ------------------------------------------------------------------------

NOW = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


def test_build_a_document():
    status = PublishedStatus.from_params(status="open", note=" at lunch ",
                                         activities=["Meal", "cooking"], mood=["hungry"],
                                         display_name="Alice", icon="https://a.example/i.png")
    ids = DocumentIds.new()
    body = build_pidf("sip:alice@example.com", status, ids=ids,
                      contact="sip:alice@192.0.2.1", now=NOW)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    # what baresip's regex-based reader looks for
    assert b"<basic>open</basic>" in body and b"<rpid:meal/>" in body
    document = parse_pidf(body)
    assert document.services[0].id == ids.service and document.persons[0].id == ids.person
    view = view_of(document)
    assert (view.status, view.note, view.activities, view.mood) == (
        "away", "at lunch", ("meal", "cooking"), ("hungry",))
    assert (view.display_name, view.icon) == ("Alice", "https://a.example/i.png")
    assert view.time == "2024-05-01T12:00:00.000+00:00"
    assert view.devices[0].contact == "sip:alice@192.0.2.1"


def test_a_note_cannot_inject_markup():
    status = PublishedStatus.from_params(status="closed", note="</note><evil/>&amp;")
    body = build_pidf("sip:a@b", status, ids=DocumentIds("t1", "p1"))
    assert b"<evil/>" not in body
    assert view_of(parse_pidf(body)).note == "</note><evil/>&amp;"


@pytest.mark.parametrize("params, field", [
    ({"status": "away"}, "status"),
    ({"status": "open", "note": "a\x00b"}, "note"),
    ({"status": "open", "note": "x" * 1025}, "note"),
    ({"status": "open", "activities": "away"}, "activities"),
    ({"status": "open", "activities": ["away", ""]}, "activities"),
    ({"status": "open", "activities": ["unknown"]}, "activities"),
    ({"status": "open", "activities": [f"a{n}" for n in range(17)]}, "activities"),
    ({"status": "open", "mood": [3]}, "mood"),
    ({"status": "open", "icon": "not a uri"}, "icon"),
    ({"status": "open", "display_name": "\ud800"}, "display_name"),
])
def test_what_cannot_be_published(params, field):
    with pytest.raises(InvalidInput) as caught:
        PublishedStatus.from_params(**params)
    assert caught.value.field == field and caught.value.reason


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=80)
_names = st.lists(st.sampled_from(sorted(ACTIVITIES - {"unknown"})) | _text.filter(
    lambda t: t.strip() and t.strip().lower() not in ("unknown", "other")), max_size=5)


@settings(max_examples=150, deadline=None)
@given(status=st.sampled_from(["open", "closed"]), note=st.none() | _text,
       activities=_names,
       mood=st.lists(st.sampled_from(sorted(MOODS - {"unknown"})), max_size=4),
       display_name=st.none() | _text, icon=st.none() | st.just("http://x.example/i.png"))
def test_any_document_we_build_reads_back_the_same(status, note, activities, mood,
                                                    display_name, icon):
    published = PublishedStatus.from_params(status=status, note=note, activities=activities,
                                            mood=mood, display_name=display_name, icon=icon)
    body = build_pidf("sip:alice@example.com", published, ids=DocumentIds.new(), now=NOW)
    view = view_of(parse_pidf(body))
    assert view.basic == status
    assert view.status == status_of(status, list(published.activities))
    assert view.note == published.note
    assert view.activities == published.activities
    assert view.mood == published.mood
    assert view.display_name == published.display_name and view.icon == published.icon


def test_not_a_presence_document():
    with pytest.raises(PayloadError, match="root element is presence in namespace urn:x"):
        parse_pidf(b'<presence xmlns="urn:x"/>')
    with pytest.raises(PayloadError, match="no namespace"):
        parse_pidf(b"<presence/>")
