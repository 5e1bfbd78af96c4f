"""auth.login: how a client without a bearer header (a browser) authenticates."""

from __future__ import annotations

import logging
from typing import Annotated

from ..api import method
from ..connection import CLOSE_POLICY
from ..dispatch import CallContext
from ..errors import UNAUTHENTICATED, RpcError

log = logging.getLogger(__name__)

MAX_FAILED_LOGINS = 3


def _failed_login(ctx: CallContext) -> None:
    """A wrong token, or params that cannot be a token: either way one guess used up."""
    connection = ctx.connection
    connection.failed_logins += 1
    log.warning("client %d at %s: wrong token, attempt %d of %d", connection.id,
                connection.remote, connection.failed_logins, MAX_FAILED_LOGINS)
    if connection.failed_logins >= MAX_FAILED_LOGINS:
        connection.close(CLOSE_POLICY, "too many wrong tokens")


@method("auth.login", auth=False, on_invalid_params=_failed_login)
async def login(ctx: CallContext, *, token: Annotated[str, "the token from rpc.json"]) -> dict:
    """Authenticate this connection with the daemon's token.

    Needed once per connection unless the handshake carried 'Authorization: Bearer TOKEN'.
    After three wrong tokens (invalid params count as one) the connection is closed, and
    what it sent after them is not evaluated, in a batch too."""
    connection = ctx.connection
    if connection.failed_logins >= MAX_FAILED_LOGINS:
        raise RpcError(UNAUTHENTICATED, "Not authenticated",
                       {"reason": "too many wrong tokens: this connection is closing"})
    if not ctx.server.token_matches(token):
        _failed_login(ctx)
        raise RpcError(UNAUTHENTICATED, "Not authenticated",
                       {"reason": "wrong token; read it from rpc.json in the runtime directory"})
    connection.authenticated = True
    return {"authenticated": True}
