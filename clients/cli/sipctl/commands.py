"""The table of sipctl subcommands: each maps command-line words onto one RPC method.

Later features add rows here; `sipctl call METHOD JSON` reaches anything not listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.flags[-1].lstrip("-").replace("-", "_")


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


def json_or_text(text: str) -> Any:
    """A value on the command line: JSON when it parses (5060, true, ["udp"]), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Command:
    words: str
    method: str
    help: str
    args: tuple[Arg, ...] = ()
    show: str | None = None  # the key of a list in the result to print as a table
    columns: tuple[str, ...] = ()  # and its columns (default: all)
    build: Callable[[argparse.Namespace], Any] | None = None
    # How a result is shown to people (not with --json): e.g. Unix times made readable.
    present: Callable[[Any], Any] | None = None
    # A result that is an answer but not a success (a MESSAGE refused by the peer): the
    # one-line reason to print, making sipctl exit 1.
    failure: Callable[[Any], str | None] | None = None

    def params(self, ns: argparse.Namespace) -> dict[str, Any]:
        if self.build:
            return self.build(ns)
        values = {a.dest: getattr(ns, a.dest) for a in self.args}
        return {k: v for k, v in values.items() if v is not None and v != []}


# -- accounts ---------------------------------------------------------------------------------

ACCOUNT_ID = arg("id", metavar="ID", help="the account's id (see `sipctl accounts list`)")


def _account_fields(*, adding: bool) -> tuple[Arg, ...]:
    """The flags of the account fields (accounts.add and accounts.update share them)."""
    return (
        arg("--aor", required=adding, help="address of record, e.g. sip:alice@example.com"),
        arg("--password", help='digest password ("-": read one line from stdin, which keeps '
                               "it out of the process list and the shell history)"),
        arg("--username", help="digest user name (default: the AOR's user part)"),
        arg("--display-name", help="the name shown to others"),
        arg("--registrar", help="registrar URI, e.g. sip:192.0.2.1:5060;transport=tcp "
                                "(default: the AOR's domain located by DNS)"),
        arg("--outbound-proxy", help="a proxy URI every request goes through"),
        arg("--transport", choices=("udp", "tcp", "tls", ""), metavar="TRANSPORT",
            help='preferred transport: udp, tcp, tls, or "" (as located)'),
        arg("--register", action=argparse.BooleanOptionalAction, default=None,
            help="whether the account registers (add: yes unless --no-register)"),
        arg("--expires", type=int, help="registration lifetime asked for, in seconds"),
        arg("--auto-answer", action=argparse.BooleanOptionalAction, default=None,
            help="answer incoming calls at once (add: no unless --auto-answer)"),
    )


ADD_FIELDS = _account_fields(adding=True)
UPDATE_FIELDS = _account_fields(adding=False)


def _field_values(ns: argparse.Namespace, fields: tuple[Arg, ...]) -> dict[str, Any]:
    values = {a.dest: getattr(ns, a.dest) for a in fields}
    if values.get("password") == "-":
        values["password"] = sys.stdin.readline().rstrip("\r\n")
    return {k: v for k, v in values.items() if v is not None}


def _add_params(ns: argparse.Namespace) -> dict[str, Any]:
    return _field_values(ns, ADD_FIELDS)


def _update_params(ns: argparse.Namespace) -> dict[str, Any]:
    return {"id": ns.id, "changes": _field_values(ns, UPDATE_FIELDS)}


# -- messages ---------------------------------------------------------------------------------

MESSAGE_ACCOUNT = arg("account", metavar="ACCOUNT",
                      help='the sending account\'s id ("local": the daemon\'s own '
                                      "address, no server needed)")
MESSAGE_TO = arg("to", metavar="TO", help="the recipient, e.g. sip:bob@example.com or "
                            "sip:local@192.0.2.1:5060;transport=tcp")


def _send_params(ns: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"account": ns.account, "to": ns.to, "content": ns.content}
    if ns.content_type is not None:
        params["content_type"] = ns.content_type
    if ns.cpim:
        params["cpim"] = True
    return params


def _not_delivered(result: Any) -> str | None:
    if isinstance(result, dict) and result.get("delivered") is False:
        return f"not delivered: {result.get('code')} {result.get('reason')}"
    return None


SESSION_ID = arg("id", metavar="ID", help="the session's id (see `sipctl sessions list`)")


def _absolute(path: str) -> str:
    """The daemon runs elsewhere: a relative path is made absolute here, for the user."""
    import os
    return os.path.abspath(path)


# -- history ----------------------------------------------------------------------------------

