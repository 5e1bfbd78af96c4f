"""From one WebSocket text frame to its JSON-RPC reply (or none, for notifications).

jsonrpcserver invokes methods (its `call`) and shapes responses; the parts it cannot do under
trio, or does slowly, are ours:
its async batch path uses asyncio.gather, so batch members run here in a trio nursery; its
JSON-schema request validation costs two thirds of its throughput, so the (simple) request
shape is checked here by hand, and params are checked against each method's signature by the
registry, which gives errors a user can act on.

What no method should ever see is refused here: JSON nested deeper than MAX_DEPTH (Python's
parser and everything after it recurse), strings with lone surrogates (JSON's "\\ud800": not a
character, it can be neither saved nor sent), batches longer than `rpc.max_batch`. Batch
members count against the connection's in-flight limit like separate requests, and a batch
stops when its connection is closing (three wrong tokens, say).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import trio
from jsonrpcserver.async_dispatcher import call
from jsonrpcserver.dispatcher import create_request, to_response
from jsonrpcserver.response import to_serializable
from jsonrpcserver.result import Error, Success

from ..settings.kinds import surrogate_in
from . import errors
from .errors import RpcError
from .registry import Method, Registry

log = logging.getLogger(__name__)

MAX_DEPTH = 64  # levels of JSON nesting in a frame (a request object is one, a batch one more)

# A JSON escape that decodes to a surrogate; decoded UTF-8 text (all a WebSocket text frame can
# hold) never contains one, so a frame without this needs no search for lone surrogates.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            payload = json.loads(text)
        except RecursionError:
            return _dumps(_error(None, errors.PARSE_ERROR, "Parse error", {
                "reason": f"the JSON is nested too deep to parse; at most {MAX_DEPTH} levels"}))
        except (ValueError, UnicodeDecodeError) as exc:
            return _dumps(_error(None, errors.PARSE_ERROR, "Parse error", {"reason": str(exc)}))
        if _too_deep(text, payload):
            return _dumps(_error(None, errors.INVALID_REQUEST, "Invalid request", {
                "reason": f"the JSON is nested more than {MAX_DEPTH} levels deep"}))
        checked = _Checked(surrogates=_SURROGATE_ESCAPE.search(text) is not None)
        if isinstance(payload, list):
            return await self._handle_batch(payload, ctx, checked)
        reply = await self.handle_request(payload, ctx, checked)
        return None if reply is None else _dumps(reply)

    async def _handle_batch(self, batch: list[Any], ctx: CallContext,
                            checked: _Checked) -> str | None:
        if not batch:
            return _dumps(_error(None, errors.INVALID_REQUEST, "Invalid request",
                                 {"reason": "an empty batch"}))
        most = ctx.service.settings.get("rpc.max_batch")
        if len(batch) > most:
            return _dumps(_error(None, errors.INVALID_REQUEST, "Invalid request", {
                "reason": f"a batch of {len(batch)} requests; at most {most} (rpc.max_batch): "
                          "send fewer per batch", "max_batch": most}))
        replies: list[Any] = [None] * len(batch)
        pending = iter(enumerate(batch))
        connection = ctx.connection
        limiter: trio.CapacityLimiter = connection.limiter

        async def lane(borrower: object | None) -> None:
            # Lanes share `pending`: each takes the next member when it is free.
            try:
                for index, member in pending:
                    closing = connection.closing
                    if closing is None:
                        replies[index] = await self.handle_request(member, ctx, checked)
                    elif isinstance(member, dict) and "id" in member and _valid_id(member):
                        replies[index] = _error(member["id"], errors.UNAVAILABLE, "Unavailable", {
                            "reason": f"not run: the connection is closing ({closing})"})
            finally:
                if borrower is not None:
                    limiter.release_on_behalf_of(borrower)

        # The frame holds one in-flight slot already (its lane never waits for another, so
        # batches cannot deadlock each other); more lanes run on the slots free right now.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lane, None)
            for _ in range(len(batch) - 1):
                borrower = object()
                try:
                    limiter.acquire_on_behalf_of_nowait(borrower)
                except trio.WouldBlock:
                    break
                nursery.start_soon(lane, borrower)
        answered = [reply for reply in replies if reply is not None]
        return _dumps(answered) if answered else None

    async def handle_request(self, request: Any, ctx: CallContext,
                             checked: _Checked | None = None) -> dict[str, Any] | None:
        surrogates = checked is None or checked.surrogates
        if surrogates and isinstance(request, dict) and isinstance(request.get("id"), str) \
                and surrogate_in(request["id"]) is not None:
            return _error(None, errors.INVALID_PARAMS, "Invalid params", _surrogate_data("id"))
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
        where = _surrogate_path(request.get("params"), "params") if surrogates else None
        if where is not None:
            method = self.registry.methods[name]
            if method.on_invalid_params is not None:
                method.on_invalid_params(ctx)
            if "id" not in request:
                return None
            return _error(request["id"], errors.INVALID_PARAMS, "Invalid params",
                          _surrogate_data(where))
        # jsonrpcserver's dispatch_request would also bind the params with inspect.signature
        # on every call (a third of the dispatch time); the registry has checked them already.
        parsed = create_request(request)
        result = await call(parsed, ctx, self._methods[name])
        if "id" not in request:
            return None
        return cast("dict[str, Any]", to_serializable(to_response(parsed, result)))

    def _adapter(self, method: Method) -> Callable[..., Any]:
        async def call(ctx: CallContext, *args: Any, **kwargs: Any) -> Any:
            try:
                if method.needs_auth and not ctx.connection.authenticated:
                    raise RpcError(errors.UNAUTHENTICATED, "Not authenticated", {
                        "reason": "call auth.login({\"token\": ...}) first, with the token from "
                                  "rpc.json, or send 'Authorization: Bearer TOKEN' on the "
                                  "handshake"})
                try:
                    params = method.bind(list(args) if args else kwargs)
                except RpcError:
                    if method.on_invalid_params is not None:
                        method.on_invalid_params(ctx)
                    raise
                return Success(await method.handler(ctx, **params))
            except RpcError as exc:
                return Error(exc.code, exc.message, exc.data)
            except Exception:
                log.exception("method %s failed", method.name)
                return Error(errors.INTERNAL_ERROR, "Internal error",
                             {"reason": f"{method.name} failed unexpectedly; the daemon log has "
                                        "the details"})
        return call


@dataclass(frozen=True)
class _Checked:
    """What the frame-wide checks found out, so requests skip what cannot apply."""
    surrogates: bool  # the frame may hold lone surrogates


def _too_deep(text: str, payload: Any) -> bool:
    # A frame with fewer brackets than the limit cannot be nested deeper (the common case).
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def _surrogate_path(value: Any, path: str) -> str | None:
    """Where the first string (or object key) with a lone surrogate is, e.g. params.value[2]."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if surrogate_in(item) is not None:
                return where
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if surrogate_in(key) is not None:
                    return f"{where} (a key)"
                stack.append((child, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in
                         reversed(list(enumerate(item))))
    return None


def _surrogate_data(where: str) -> dict[str, str]:
    return {"reason": f"{where}: a lone surrogate (a \\ud800-\\udfff escape not part of a "
                      "pair) is not a character; send valid Unicode", "field": where}


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
