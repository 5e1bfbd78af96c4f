"""JSON-RPC error codes of sipd and the exception methods raise to return them.

The spec's codes (-32700..-32603) plus sipd's own in the server-error range; docs/api.md lists
them. Every error carries `data` telling a user what to fix.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# sipd's own codes
UNAUTHENTICATED = -32001   # call before auth.login (or a wrong token)
NOT_FOUND = -32002         # an unknown account, session, stream or subscription id
CONFLICT = -32003          # the object is not in a state that allows this call
STORAGE_ERROR = -32004     # a change could not be saved (read-only directory, full disk)
UNAVAILABLE = -32005       # the daemon is stopping or a needed part is not running
REMOTE_ERROR = -32006      # the remote party or server refused (SIP code in data)

CODES: dict[int, str] = {
    PARSE_ERROR: "Parse error: the frame is not valid JSON",
    INVALID_REQUEST: "Invalid request: not a JSON-RPC 2.0 request object",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: ("Invalid params: a parameter is missing, unknown, of the wrong type or "
                     "out of range"),
    INTERNAL_ERROR: "Internal error: a bug in sipd; the log has the details",
    UNAUTHENTICATED: "Not authenticated: call auth.login with the token from rpc.json first",
    NOT_FOUND: "Not found: no object with this id",
    CONFLICT: "Conflict: the object's state does not allow this call now",
    STORAGE_ERROR: "Storage error: the change could not be saved; nothing was changed",
    UNAVAILABLE: "Unavailable: the daemon is stopping or a part it needs is not running",
    REMOTE_ERROR: "Remote error: the remote party or server refused",
}


class RpcError(Exception):
    """Raised by a method to answer with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid_params(what: str, **data: Any) -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid params", {"reason": what, **data})


def not_found(kind: str, ident: Any) -> RpcError:
    return RpcError(NOT_FOUND, f"{kind} not found", {"reason": f"no {kind} with id {ident!r}",
                                                     "id": ident})
