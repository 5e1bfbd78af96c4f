"""xcap.*: raw access to the account's documents on its XCAP server, for power users.

Every write is conditional: on the `etag` given, else on the document's current ETag (or on
its absence, to create it), so a raw write never silently overwrites another device's. A write
to a document sipd manages (resource-lists, pres-rules...) makes it read that document again.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from ..api import method
from ..dispatch import CallContext
from ...xcap.errors import XcapEditError
from ...xcap.prescontent import StatusIcon
from ..errors import invalid_params
from ..registry import Constraint
from .contacts import ACCOUNT, _contacts, xcap_errors

AUID = Annotated[str, Constraint(minLength=1), "the application usage, e.g. resource-lists, "
                 "pres-rules, rls-services, pidf-manipulation"]
DOCUMENT = Annotated[str | None, "the document's name in the user's folder (default index)"]
NODE = Annotated[str | None, "a node selector (RFC 4825 §6.3) addressing an element or "
                 "attribute, e.g. resource-lists/list[@name=\"Friends\"]"]
NAMESPACES = Annotated[dict[str, Any] | None, "prefixes used in `node`, e.g. {\"rl\": "
                       "\"urn:ietf:params:xml:ns:resource-lists\"}"]
ETAG = Annotated[str | None, "the ETag the write is based on (If-Match)"]


async def _uri(ctx: CallContext, account: str, auid: str, document: str | None,
               node: str | None, namespaces: dict[str, Any] | None) -> tuple[Any, Any]:
    if namespaces is not None and not all(isinstance(v, str) for v in namespaces.values()):
        raise invalid_params("namespaces: every value must be a namespace URI string",
                             field="namespaces")
    manager = await _contacts(ctx).manager(account)
    return manager, manager.raw_uri(auid, document, node, namespaces)


@method("xcap.get")
async def get(ctx: CallContext, *, account: ACCOUNT, auid: AUID, document: DOCUMENT = None,
              node: NODE = None, namespaces: NAMESPACES = None) -> dict[str, Any]:
    """A document, element or attribute as the server has it: {etag, content_type, content}.

    `content` is text; a body that is not UTF-8 comes as `content_base64` instead."""
    with xcap_errors(account):
        manager, uri = await _uri(ctx, account, auid, document, node, namespaces)
        result = await manager.get_raw(uri)
    answer: dict[str, Any] = {"etag": result.etag, "content_type": result.content_type}
    try:
        answer["content"] = result.content.decode("utf-8")
    except UnicodeDecodeError:
        answer["content_base64"] = base64.b64encode(result.content).decode("ascii")
    return answer


@method("xcap.put")
async def put(ctx: CallContext, *, account: ACCOUNT, auid: AUID,
              content: Annotated[str, "the document, element or attribute value"],
              document: DOCUMENT = None, node: NODE = None, namespaces: NAMESPACES = None,
              etag: ETAG = None,
              content_type: Annotated[str | None, "its MIME type (default: the usage's, or "
                                      "the element / attribute type for a node)"] = None,
              ) -> dict[str, Any]:
    """Write a document, element or attribute: {etag} (the document's new ETag).

    A 409 of the server is an error (-32006) whose data carries the server's reason."""
    with xcap_errors(account):
        manager, uri = await _uri(ctx, account, auid, document, node, namespaces)
        new = await manager.put_raw(uri, content.encode("utf-8"), content_type=content_type,
                                    etag=etag)
    return {"etag": new}


@method("xcap.delete")
async def delete(ctx: CallContext, *, account: ACCOUNT, auid: AUID, document: DOCUMENT = None,
                 node: NODE = None, namespaces: NAMESPACES = None,
                 etag: ETAG = None) -> dict[str, Any]:
    """Delete a document, element or attribute: {etag} (the document's ETag after, if any)."""
    with xcap_errors(account):
        manager, uri = await _uri(ctx, account, auid, document, node, namespaces)
        new = await manager.delete_raw(uri, etag=etag)
    return {"etag": new}


@method("xcap.set_icon")
async def set_icon(ctx: CallContext, *, account: ACCOUNT,
                   content_base64: Annotated[str, Constraint(minLength=1),
                                             "the image, base64-encoded"],
                   mime_type: Annotated[str, "its type, e.g. image/png"],
                   description: Annotated[str | None, "what it shows"] = None
                   ) -> dict[str, Any]:
    """Put the account's status icon on its XCAP server (OMA pres-content,
    org.openmobilealliance.pres-content/users/<aor>/oma_status-icon/icon): {etag, uri}.

    `uri` is where watchers fetch it: pass it as presence.publish's `icon`."""
    try:
        data = base64.b64decode(content_base64, validate=True)
    except ValueError:
        raise invalid_params("content_base64 is not base64", field="content_base64") from None
    try:
        icon = StatusIcon(data, mime_type, description)
    except XcapEditError as exc:
        raise invalid_params(str(exc)) from None
    with xcap_errors(account):
        manager = await _contacts(ctx).manager(account)
        etag = await manager.set_status_icon(icon)
    return {"etag": etag, "uri": str(manager.status_icon_uri)}
