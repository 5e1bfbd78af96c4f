"""The OpenRPC document of the registered methods (rpc.discover), generated from signatures."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .errors import CODES
from .registry import Registry

EVENT_NOTIFICATION = {
    "name": "event",
    "summary": "An event the client subscribed to (events.subscribe).",
    "params": ["seq", "time", "topic", "name", "data", "subscription"],
}


def openrpc_document(registry: Registry) -> dict[str, Any]:
    methods = []
    for method in sorted(registry.methods.values(), key=lambda m: m.name):
        entry: dict[str, Any] = {
            "name": method.name,
            "summary": method.summary,
            "paramStructure": "either",
            "params": [{"name": p.name, "required": p.required, "schema": p.schema,
                        **({"description": p.schema["description"]}
                           if "description" in p.schema else {})}
                       for p in method.params],
            "result": {"name": "result", "schema": method.result_schema},
        }
        if method.description:
            entry["description"] = method.description
        if not method.needs_auth:
            entry["x-authentication"] = "not required"
        methods.append(entry)
    return {
        "openrpc": "1.2.6",
        "info": {"title": "sipd", "version": __version__,
                 "description": "JSON-RPC 2.0 over WebSocket: accounts, calls, chat, presence."},
        "methods": methods,
        "components": {"errors": {str(code): {"code": code, "message": message}
                                  for code, message in CODES.items()}},
        "x-notifications": [EVENT_NOTIFICATION,
                            {"name": "events.gap", "params": ["subscription", "first", "last"]},
                            {"name": "rpc.warning", "params": ["reason"]}],
    }
