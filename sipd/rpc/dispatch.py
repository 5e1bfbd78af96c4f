"""From one WebSocket text frame to its JSON-RPC reply (or none, for notifications).

jsonrpcserver invokes methods (its `call`) and shapes responses; the parts it cannot do under
trio, or does slowly, are ours:
its async batch path uses asyncio.gather, so batch members run here in a trio nursery; its
JSON-schema request validation costs two thirds of its throughput, so the (simple) request
shape is checked here by hand, and params are checked against each method's signature by the
registry, which gives errors a user can act on.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import trio
from jsonrpcserver.async_dispatcher import call
from jsonrpcserver.dispatcher import create_request, to_response
from jsonrpcserver.response import to_serializable
from jsonrpcserver.result import Error, Success

from . import errors
from .errors import RpcError
from .registry import Method, Registry

log = logging.getLogger(__name__)


@dataclass
class CallContext:
    """What a method sees of the caller: the daemon's service and the client's connection."""
    service: Any
    connection: Any
    registry: Registry
    server: Any
    after_reply: list[Callable[[], None]] = field(default_factory=list)


class Dispatcher:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        # jsonrpcserver's method table: one thin adapter per registered method.
        self._methods = {name: self._adapter(method) for name, method in registry.methods.items()}

    async def handle_frame(self, text: str | bytes, ctx: CallContext) -> str | None:
        try:
            payload = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            return _dumps(_error(None, errors.PARSE_ERROR, "Parse error", {"reason": str(exc)}))
        if isinstance(payload, list):
            if not payload:
                return _dumps(_error(None, errors.INVALID_REQUEST, "Invalid request",
                                     {"reason": "an empty batch"}))
            replies: list[Any] = [None] * len(payload)

            async def run(index: int, member: Any) -> None:
                replies[index] = await self.handle_request(member, ctx)

            async with trio.open_nursery() as nursery:
                for index, member in enumerate(payload):
                    nursery.start_soon(run, index, member)
            answered = [reply for reply in replies if reply is not None]
            return _dumps(answered) if answered else None
        reply = await self.handle_request(payload, ctx)
        return None if reply is None else _dumps(reply)

    async def handle_request(self, request: Any, ctx: CallContext) -> dict[str, Any] | None:
        problem = _shape_problem(request)
        if problem:
            ident = request.get("id") if isinstance(request, dict) and _valid_id(request) else None
            return _error(ident, errors.INVALID_REQUEST, "Invalid request", {"reason": problem})
        name = request["method"]
        if name not in self._methods:
            if "id" not in request:
                return None
            return _error(request["id"], errors.METHOD_NOT_FOUND, "Method not found",
                          {"reason": f"no method {name!r}", "did_you_mean":
                           difflib.get_close_matches(name, self._methods, n=3)})
        # jsonrpcserver's dispatch_request would also bind the params with inspect.signature
        # on every call (a third of the dispatch time); the registry has checked them already.
        parsed = create_request(request)
        result = await call(parsed, ctx, self._methods[name])
        if "id" not in request:
            return None
        return to_serializable(to_response(parsed, result))

    def _adapter(self, method: Method) -> Callable[..., Any]:
        async def call(ctx: CallContext, *args: Any, **kwargs: Any) -> Any:
            try:
                if method.needs_auth and not ctx.connection.authenticated:
                    raise RpcError(errors.UNAUTHENTICATED, "Not authenticated", {
                        "reason": "call auth.login({\"token\": ...}) first, with the token from "
                                  "rpc.json, or send 'Authorization: Bearer TOKEN' on the handshake"})
                params = method.bind(list(args) if args else kwargs)
                return Success(await method.handler(ctx, **params))
            except RpcError as exc:
                return Error(exc.code, exc.message, exc.data)
            except Exception:
                log.exception("method %s failed", method.name)
                return Error(errors.INTERNAL_ERROR, "Internal error",
                             {"reason": f"{method.name} failed unexpectedly; the daemon log has "
                                        "the details"})
        return call


def _valid_id(request: dict[str, Any]) -> bool:
    ident = request.get("id")
    return ident is None or (isinstance(ident, (str, int, float)) and not isinstance(ident, bool))


def _shape_problem(request: Any) -> str | None:
    if not isinstance(request, dict):
        return f"a request must be an object, got {type(request).__name__}"
    if request.get("jsonrpc") != "2.0":
        return 'a request must have "jsonrpc": "2.0"'
    if not isinstance(request.get("method"), str):
        return 'a request must have a "method" string'
    if "params" in request and not isinstance(request["params"], (dict, list)):
        return '"params" must be an object or an array'
    if not _valid_id(request):
        return '"id" must be a string, a number or null'
    extra = set(request) - {"jsonrpc", "method", "params", "id"}
    if extra:
        return f"unknown member(s) {sorted(extra)}"
    return None


def _error(ident: Any, code: int, message: str, data: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data},
            "id": ident}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
