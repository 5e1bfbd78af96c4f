"""auth.login: how a client without a bearer header (a browser) authenticates."""

from __future__ import annotations

from typing import Annotated

from ..api import method
from ..connection import CLOSE_POLICY
from ..dispatch import CallContext
from ..errors import UNAUTHENTICATED, RpcError

MAX_FAILED_LOGINS = 3


@method("auth.login", auth=False)
async def login(ctx: CallContext, *, token: Annotated[str, "the token from rpc.json"]) -> dict:
    """Authenticate this connection with the daemon's token.

    Needed once per connection unless the handshake carried 'Authorization: Bearer TOKEN'.
    After three wrong tokens the connection is closed."""
    connection = ctx.connection
    if not ctx.server.token_matches(token):
        connection.failed_logins += 1
        if connection.failed_logins >= MAX_FAILED_LOGINS:
            connection.close(CLOSE_POLICY, "too many wrong tokens")
        raise RpcError(UNAUTHENTICATED, "Not authenticated",
                       {"reason": "wrong token; read it from rpc.json in the runtime directory"})
    connection.authenticated = True
    return {"authenticated": True}
