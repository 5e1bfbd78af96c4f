"""sipctl: drive sipd from a shell, one subcommand per RPC method.

Prints tables for people and, with --json, the raw result for scripts. Exits 0 on success, 1
with a one-line reason when the daemon answers an error, 2 on usage errors, 3 when the daemon
cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from . import chat, files
from .client import DaemonNotFound, RpcCallError, connect, find_endpoint
from .commands import COMMANDS, Command
from .output import print_event, print_result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipctl", description="Control a running sipd.")
    parser.add_argument("--runtime-dir", type=Path, help="where sipd's rpc.json is")
    parser.add_argument("--url", help="the daemon's WebSocket URL (default: from rpc.json)")
    parser.add_argument("--token", help="the daemon's token (default: from rpc.json)")
    parser.add_argument("--json", action="store_true", help="print raw JSON results")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for a reply")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    call = sub.add_parser("call", help="call any RPC method: call METHOD [JSON-PARAMS]")
    call.add_argument("method")
    call.add_argument("params", nargs="?", help="params as JSON (object or array)")
    call.set_defaults(run=_run_call)

    watch = sub.add_parser("watch", help="stream events: watch [TOPIC...] [--since SEQ]")
    watch.add_argument("topics", nargs="*", help="topics (default: all)")
    watch.add_argument("--since", type=int, help="replay buffered events after this seq")
    watch.add_argument("--count", type=int, help="stop after this many events")
    watch.set_defaults(run=_run_watch)

    chat.add_parser(sub, chat.run_chat)
    files.add_parsers(sub)

    groups: dict[str, argparse._SubParsersAction] = {}
    for command in COMMANDS:
        if " " in command.words:
            group, word = command.words.split(" ", 1)
            if group not in groups:
                holder = sub.add_parser(group, help=f"{group} commands")
                groups[group] = holder.add_subparsers(dest="subcommand", metavar="SUBCOMMAND",
                                                      required=True)
            target = groups[group].add_parser(word, help=command.help)
        else:
            target = sub.add_parser(command.words, help=command.help)
        for arg in command.args:
            target.add_argument(*arg.flags, **arg.options)
        target.set_defaults(run=_command_runner(command))
    return parser


def _command_runner(command: Command) -> Callable[..., Any]:
    async def run(client: Any, args: argparse.Namespace) -> int:
        if command.paged and command.show:
            result = await _all_pages(client, command, args)
        else:
            result = await client.call(command.method, command.params(args),
                                       timeout=args.timeout)
        if command.text and not args.json and isinstance(result, dict):
            text = result.get(command.text)
            print(text if text is not None else json.dumps(result))
        else:
            shown = command.present(result) if command.present and not args.json else result
            print_result(shown, args.json, command.show, command.columns)
        problem = command.failure(result) if command.failure else None
        if problem:
            print(f"sipctl: {problem}", file=sys.stderr)
            return 1
        return 0
    return run


PAGE = 500


async def _all_pages(client: Any, command: Command, args: argparse.Namespace) -> Any:
    """Every page of a paged method, its lists joined (a daemon with 10,000 accounts answers
    in pieces of PAGE)."""
    assert command.show is not None
    params = command.params(args)
    items: list[Any] = []
    after = None
    while True:
        page = {**params, "limit": PAGE, **({"after": after} if after is not None else {})}
        result = await client.call(command.method, page, timeout=args.timeout)
        items += result.get(command.show, [])
        after = result.get("next")
        if after is None:
            return {**result, command.show: items}


async def _run_call(client: Any, args: argparse.Namespace) -> int:
    params = None
    if args.params:
        try:
            params = json.loads(args.params)
        except ValueError as exc:
            raise UsageError(f"params are not valid JSON: {exc}") from None
    result = await client.call(args.method, params, timeout=args.timeout)
    print_result(result, args.json, None)
    return 0


async def _run_watch(client: Any, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"topics": args.topics}
    if args.since is not None:
        params["since"] = args.since
    result = await client.call("events.subscribe", params, timeout=args.timeout)
    if not args.json:
        print(f"# subscribed to {', '.join(result['topics'])} at seq {result['seq']}",
              file=sys.stderr)
    seen = 0
    async for message in client.events:
        print_event(message, args.json)
        sys.stdout.flush()
        if message.get("method") == "event":
            seen += 1
            if args.count and seen >= args.count:
                break
    return 0


class UsageError(Exception):
    pass


async def _main(args: argparse.Namespace) -> int:
    endpoint = find_endpoint(args.runtime_dir, args.url, args.token)
    async with connect(endpoint) as client:
        return await args.run(client, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return trio.run(_main, args)
    except RpcCallError as exc:
        print(f"sipctl: {exc}", file=sys.stderr)
        if args.json and exc.data is not None:
            print(json.dumps({"error": {"code": exc.code, "message": exc.message,
                                        "data": exc.data}}), file=sys.stderr)
        return 1
    except (UsageError, chat.ChatUsageError) as exc:
        print(f"sipctl: {exc}", file=sys.stderr)
        return 2
    except DaemonNotFound as exc:
        print(f"sipctl: {exc}", file=sys.stderr)
        return 3
    except HandshakeError as exc:
        print(f"sipctl: the daemon refused the connection: {exc}", file=sys.stderr)
        return 3
    except BrokenPipeError:  # `sipctl ... | head`
        sys.stderr.close()
        return 0
    except (OSError, ConnectionClosed) as exc:
        print(f"sipctl: cannot talk to sipd: {exc}", file=sys.stderr)
        return 3
    except trio.TooSlowError:
        print(f"sipctl: no reply within {args.timeout:g} s", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
