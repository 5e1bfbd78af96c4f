"""rls-services documents (RFC 4826 §4): the resource list services a presence server runs.

A service has a URI (the one a client subscribes to), its resources either inline (a `list`) or
by reference (`resource-list`, an HTTP URI of a list element in a resource-lists document), and
the event packages it serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sipd.xcap.resourcelists import TAG_LIST, ResourceList, list_element, list_from_element
from sipd.xcap.usages import NS_RESOURCE_LISTS, NS_RLS_SERVICES
from sipd.xcap.xmldoc import expect_root, parse_document, serialize

NS = NS_RLS_SERVICES
_RS = f"{{{NS}}}"
TAG_SERVICES = f"{_RS}rls-services"
TAG_SERVICE = f"{_RS}service"
TAG_RESOURCE_LIST = f"{_RS}resource-list"
TAG_PACKAGES = f"{_RS}packages"
TAG_PACKAGE = f"{_RS}package"
TAG_INLINE_LIST = f"{_RS}list"


@dataclass(frozen=True)
class Service:
    uri: str
    #: the HTTP URI of a list in a resource-lists document
    resource_list: str | None = None
    #: or the resources listed inline
    list: ResourceList | None = None
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class RlsServices:
    services: tuple[Service, ...] = ()

    def service(self, uri: str) -> Service | None:
        for service in self.services:
            if service.uri == uri:
                return service
        return None


def parse_rls_services(data: bytes) -> RlsServices:
    root = parse_document(data, what="rls-services document")
    return rls_services_from_element(root)


def rls_services_from_element(root: etree._Element) -> RlsServices:
    expect_root(root, NS, "rls-services", "rls-services document")
    return RlsServices(tuple(service_from_element(item)
                             for item in root.iterchildren(TAG_SERVICE) if item.get("uri")))


def service_from_element(element: etree._Element) -> Service:
    reference = element.find(TAG_RESOURCE_LIST)
    # The inline list is in the rls-services namespace (its entries in resource-lists'); some
    # documents put it in the resource-lists namespace.
    inline = element.find(TAG_INLINE_LIST)
    if inline is None:
        inline = element.find(TAG_LIST)
    packages = element.find(TAG_PACKAGES)
    names: tuple[str, ...] = ()
    if packages is not None:
        names = tuple((p.text or "").strip() for p in packages.iterchildren(TAG_PACKAGE))
    return Service(
        element.get("uri", ""),
        (reference.text or "").strip() if reference is not None else None,
        list_from_element(inline) if inline is not None else None,
        names,
    )


def build_rls_services(services: RlsServices) -> bytes:
    root = new_root()
    for service in services.services:
        root.append(service_element(service))
    return serialize(root)


def new_root() -> etree._Element:
    return etree.Element(TAG_SERVICES, nsmap={None: NS, "rl": NS_RESOURCE_LISTS})


def service_element(service: Service) -> etree._Element:
    element = etree.Element(TAG_SERVICE, uri=service.uri)
    if service.resource_list is not None:
        etree.SubElement(element, TAG_RESOURCE_LIST).text = service.resource_list
    else:
        inline = list_element(service.list or ResourceList())
        inline.tag = TAG_INLINE_LIST
        element.append(inline)
    if service.packages:
        packages = etree.SubElement(element, TAG_PACKAGES)
        for name in service.packages:
            etree.SubElement(packages, TAG_PACKAGE).text = name
    return element
