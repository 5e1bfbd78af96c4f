"""accounts.*: SIP accounts, persisted with the settings, and their registrations."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Literal

from ...accounts.model import AccountNotFound, DuplicateAccount, ReadOnlyAccount
from ...settings.errors import PersistError, SettingError
from ..api import method
from ..dispatch import CallContext
from ..errors import CONFLICT, STORAGE_ERROR, RpcError, invalid_params, not_found
from ..registry import Constraint

ID = Annotated[str, Constraint(minLength=1), "an account id (accounts.list shows them)"]
URI = Annotated[str, "a SIP URI, e.g. sip:127.0.0.1:5060;transport=tcp"]


@contextmanager
def _account_errors(account_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except AccountNotFound:
        raise not_found("account", account_id) from None
    except DuplicateAccount as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc), "id": exc.existing_id}) from None
    except ReadOnlyAccount as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc)}) from None
    except SettingError as exc:
        raise invalid_params(str(exc), field=exc.key) from None
    except PersistError as exc:
        raise RpcError(STORAGE_ERROR, "Storage error", {"reason": str(exc)}) from None
    except ValueError as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc)}) from None


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@method("accounts.list")
async def list_(
    ctx: CallContext, *,
    limit: Annotated[int, Constraint(minimum=1, maximum=1000),
                     "at most this many accounts (default: every one)"] | None = None,
    after: Annotated[str, "the `next` of the previous page: the accounts after this "
                     "id"] | None = None,
) -> dict:
    """Accounts with their registration state: the built-in `local` one first, then the others
    by id. With `limit`, a page: `next` is the `after` of the following page (null after the
    last). Paging goes on where it was when accounts are added or removed meanwhile."""
    accounts, next_after = ctx.service.useragent.accounts.page(limit, after)
    return {"accounts": accounts, "next": next_after}


@method("accounts.get")
async def get(ctx: CallContext, *, id: ID) -> dict:
    """One account; the password is never returned, only `password_set`."""
    accounts = ctx.service.useragent.accounts
    with _account_errors(id):
        return accounts.public(accounts.get(id))


@method("accounts.add")
async def add(
    ctx: CallContext, *,
    aor: Annotated[str, "the address of record, e.g. sip:alice@example.com"],
    password: Annotated[str | None, "the digest password (write-only)"] = None,
    username: Annotated[str | None, "the digest user name (default: the AOR's user)"] = None,
    display_name: Annotated[str | None, "the name shown to others"] = None,
    registrar: Annotated[str | None, "the registrar's SIP URI (default: RFC 3263 on the "
                         "AOR's domain)"] = None,
    outbound_proxy: Annotated[str | None, "a SIP URI every request goes through"] = None,
    transport: Annotated[Literal["", "udp", "tcp", "tls"] | None,
                         "preferred transport (\"\": as located)"] = None,
    register: Annotated[bool | None, "register the account (default true)"] = None,
    expires: Annotated[int | None, "registration lifetime asked for, in seconds"] = None,
    auto_answer: Annotated[bool | None, "answer incoming calls at once (default false)"] = None,
    voicemail: Annotated[str | None, "voicemail URI whose message summary is subscribed "
                         "(often the AOR)"] = None,
    message_summary: Annotated[bool | None, "subscribe to the voicemail's message summary "
                               "(default true)"] = None,
    auto_accept_chat: Annotated[bool | None, "accept the remote party's proposals to add "
                                "chat to a session at once (default false)"] = None,
    xcap: Annotated[dict[str, Any] | None, "XCAP settings: {root, username, password, "
                    "verify_tls, basic_in_clear, presence_service_uri} (root \"\": contacts "
                    "stay in sipd's state)"] = None,
) -> dict:
    """Add an account; it starts registering at once unless register is false.

    Registration progress arrives as `account.registration` events."""
    with _account_errors():
        return await ctx.service.useragent.accounts.add(_given(
            aor=aor, password=password, username=username, display_name=display_name,
            registrar=registrar, outbound_proxy=outbound_proxy, transport=transport,
            register=register, expires=expires, auto_answer=auto_answer, voicemail=voicemail,
            message_summary=message_summary, auto_accept_chat=auto_accept_chat, xcap=xcap))


@method("accounts.update")
async def update(
    ctx: CallContext, *, id: ID,
    changes: Annotated[dict[str, Any], "the fields to change (as in accounts.add)"],
) -> dict:
    """Change some fields of an account; a change that affects registration re-registers."""
    with _account_errors(id):
        return await ctx.service.useragent.accounts.update(
            id, {k: v for k, v in changes.items() if v is not None})


@method("accounts.remove")
async def remove(ctx: CallContext, *, id: ID) -> dict:
    """Unregister (waiting a few seconds at most) and forget an account."""
    with _account_errors(id):
        return await ctx.service.useragent.accounts.remove(id)


@method("accounts.register")
async def register(ctx: CallContext, *, id: ID) -> dict:
    """Register now (or again), whatever the account's register field says."""
    with _account_errors(id):
        return await ctx.service.useragent.accounts.register(id)


@method("accounts.unregister")
async def unregister(ctx: CallContext, *, id: ID) -> dict:
    """Remove the registration (the account stays)."""
    with _account_errors(id):
        return await ctx.service.useragent.accounts.unregister(id)