def _when(stamp: Any) -> str:
    import time
    if not isinstance(stamp, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _calls_table(result: Any) -> Any:
    if not isinstance(result, dict):
        return result
    rows = []
    for row in result.get("sessions") or []:
        seconds = row.get("duration")
        duration = (f"{int(seconds) // 60}:{int(seconds) % 60:02d}"
                    if isinstance(seconds, (int, float)) else "")
        rows.append({**row, "when": _when(row.get("start")), "duration": duration})
    return {**result, "sessions": rows}


def _messages_table(result: Any) -> Any:
    if not isinstance(result, dict):
        return result
    rows = [{**row, "when": _when(row.get("time")),
             "content": " ".join(str(row.get("content", "")).split())}
            for row in result.get("messages") or []]
    return {**result, "messages": rows}


HISTORY_FILTERS = (
    arg("--remote", metavar="URI", help="only with this party, e.g. sip:bob@example.com"),
    arg("--account", metavar="ACCOUNT", help="only this account's"),
    arg("--before", type=float, metavar="TIME",
        help="only older than this Unix time (the `next` of a --json page)"),
    arg("--limit", type=int, metavar="N", help="most rows shown (default 50)"),
)


COMMANDS: list[Command] = [
    Command("version", "system.version", "the daemon's version"),
    Command("state", "system.state", "a snapshot of everything live"),
    Command("shutdown", "system.shutdown", "stop the daemon"),
    Command("discover", "rpc.discover", "the OpenRPC description of the API"),
    Command("settings get", "settings.get", "show one setting or all",
            (arg("key", nargs="?"),), show="settings", columns=("key", "value", "is_default")),
    Command("settings set", "settings.set", "change a setting (VALUE is JSON or text)",
            (arg("key"), arg("value", type=json_or_text))),
    Command("settings reset", "settings.reset", "put a setting back to its default",
            (arg("key"),)),
    Command("settings schema", "settings.schema", "every setting with its type and help",
            show="settings", columns=("key", "type", "default", "help")),
    Command("accounts list", "accounts.list", "every account with its registration state",
            show="accounts", columns=("id", "aor", "registration.state")),
    Command("accounts get", "accounts.get", "one account (the password is never shown)",
            (ACCOUNT_ID,)),
    Command("accounts add", "accounts.add", "add an account; it registers unless --no-register",
            ADD_FIELDS, build=_add_params),
    Command("accounts update", "accounts.update", "change some fields of an account",
            (ACCOUNT_ID, *UPDATE_FIELDS), build=_update_params),
    Command("accounts remove", "accounts.remove", "unregister and forget an account",
            (ACCOUNT_ID,)),
    Command("accounts register", "accounts.register", "register an account now (or again)",
            (ACCOUNT_ID,)),
    Command("accounts unregister", "accounts.unregister",
            "remove an account's registration (the account stays)", (ACCOUNT_ID,)),
    Command("message send", "messages.send",
            "send a pager-mode MESSAGE and show its final status",
            (MESSAGE_ACCOUNT, MESSAGE_TO, arg("content", metavar="TEXT", help="the message"),
             arg("--content-type", help="its MIME type (default text/plain; text/html)"),
             arg("--cpim", action="store_true", help="wrap it in message/cpim (RFC 3862)")),
            build=_send_params, failure=_not_delivered),
    Command("message composing", "messages.composing",
            "tell the recipient you are typing (active) or stopped (idle)",
            (MESSAGE_ACCOUNT, MESSAGE_TO,
             arg("state", metavar="active|idle", choices=("active", "idle")))),
    Command("history calls", "history.sessions", "past calls, newest first",
            HISTORY_FILTERS, show="sessions", present=_calls_table,
            columns=("when", "direction", "remote", "result", "duration", "reason")),
    Command("history messages", "history.messages", "past messages, newest first",
            (*HISTORY_FILTERS,
             arg("--search", dest="query", metavar="TEXT",
                 help="only messages with every word of TEXT (word prefixes)"),
             arg("--session", metavar="ID", help="only the chat of this session")),
            show="messages", present=_messages_table,
            columns=("when", "direction", "remote", "status", "content")),
    # -- sessions ------------------------------------------------------------------------
    Command("dial", "sessions.start", "call someone (an audio session); prints its id",
            (arg("account", metavar="ACCOUNT", help='the calling account ("local": direct)'),
             arg("to", metavar="TO", help="whom to call, e.g. sip:bob@example.com"))),
    Command("sessions list", "sessions.list", "the live sessions", show="sessions",
            columns=("id", "account", "direction", "remote", "state")),
    Command("sessions get", "sessions.get", "one session", (SESSION_ID,)),
    Command("answer", "sessions.answer", "answer an incoming session", (SESSION_ID,)),
    Command("reject", "sessions.reject", "refuse an incoming session",
            (SESSION_ID, arg("--code", type=int, help="the SIP status (default 603)"))),
    Command("hangup", "sessions.end", "end a session (or cancel a call not yet answered)",
            (SESSION_ID,)),
    Command("hold", "sessions.hold", "put a session on hold", (SESSION_ID,)),
    Command("unhold", "sessions.unhold", "take a session off hold", (SESSION_ID,)),
    Command("dtmf", "sessions.send_dtmf", "send DTMF digits (RFC 4733)",
            (SESSION_ID, arg("digits", metavar="DIGITS", help="0-9 * # A-D"))),
    Command("play", "sessions.play", "play a WAV file into a session",
            (SESSION_ID, arg("path", metavar="WAV", type=_absolute, help="the file"),
             arg("--loop", action="store_true", default=None, help="start again at its end"))),
    Command("record", "sessions.record", "record a session to a WAV file",
            (SESSION_ID, arg("path", metavar="WAV", type=_absolute, help="the file"))),
    Command("transfer", "sessions.transfer",
            "transfer a call: to TO (blind), or --replaces OTHER_ID (attended); progress "
            "shows in `sipctl watch`",
            (SESSION_ID,
             arg("to", metavar="TO", nargs="?", help="where the remote party goes, e.g. "
                                                     "sip:carol@example.com"),
             arg("--replaces", metavar="OTHER_ID",
                 help="another established session: its remote party takes the call over"))),
]
