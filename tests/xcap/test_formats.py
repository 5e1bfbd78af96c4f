# ruff: noqa: E501  (the RFC examples are kept as the RFCs print them)
"""The XCAP document formats: parsed safely, built, and read back."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sipd.xcap.caps import parse_caps
from sipd.xcap.commonpolicy import parse_ruleset
from sipd.xcap.diff import parse_xcap_diff
from sipd.xcap.errors import XcapDocumentError
from sipd.xcap.pidfmanip import OfflineStatus, build_offline_status, parse_offline_status
from sipd.xcap.presrules import effective_action
from sipd.xcap.resourcelists import (
    Entry,
    EntryRef,
    External,
    ResourceList,
    ResourceLists,
    build_resource_lists,
    parse_resource_lists,
)
from sipd.xcap.rlsservices import RlsServices, Service, build_rls_services, parse_rls_services
from sipd.xcap.xcaperror import parse_xcap_error
from sipd.xcap.xmldoc import parse_document

RFC4826_LISTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <list name="friends">
  <entry uri="sip:bill@example.com"><display-name>Bill Doe</display-name></entry>
  <entry-ref ref="resource-lists/users/sip:bill@example.com/index/~~/resource-lists/list%5b@name=%22list1%22%5d/entry%5b@uri=%22sip:petri@example.com%22%5d"/>
  <list name="close-friends"><display-name>Close Friends</display-name>
   <entry uri="sip:joe@example.com"><display-name>Joe Smith</display-name></entry>
   <entry uri="sip:nancy@example.com"><display-name>Nancy Gross</display-name></entry>
   <external anchor="http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkt%22%5d">
    <display-name>Marketing</display-name></external>
  </list>
 </list>
</resource-lists>"""


def test_resource_lists_rfc4826_example() -> None:
    lists = parse_resource_lists(RFC4826_LISTS)
    friends = lists.list_named("friends")
    assert friends is not None and friends.display_name is None
    assert friends.entries == (Entry("sip:bill@example.com", "Bill Doe"),)
    assert friends.entry_refs[0].ref.startswith("resource-lists/users/sip:bill@")
    close = friends.lists[0]
    assert close.display_name == "Close Friends"
    assert [e.uri for e in friends.all_entries()] == [
        "sip:bill@example.com", "sip:joe@example.com", "sip:nancy@example.com"]
    assert close.externals[0].display_name == "Marketing"
    assert parse_resource_lists(build_resource_lists(lists)) == lists


def test_resource_lists_built_from_data() -> None:
    lists = ResourceLists((ResourceList("a", "A", (Entry("sip:x@y", "X & <Y>"),),
                                        (EntryRef("r"),), (External("http://e/x"),)),))
    assert parse_resource_lists(build_resource_lists(lists)) == lists


def test_rls_services() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"
   xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
 <service uri="sip:mybuddies@example.com">
  <resource-list>http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22l1%22%5d</resource-list>
  <packages><package>presence</package></packages>
 </service>
 <service uri="sip:marketing@example.com">
   <list name="marketing"><rl:entry uri="sip:joe@example.com"/><rl:entry uri="sip:sudhir@example.com"/></list>
   <packages><package>presence</package></packages>
 </service>
</rls-services>"""
    services = parse_rls_services(data)
    assert services.service("sip:mybuddies@example.com").resource_list.endswith("%5d")
    marketing = services.service("sip:marketing@example.com")
    assert [e.uri for e in marketing.list.entries] == ["sip:joe@example.com",
                                                       "sip:sudhir@example.com"]
    assert parse_rls_services(build_rls_services(services)) == services
    built = RlsServices((Service("sip:s@x", list=ResourceList("l", entries=(Entry("sip:a@b"),)),
                                 packages=("presence",)),))
    assert b"<list" in build_rls_services(built) and b"rl:entry" in build_rls_services(built)


def test_pres_rules_rfc5025_example() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"
 xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy">
 <cr:rule id="a">
  <cr:conditions><cr:identity><cr:one id="sip:user@example.com"/></cr:identity></cr:conditions>
  <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
  <cr:transformations><pr:provide-services><pr:service-uri-scheme>sip</pr:service-uri-scheme>
   </pr:provide-services><pr:provide-person><pr:all-persons/></pr:provide-person>
   <pr:provide-activities>true</pr:provide-activities></cr:transformations>
 </cr:rule>
 <cr:rule id="b">
  <cr:conditions><cr:identity><cr:many domain="example.org"><cr:except id="sip:ok@example.org"/>
   </cr:many></cr:identity><cr:validity><cr:from>2020-01-01T00:00:00Z</cr:from>
   <cr:until>2099-01-01T00:00:00Z</cr:until></cr:validity></cr:conditions>
  <cr:actions><pr:sub-handling>polite-block</pr:sub-handling></cr:actions>
 </cr:rule>
</cr:ruleset>"""
    ruleset = parse_ruleset(data)
    rule = ruleset.rule("a")
    assert rule.actions == {"sub-handling": "allow"}
    assert "provide-services" in rule.transformations
    assert ruleset.rule("b").conditions.has_validity
    assert effective_action(ruleset, "sip:USER@EXAMPLE.COM".replace("USER", "user")) == "allow"
    assert effective_action(ruleset, "sip:x@Example.org") == "polite-block"
    assert effective_action(ruleset, "sip:ok@example.org") is None
    assert effective_action(ruleset, "sip:x@elsewhere") is None


