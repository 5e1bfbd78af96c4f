"""The table of sipctl subcommands: each maps command-line words onto one RPC method.

Later features add rows here; `sipctl call METHOD JSON` reaches anything not listed.
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
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
    # The key of a text in the result to print as it is (a document), unless --json.
    text: str | None = None
    # The method pages (`limit`, `after`, the result's `next`): sipctl asks for every page and
    # joins the lists under `show`.
    paged: bool = False

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
        arg("--voicemail", help="voicemail URI whose message summary is subscribed (often the "
                                "AOR)"),
        arg("--message-summary", action=argparse.BooleanOptionalAction, default=None,
            help="subscribe to the voicemail's message summary (add: yes)"),
        arg("--auto-accept-chat", action=argparse.BooleanOptionalAction, default=None,
            help="accept the remote party's proposals to add chat at once (add: no)"),
        arg("--xcap-root", help='XCAP root URL for contacts and policies ("": kept by sipd)'),
        arg("--xcap-username", help="XCAP user name (default: the digest user name)"),
        arg("--xcap-password", help='XCAP password (default: the account\'s; "-": read one '
                                    "line from stdin)"),
        arg("--xcap-verify-tls", action=argparse.BooleanOptionalAction, default=None,
            help="check the XCAP server's certificate (default: yes)"),
    )


ADD_FIELDS = _account_fields(adding=True)
UPDATE_FIELDS = _account_fields(adding=False)


def _field_values(ns: argparse.Namespace, fields: tuple[Arg, ...]) -> dict[str, Any]:
    values = {a.dest: getattr(ns, a.dest) for a in fields}
    for key in ("password", "xcap_password"):
        if values.get(key) == "-":
            values[key] = sys.stdin.readline().rstrip("\r\n")
    given = {k: v for k, v in values.items() if v is not None}
    xcap = {k[len("xcap_"):]: given.pop(k) for k in list(given) if k.startswith("xcap_")}
    if xcap:
        given["xcap"] = xcap
    return given


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


# -- presence ---------------------------------------------------------------------------------

PRESENCE_ACCOUNT = arg("account", metavar="ACCOUNT",
                       help='the account\'s id ("local": sipd is its own presence agent)')
PRESENCE_TO = arg("to", metavar="TO", help="whose state, e.g. sip:bob@example.com")
PRESENCE_EVENT = arg("--event", choices=("presence", "presence.winfo", "message-summary",
                                         "dialog"),
                     help="event package (default presence; dialog: a busy lamp)")


def _publish_params(ns: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"account": ns.account, "status": ns.status}
    for name in ("note", "display_name", "icon"):
        if getattr(ns, name) is not None:
            params[name] = getattr(ns, name)
    if ns.activity:
        params["activities"] = ns.activity
    if ns.mood:
        params["mood"] = ns.mood
    return params


def _subscribe_params(ns: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"account": ns.account, "to": ns.to}
    if ns.list:
        params["list"] = True
    if ns.event is not None:
        params["event"] = ns.event
    return params


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
# -- contacts and XCAP -----------------------------------------------------------------------

CONTACT_ACCOUNT = arg("account", metavar="ACCOUNT", help="the account's id")
CONTACT_URI = arg("uri", metavar="URI", help="the contact's address, e.g. sip:bob@example.com")
ONLY_ACCOUNT = arg("--account", help="only this account's (default: every account's)")
XCAP_TARGET = (CONTACT_ACCOUNT,
               arg("auid", metavar="AUID", help="the application usage, e.g. resource-lists, "
                                                "pres-rules"),
               arg("--document", help="the document's name (default index)"),
               arg("--node", help='a node selector, e.g. resource-lists/list[@name="Friends"]'))


def _contact_fields() -> tuple[Arg, ...]:
    return (CONTACT_ACCOUNT, CONTACT_URI,
            arg("--name", help="the name shown for the contact"),
            arg("--group", dest="groups", action="append",
                help="a group it is in (repeat for several)"),
            arg("--presence", action=argparse.BooleanOptionalAction, default=None,
                help="watch the contact's presence"))


def _contact_update_params(ns: argparse.Namespace) -> dict[str, Any]:
    params = {k: getattr(ns, k) for k in ("account", "uri", "name", "groups", "presence")}
    if ns.no_groups:
        params["groups"] = []
    return {k: v for k, v in params.items() if v is not None}


def _authorize_params(ns: argparse.Namespace) -> dict[str, Any]:
    target = "domain" if "@" not in ns.who and ":" not in ns.who else "watcher"
    return {"account": ns.account, target: ns.who,
            "action": None if ns.action == "forget" else ns.action}


def _xcap_put_params(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.file == "-":
        content = sys.stdin.read()
    else:
        with open(ns.file, encoding="utf-8") as stream:
            content = stream.read()
    params = {"account": ns.account, "auid": ns.auid, "content": content,
              "document": ns.document, "node": ns.node, "etag": ns.etag,
              "content_type": ns.content_type}
    return {k: v for k, v in params.items() if v is not None}


def _xcap_icon_params(ns: argparse.Namespace) -> dict[str, Any]:
    with open(ns.file, "rb") as stream:
        data = stream.read()
    mime_type = ns.type or mimetypes.guess_type(ns.file)[0]
    if not mime_type:
        raise SystemExit(f"sipctl: say what kind of image {ns.file} is (--type image/png)")
    params = {"account": ns.account, "content_base64": base64.b64encode(data).decode("ascii"),
              "mime_type": mime_type, "description": ns.description}
    return {k: v for k, v in params.items() if v is not None}


COMMANDS: list[Command] = [
    Command("version", "system.version", "the daemon's version"),
    Command("state", "system.state", "a snapshot of everything live"),
    Command("shutdown", "system.shutdown", "stop the daemon"),
    Command("discover", "rpc.discover", "the OpenRPC description of the API"),
    Command("web", "web.link", "a one-time link that opens the web page logged in", text="url"),
    Command("settings get", "settings.get", "show one setting or all",
            (arg("key", nargs="?"),), show="settings", columns=("key", "value", "is_default")),
    Command("settings set", "settings.set", "change a setting (VALUE is JSON or text)",
            (arg("key"), arg("value", type=json_or_text))),
    Command("settings reset", "settings.reset", "put a setting back to its default",
            (arg("key"),)),
    Command("settings schema", "settings.schema", "every setting with its type and help",
            show="settings", columns=("key", "type", "default", "help")),
    Command("accounts list", "accounts.list", "every account with its registration state",
            show="accounts", columns=("id", "aor", "registration.state"), paged=True),
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
    # -- presence ------------------------------------------------------------------------
    Command("presence publish", "presence.publish",
            "publish the account's presence (open or closed, with a note, activities...)",
            (PRESENCE_ACCOUNT, arg("status", choices=("open", "closed")),
             arg("--note", help="a status line"),
             arg("--activity", action="append", help="an RPID activity (away, busy, meal, "
                                                     "meeting...); repeatable"),
             arg("--mood", action="append", help="an RPID mood; repeatable"),
             arg("--display-name", help="the name shown to watchers"),
             arg("--icon", help="an icon URI")),
            build=_publish_params),
    Command("presence unpublish", "presence.unpublish", "remove the account's presence",
            (PRESENCE_ACCOUNT,)),
    Command("presence subscribe", "presence.subscribe",
            "watch a contact (or a list with --list, a busy lamp with --event dialog); "
            "states show in `sipctl watch presence`",
            (PRESENCE_ACCOUNT, PRESENCE_TO,
             arg("--list", action="store_true", help="TO is a resource list (RFC 4662)"),
             PRESENCE_EVENT),
            build=_subscribe_params),
    Command("presence unsubscribe", "presence.unsubscribe", "stop watching a contact",
            (PRESENCE_ACCOUNT, PRESENCE_TO, PRESENCE_EVENT)),
    Command("presence watchers", "presence.watchers", "who watches the account",
            (PRESENCE_ACCOUNT,), show="watchers",
            columns=("watcher", "status", "event", "display_name")),
    # -- contacts ------------------------------------------------------------------------
    Command("contacts list", "contacts.list", "the contacts (on the XCAP server, or kept by "
            "sipd)", (ONLY_ACCOUNT,), show="contacts",
            columns=("account", "uri", "name", "groups", "presence")),
    Command("contacts add", "contacts.add", "add a contact", _contact_fields()),
    Command("contacts update", "contacts.update", "change a contact's name, groups or presence",
            (*_contact_fields(), arg("--no-groups", action="store_true",
                                     help="take it out of every group")),
            build=_contact_update_params),
    Command("contacts remove", "contacts.remove", "remove a contact",
            (CONTACT_ACCOUNT, CONTACT_URI)),
    Command("contacts groups", "contacts.groups", "the groups of contacts", (ONLY_ACCOUNT,),
            show="groups", columns=("account", "name", "contacts")),
    Command("presence authorize", "presence.authorize",
            "decide whether a watcher (a URI) or a domain may see your presence",
            (CONTACT_ACCOUNT,
             arg("who", metavar="WATCHER|DOMAIN", help="sip:bob@example.com, or example.com"),
             arg("action", metavar="ACTION", nargs="?", default="allow",
                 choices=("allow", "block", "polite-block", "confirm", "forget"),
                 help="allow (the default), block, polite-block (looks offline), confirm, "
                      "or forget")),
            build=_authorize_params),
    Command("presence policies", "presence.policies",
            "who may see your presence (the decisions made)", (CONTACT_ACCOUNT,),
            show="policies", columns=("target", "kind", "action")),
    Command("xcap get", "xcap.get", "print a document, element or attribute of the XCAP "
            "server", XCAP_TARGET, text="content"),
    Command("xcap put", "xcap.put", "write a document, element or attribute (from FILE, or "
            "stdin)",
            (*XCAP_TARGET, arg("file", metavar="FILE", nargs="?", default="-",
                               help='the content ("-" or none: stdin)'),
             arg("--etag", help="the ETag the write is based on (default: the current one)"),
             arg("--content-type", help="its MIME type (default: the usage's)")),
            build=_xcap_put_params),
    Command("xcap delete", "xcap.delete", "delete a document, element or attribute",
            (*XCAP_TARGET, arg("--etag", help="the ETag the delete is based on"))),
    Command("xcap icon", "xcap.set_icon", "put your status icon (an image file) on the XCAP "
            "server; prints the URL to publish (presence publish --icon)",
            (CONTACT_ACCOUNT, arg("file", metavar="FILE", help="the image"),
             arg("--type", help="its MIME type (default: from the file name)"),
             arg("--description", help="what it shows")),
            build=_xcap_icon_params, text="uri"),
    # -- sessions ------------------------------------------------------------------------
    Command("dial", "sessions.start", "call someone (an audio session); prints its id",
            (arg("account", metavar="ACCOUNT", help='the calling account ("local": direct)'),
             arg("to", metavar="TO", help="whom to call, e.g. sip:bob@example.com"),
             arg("--stream", dest="streams", action="append", metavar="KIND",
                 help="a stream to offer, in order (repeat it; default audio): audio, "
                      "chat"))),
    Command("sessions list", "sessions.list", "the live sessions", show="sessions",
            columns=("id", "account", "direction", "remote", "state")),
    Command("sessions get", "sessions.get", "one session", (SESSION_ID,)),
    Command("answer", "sessions.answer", "answer an incoming session", (SESSION_ID,)),
    Command("accept", "sessions.answer",
            "accept an incoming session; a file transfer is saved in PATH (a folder or a file "
            "name; default the daemon's download folder)",
            (SESSION_ID, arg("path", metavar="PATH", nargs="?", type=_absolute,
                             help="where to save an incoming file"))),
    Command("reject", "sessions.reject", "refuse an incoming session",
            (SESSION_ID, arg("--code", type=int, help="the SIP status (default 603)"))),
    Command("hangup", "sessions.end", "end a session (or cancel a call not yet answered)",
            (SESSION_ID,)),
    Command("add-stream", "sessions.add_stream", "add a stream (chat) to a session",
            (SESSION_ID, arg("stream", metavar="KIND", help="the stream kind: chat"))),
    Command("remove-stream", "sessions.remove_stream", "remove a stream from a session",
            (SESSION_ID, arg("stream", metavar="KIND", help="the stream kind: chat"))),
    Command("accept-proposal", "sessions.accept_proposal",
            "accept the remote party's proposal to add streams", (SESSION_ID,)),
    Command("reject-proposal", "sessions.reject_proposal",
            "refuse the remote party's proposal to add streams", (SESSION_ID,)),
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
