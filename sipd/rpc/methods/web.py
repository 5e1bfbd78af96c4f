"""web.*: the web page the daemon serves (clients/web, on web.listen)."""

from __future__ import annotations

from ..api import method
from ..dispatch import CallContext
from ..errors import UNAVAILABLE, RpcError


@method("web.link")
async def link(ctx: CallContext) -> dict:
    """A one-time link that opens the web page logged in: `url` (the code is in its fragment,
    which browsers never send, so it stays out of logs) works once, within `expires_in`
    seconds. -32005 when the page is off (web.listen empty, or its port or certificate
    unusable: `reason` says which)."""
    web = ctx.service.web
    if web is None or web.url is None:
        reason = (web.error if web is not None else None) or "web.listen is empty"
        raise RpcError(UNAVAILABLE, "Web page unavailable", {"reason": reason})
    return web.login_link()