def test_pidf_manipulation() -> None:
    data = build_offline_status("sip:a@b", OfflineStatus("closed", "Out <of> office"))
    assert parse_offline_status(data) == OfflineStatus("closed", "Out <of> office")
    other = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"
      xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"><dm:person id="p">
      <dm:note>Away</dm:note></dm:person></presence>"""
    assert parse_offline_status(other) == OfflineStatus(None, "Away")


def test_xcap_caps() -> None:
    caps = parse_caps(b"""<xcap-caps xmlns="urn:ietf:params:xml:ns:xcap-caps">
      <auids><auid>xcap-caps</auid><auid>resource-lists</auid><auid>rls-services</auid></auids>
      <extensions><extension>xcap-diff</extension></extensions>
      <namespaces><namespace>urn:ietf:params:xml:ns:xcap-caps</namespace></namespaces>
      </xcap-caps>""")
    assert caps.supports("rls-services") and not caps.supports("pres-rules")
    assert caps.extensions == ("xcap-diff",)


@pytest.mark.parametrize("body, reason, text", [
    (b'<uniqueness-failure><exists field="rls-services/service/@uri">'
     b"<alt-value>sip:mybuddies@example.com</alt-value><alt-value>sip:b2@example.com</alt-value>"
     b"</exists></uniqueness-failure>", "uniqueness-failure",
     "try sip:mybuddies@example.com, sip:b2@example.com"),
    (b'<not-well-formed phrase="  bad  "/>', "not-well-formed", "not-well-formed: bad"),
    (b"<schema-validation-error/>", "schema-validation-error", "would not be valid"),
    (b"<no-parent><ancestor>http://x/root/a/b</ancestor></no-parent>", "no-parent",
     "closest existing ancestor: http://x/root/a/b"),
    (b"<constraint-failure/>", "constraint-failure", "constraint"),
    (b"<cannot-delete/>", "cannot-delete", "cannot be deleted"),
])
def test_xcap_error(body, reason, text) -> None:
    error = parse_xcap_error(b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error">'
                             + body + b"</xcap-error>")
    assert error.reason == reason
    assert text in error.describe()


def test_xcap_diff_rfc5874() -> None:
    diff = parse_xcap_diff(b"""<?xml version="1.0" encoding="UTF-8"?>
<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="http://xcap.example.com/root/">
 <document new-etag="7" sel="resource-lists/users/sip:joe@example.com/index" previous-etag="6">
  <add sel="*"><list name="x"/></add></document>
 <document new-etag="2" sel="rls-services/users/sip:joe@example.com/index"
   previous-etag="2"><body-not-changed/></document>
 <document sel="pres-rules/users/sip:joe@example.com/index" previous-etag="3"/>
 <element sel="resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22l1%22%5d"
   xmlns:rl="urn:ietf:params:xml:ns:resource-lists"><rl:list name="l1"/></element>
 <element sel="resource-lists/users/sip:joe@example.com/index/~~/a" exists="0"/>
 <attribute sel="resource-lists/users/sip:joe@example.com/index/~~/a/@b">v</attribute>
</xcap-diff>""")
    assert diff.xcap_root == "http://xcap.example.com/root/"
    first, second, third = diff.documents
    assert (first.previous_etag, first.new_etag, first.has_patch) == ("6", "7", True)
    assert second.body_not_changed and not second.has_patch
    assert third.removed
    assert diff.elements[0].exists and b'name="l1"' in diff.elements[0].content
    assert not diff.elements[1].exists and diff.elements[1].content is None
    assert diff.attributes[0].value == "v"


@pytest.mark.parametrize("data, reason", [
    (b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "DOCTYPE"),
    (b"<a>" + b"<b>" * 49 + b"</b>" * 49 + b"</a>", "nested deeper than 48"),
    (b"<a>" + b"<b/>" * 20 + b"</a>", "more than 10 elements"),
    (b"\xff\xfe<a/>", "XML"),
    (b"", "empty"),
])
def test_hostile_documents(data, reason) -> None:
    with pytest.raises(XcapDocumentError, match=reason):
        parse_document(data, max_elements=10 if b"<b/>" in data else 1000)


@pytest.mark.parametrize("parser, data", [
    (parse_resource_lists, b'<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"/>'),
    (parse_rls_services, b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>'),
    (parse_ruleset, b"<ruleset/>"),
    (parse_xcap_diff, b"<xcap-diff/>"),
])
def test_wrong_document_types(parser, data) -> None:
    with pytest.raises(XcapDocumentError, match="root element"):
        parser(data)


def test_core_modules_import_no_io() -> None:
    code = (
        "import sys\n"
        "import sipd.xcap.uri, sipd.xcap.selector, sipd.xcap.documents, sipd.xcap.operations\n"
        "import sipd.xcap.contacts, sipd.xcap.presrules, sipd.xcap.diff, sipd.xcap.caps\n"
        "import sipd.xcap.xcaperror, sipd.xcap.pidfmanip, sipd.xcap.rlsservices\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('trio', 'httpx', 'httpcore', 'anyio', 'socket', 'ssl', 'asyncio'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
