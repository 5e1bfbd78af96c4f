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

Limits at the front door: a frame is at most `rpc.max_message_bytes` (larger ones close the
connection with 1009), JSON nested at most 64 levels (-32600; too deep to parse: -32700), a
batch at most `rpc.max_batch` requests (-32600 for the whole batch). Strings must be valid
Unicode: a lone surrogate (an unpaired `\\ud800`-`\\udfff` escape) anywhere in a request is
-32602 with `data.field` naming where (`id`, `params.value[2]`...). A client has at most 32
requests in flight, batch members included. Three wrong tokens to `auth.login` (invalid params
count as one) close the connection with 1008, and nothing it sent after them, in a batch or
not, is evaluated; batch members left are answered -32005.

Events arrive as notifications `{"method": "event", "params": {"seq", "time", "topic", "name",
"data", "subscription"}}` after `events.subscribe`. Other notifications: `events.gap`
(`{subscription, first, last}`: events a resumed subscription can no longer replay) and
`rpc.warning` (`{reason}`: this client is falling behind and will be disconnected).
`seq` rises by one per event and keeps rising across restarts of the daemon; `boot` (in
`rpc.json`, `system.state` and the `events.subscribe` result) is new at each start. A client
that does not read is warned at three quarters of `rpc.client_queue` events or
`rpc.client_queue_bytes` bytes and disconnected (1013) past either; replayed events do not
count against them.
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
