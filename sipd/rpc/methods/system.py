"""system.*: who the daemon is, what is live in it, and stopping it; rpc.discover."""

from __future__ import annotations

from typing import Annotated

from ..api import method
from ..dispatch import CallContext
from ..openrpc import openrpc_document


@method("system.version")
async def version(ctx: CallContext) -> dict:
    """The daemon's name, version and process id."""
    return ctx.service.version()


@method("system.state")
async def state(
    ctx: CallContext, *,
    accounts: Annotated[bool, "also list every account (as accounts.list does); with many "
                        "accounts, page through accounts.list instead"] = False,
) -> dict:
    """A snapshot of everything live (for clients that join late), with the current event seq.

    Subscribe with `since` set to the returned `seq` (and `boot` to the returned `boot`, which
    names this run of the daemon) to get every change after the snapshot. `descriptors` shows
    the file descriptor budget (limit, open, reserved_for_rpc, margin, refused connections),
    `rpc` the clients and their requests in flight, `history` whether the history is on
    (`enabled`, `path`, `keep_days`; `reason` when it is off), `sip` the ports, the SIP TCP/TLS
    connections (open, inbound, caps, refused, replaced) and the UDP socket (receive_buffer
    granted, datagrams the kernel dropped). `accounts` counts the accounts (`count`) and their
    registrations by state (`registration`); `accounts.list` pages through them."""
    snapshot = ctx.service.state()
    if accounts and ctx.service.useragent is not None:
        snapshot["accounts"]["list"] = ctx.service.useragent.accounts.list()
    return snapshot


@method("system.shutdown")
async def shutdown(ctx: CallContext) -> dict:
    """Stop the daemon cleanly: clients get system.stopping, then their connections close."""
    ctx.service.request_stop(f"shutdown requested by RPC client {ctx.connection.id}")
    return {"stopping": True}


@method("rpc.discover")
async def discover(ctx: CallContext) -> dict:
    """The OpenRPC document of every method: names, descriptions, parameter schemas."""
    return openrpc_document(ctx.registry)
