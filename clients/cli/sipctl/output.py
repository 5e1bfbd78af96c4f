"""How sipctl prints results and events: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _lookup(row: dict[str, Any], column: str) -> Any:
    """The value of a column; "registration.state" reaches into a nested object."""
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _title(column: str) -> str:
    return column.replace(".", " ").upper()


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = ()) -> None:
    if not rows:
        print("(none)")
        return
    columns = columns or tuple(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(_lookup(row, c)) for c in columns] for row in rows]
    widths = [min(max(len(_title(c)), *(len(line[i]) for line in cells)), 60)
              for i, c in enumerate(columns)]
    print("  ".join(_title(c).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(cell[:60].ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


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
