"""The XCAP application usages sipd speaks: AUID, MIME type, namespace, root element.

RFC 4825 §5 calls the rules for one kind of document an application usage; its AUID names the
first path segment under the XCAP root. Namespaces of the formats live here too so every module
spells them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_RESOURCE_LISTS = "urn:ietf:params:xml:ns:resource-lists"
NS_RLS_SERVICES = "urn:ietf:params:xml:ns:rls-services"
NS_COMMON_POLICY = "urn:ietf:params:xml:ns:common-policy"
NS_PRES_RULES = "urn:ietf:params:xml:ns:pres-rules"
NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_XCAP_CAPS = "urn:ietf:params:xml:ns:xcap-caps"
NS_XCAP_ERROR = "urn:ietf:params:xml:ns:xcap-error"
NS_XCAP_DIFF = "urn:ietf:params:xml:ns:xcap-diff"
NS_PRES_CONTENT = "urn:oma:xml:prs:pres-content"

MIME_ELEMENT = "application/xcap-el+xml"
MIME_ATTRIBUTE = "application/xcap-att+xml"
MIME_NAMESPACES = "application/xcap-ns+xml"
MIME_ERROR = "application/xcap-error+xml"
MIME_DIFF = "application/xcap-diff+xml"


@dataclass(frozen=True)
class ApplicationUsage:
    auid: str
    mime_type: str
    namespace: str
    root: str
    #: the document name clients use by convention (RFC 4826 §3.5 and friends)
    default_document: str = "index"
    #: documents of the global tree (xcap-caps) rather than of users
    global_tree: bool = False


RESOURCE_LISTS = ApplicationUsage(
    "resource-lists", "application/resource-lists+xml", NS_RESOURCE_LISTS, "resource-lists")
RLS_SERVICES = ApplicationUsage(
    "rls-services", "application/rls-services+xml", NS_RLS_SERVICES, "rls-services")
PRES_RULES = ApplicationUsage(
    "pres-rules", "application/auth-policy+xml", NS_COMMON_POLICY, "ruleset")
OMA_PRES_RULES = ApplicationUsage(
    "org.openmobilealliance.pres-rules", "application/auth-policy+xml", NS_COMMON_POLICY,
    "ruleset")
PIDF_MANIPULATION = ApplicationUsage(
    "pidf-manipulation", "application/pidf+xml", NS_PIDF, "presence")
XCAP_CAPS = ApplicationUsage(
    "xcap-caps", "application/xcap-caps+xml", NS_XCAP_CAPS, "xcap-caps", global_tree=True)
#: OMA presence content (OMA-TS-Presence_SIMPLE_Content_XDM): the status icon lives in
#: oma_status-icon/icon of the user's folder
PRES_CONTENT = ApplicationUsage(
    "org.openmobilealliance.pres-content", "application/vnd.oma.pres-content+xml",
    NS_PRES_CONTENT, "content", default_document="oma_status-icon/icon")

USAGES: dict[str, ApplicationUsage] = {
    usage.auid: usage
    for usage in (RESOURCE_LISTS, RLS_SERVICES, PRES_RULES, OMA_PRES_RULES, PIDF_MANIPULATION,
                  XCAP_CAPS, PRES_CONTENT)
}


def usage_for(auid: str) -> ApplicationUsage | None:
    return USAGES.get(auid)
