"""contacts.*: the account's contacts and groups, on its XCAP server or in sipd's state.

The same calls whether the account has XCAP or not; `store` in the results says which. With
XCAP, an edit made while the server is away waits in the journal (`pending` counts them) and
lands when it is back; a refusal of the server (409) is an error carrying the server's reason.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Any, Iterator

from ...accounts.model import AccountNotFound
from ...contacts.service import NoXcapError, NotReadyError
from ...settings.errors import PersistError
from ...xcap.errors import (
    XcapConflictError, XcapDocumentError, XcapEditError, XcapError, XcapHTTPError,
    XcapNotFoundError, XcapUnavailableError, XcapUriError,
)
from ..api import method
from ..dispatch import CallContext
from ..errors import (
    CONFLICT, NOT_FOUND, REMOTE_ERROR, STORAGE_ERROR, UNAVAILABLE, RpcError, invalid_params,
    not_found,
)

ACCOUNT = Annotated[str, "an account id (accounts.list shows them)"]
CONTACT_URI = Annotated[str, "the contact's address, e.g. sip:bob@example.com"]
GROUPS = Annotated[list[str] | None, "the groups the contact is in ([]: none)"]


@contextmanager
def xcap_errors(account_id: str | None = None) -> Iterator[None]:
    """XCAP and store failures as the RPC errors a user can act on."""
    try:
        yield
    except AccountNotFound:
        raise not_found("account", account_id) from None
    except (XcapEditError, XcapUriError) as exc:
        raise invalid_params(str(exc)) from None
    except XcapConflictError as exc:
        data: dict[str, Any] = {"reason": str(exc), "status": 409}
        if exc.error is not None:
            data["error"] = exc.error.describe()
        raise RpcError(REMOTE_ERROR, "Remote error", data) from None
    except XcapNotFoundError as exc:
        raise RpcError(NOT_FOUND, "Not found", {"reason": str(exc), "status": 404}) from None
    except XcapHTTPError as exc:
        raise RpcError(REMOTE_ERROR, "Remote error",
                       {"reason": str(exc), "status": exc.status}) from None
    except XcapDocumentError as exc:
        raise RpcError(REMOTE_ERROR, "Remote error", {"reason": str(exc)}) from None
    except (XcapUnavailableError, NotReadyError) as exc:
        raise RpcError(UNAVAILABLE, "Unavailable", {"reason": str(exc)}) from None
    except NoXcapError as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc)}) from None
    except PersistError as exc:
        raise RpcError(STORAGE_ERROR, "Storage error", {"reason": str(exc)}) from None
    except XcapError as exc:
        raise RpcError(REMOTE_ERROR, "Remote error", {"reason": str(exc)}) from None


def _contacts(ctx: CallContext) -> Any:
    contacts = ctx.service.contacts
    if contacts is None:
        raise RpcError(UNAVAILABLE, "Unavailable", {"reason": "contacts are not running"})
    return contacts


def _accounts(ctx: CallContext, account: str | None) -> list[str]:
    contacts = _contacts(ctx)
    if account is None:
        return list(contacts.account_ids())  # "local" too: contacts for direct calls
    with xcap_errors(account):
        ctx.service.useragent.accounts.get(account)
    return [account]


async def _result(ctx: CallContext, account: str, contact: Any) -> dict[str, Any]:
    contacts = _contacts(ctx)
    book = await contacts.book(account)
    return {**contacts.summary(account, book), "contact": contact.to_dict()}


@method("contacts.list")
async def list_(ctx: CallContext, *,
                account: Annotated[str | None, "only this account's (default: every account's)"]
                = None) -> dict[str, Any]:
    """The contacts: {contacts: [{account, uri, name, groups, presence}], accounts: [{account,
    store, online, pending}]}.

    `store` is "xcap" or "local" (sipd's state); `pending` counts edits waiting for the XCAP
    server. Events: topic `contacts`: `contact.added|updated|removed` {account, contact}, for
    this client's edits and other devices' alike; topic `xcap`: `xcap.changed` {account, auid,
    document, etag} when a document changed on the server, `xcap.journal` {account, pending}
    while edits wait, `xcap.refused` {account, operation, error} when the server refused a
    waiting edit (it is dropped), or with `operation` null when sipd refused what the server
    sent (an unreadable document, an xcap-diff NOTIFY it cannot read)."""
    contacts = _contacts(ctx)
    found: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    for account_id in _accounts(ctx, account):
        with xcap_errors(account_id):
            book = await contacts.book(account_id)
        accounts.append(contacts.summary(account_id, book))
        found.extend({"account": account_id, **c.to_dict()} for c in book.contacts())
    return {"contacts": found, "accounts": accounts}


@method("contacts.add")
async def add(
    ctx: CallContext, *, account: ACCOUNT, uri: CONTACT_URI,
    name: Annotated[str | None, "the name shown for the contact"] = None,
    groups: GROUPS = None,
    presence: Annotated[bool | None, "watch the contact's presence (put it in the account's "
                        "presence list)"] = None,
) -> dict[str, Any]:
    """Add a contact (or make an existing one what the params say): {account, store, online,
    pending, contact}.

    Published as `contact.added`. With XCAP, `pending` > 0 means the server is away and the
    edit waits in the journal."""
    with xcap_errors(account):
        contact = await _contacts(ctx).add(account, uri, name=name, groups=groups or (),
                                           presence=bool(presence))
        return await _result(ctx, account, contact)


@method("contacts.update")
async def update(
    ctx: CallContext, *, account: ACCOUNT, uri: CONTACT_URI,
    name: Annotated[str | None, "a new name (\"\": none)"] = None,
    groups: GROUPS = None,
    presence: Annotated[bool | None, "watch the contact's presence or not"] = None,
) -> dict[str, Any]:
    """Change the fields given of a contact (the others stay): {account, store, online,
    pending, contact}."""
    with xcap_errors(account):
        contacts = _contacts(ctx)
        book = await contacts.book(account)
        if book.contact(uri) is None:
            raise not_found("contact", uri)
        contact = await contacts.update(account, uri, name=name, groups=groups,
                                        presence=presence)
        return await _result(ctx, account, contact)


@method("contacts.remove")
async def remove(ctx: CallContext, *, account: ACCOUNT, uri: CONTACT_URI) -> dict[str, Any]:
    """Remove a contact from every group and the presence list: {account, store, online,
    pending, uri}."""
    with xcap_errors(account):
        contacts = _contacts(ctx)
        if not await contacts.remove(account, uri):
            raise not_found("contact", uri)
        book = await contacts.book(account)
        return {**contacts.summary(account, book), "uri": uri}


@method("contacts.groups")
async def groups(ctx: CallContext, *,
                 account: Annotated[str | None, "only this account's (default: every "
                                    "account's)"] = None) -> dict[str, Any]:
    """The groups: {groups: [{account, name, contacts}]} (`contacts`: how many are in it)."""
    contacts = _contacts(ctx)
    found: list[dict[str, Any]] = []
    for account_id in _accounts(ctx, account):
        with xcap_errors(account_id):
            book = await contacts.book(account_id)
        members = book.contacts()
        found.extend({"account": account_id, "name": group,
                      "contacts": sum(group in c.groups for c in members)}
                     for group in book.groups())
    return {"groups": found}
