"""How sipctl prints results and events: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = ()) -> None:
    if not rows:
        print("(none)")
        return
    columns = columns or tuple(dict.fromkeys(key for row in rows for key in row))
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    widths = {c: min(w, 60) for c, w in widths.items()}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(_cell(row.get(c))[:60].ljust(widths[c]) for c in columns).rstrip())


def print_result(result: Any, as_json: bool, table_key: str | None,
                 columns: tuple[str, ...] = ()) -> None:
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif table_key and isinstance(result, dict) and isinstance(result.get(table_key), list):
        print_table(result[table_key], columns)
    elif isinstance(result, dict):
        if len(result) == 1 and isinstance(next(iter(result.values())), dict):
            result = next(iter(result.values()))
        width = max((len(k) for k in result), default=0)
        for key, value in result.items():
            print(f"{key.ljust(width)}  {_cell(value)}")
    elif isinstance(result, list) and all(isinstance(r, dict) for r in result):
        print_table(result)
    else:
        print(_cell(result))


def print_event(message: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(message, ensure_ascii=False))
        return
    params = message.get("params", {})
    if message.get("method") == "event":
        stamp = time.strftime("%H:%M:%S", time.localtime(params.get("time", 0)))
        print(f"{stamp} #{params.get('seq')} {params.get('name')} "
              f"{json.dumps(params.get('data'), ensure_ascii=False)}")
    else:
        print(f"{message.get('method')} {json.dumps(params, ensure_ascii=False)}")
