"""Render docs/api.md from the OpenRPC document: `python -m sipd.rpc.apidoc > docs/api.md`."""

from __future__ import annotations

import json

from .methods import registry
from .openrpc import openrpc_document

INTRO = """# sipd RPC API

Generated from `rpc.discover` by `make docs` (`python -m sipd.rpc.apidoc`); do not edit by hand.

Transport: JSON-RPC 2.0 text frames on a WebSocket (the URL and token are in
`<runtime-dir>/rpc.json`). Authenticate with `Authorization: Bearer TOKEN` on the handshake or
call `auth.login({"token": TOKEN})` first. Params are named (an object) or positional (an
array, in the order listed). Batches are answered as batches.

Events arrive as notifications `{"method": "event", "params": {"seq", "time", "topic", "name",
"data", "subscription"}}` after `events.subscribe`. Other notifications: `events.gap`
(`{subscription, first, last}`: events a resumed subscription can no longer replay) and
`rpc.warning` (`{reason}`: this client is falling behind and will be disconnected).
"""


def _type(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    return schema.get("type", "any")


def render() -> str:
    doc = openrpc_document(registry)
    lines = [INTRO, "## Errors", "", "| code | meaning |", "|---|---|"]
    for error in doc["components"]["errors"].values():
        lines.append(f"| {error['code']} | {error['message']} |")
    lines.append("")
    for method in doc["methods"]:
        lines += [f"## `{method['name']}`", "", method["summary"], ""]
        if method.get("description"):
            lines += [method["description"], ""]
        if method.get("x-authentication"):
            lines += ["Allowed before authentication.", ""]
        if method["params"]:
            lines += ["| param | type | required | description |", "|---|---|---|---|"]
            for p in method["params"]:
                lines.append(f"| `{p['name']}` | {_type(p['schema'])} | "
                             f"{'yes' if p['required'] else 'no'} | {p.get('description', '')} |")
            lines.append("")
        else:
            lines += ["No params.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
