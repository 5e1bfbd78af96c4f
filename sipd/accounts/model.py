"""SIP accounts: what one account is configured with, how it is validated and shown.

An account is stored as a table (sipd.accounts.store: a file of its own in the accounts
directory, or an `[accounts.<id>]` table of the settings file; docs/design.md §3). Its fields
are typed like global settings (the kinds of sipd.settings.kinds, keyed by the field name),
so a refusal reads "expires must be an integer 60..86400; got 5: out of range" whether it comes
from an RPC client or from the file (where it is prefixed with the table's name).

The password is write-only from the outside: `to_public()` never contains it, only whether one
is set. The account "local" always exists, is never stored and registers nowhere.

    alice = AccountConfig.create("alice", {"aor": "sip:alice@example.test"})
    alice.updated({"expires": 300}).to_storage()   # partial, validated; the stored table
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import logging
import re
import unicodedata
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sipd.settings.errors import SettingError
from sipd.settings.kinds import TEXT_MAX, BoolSetting, EnumSetting, IntSetting, Setting, StrSetting
from sipd.sip.errors import SipParseError
from sipd.sip.uri import SipUri, parse_uri

from .xcap import SECTION as XCAP_SECTION
from .xcap import public_xcap, validate_xcap

__all__ = [
    "AccountConfig", "AccountError", "AccountNotFound", "ReadOnlyAccount", "DuplicateAccount",
    "FIELDS", "LOCAL_ID", "REGISTRATION_FIELDS", "SECTION", "account_id_for", "aor_key",
    "describe", "local_account",
]

log = logging.getLogger(__name__)

LOCAL_ID = "local"
NAME_MAX = 256  # characters of a display name or an authentication user name
SECTION = "accounts"
DEFAULT_LOCAL_AOR = "sip:local@localhost"


# --- field kinds -----------------------------------------------------------------------------

def _check_no_controls(text: str) -> None:
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise ValueError("it contains a control character (a line break or tab, say)")


@dataclass(frozen=True)
class SipUriSetting(Setting):
    """A sip: or sips: URI, stored in its normalised text form. `user` says whether the URI
    must have a user part ("required", an AOR), must not ("forbidden", a server), or may."""
    user: str = field(default="allowed", kw_only=True)
    required: bool = field(default=False, kw_only=True)
    form: str = field(default="a sip: or sips: URI", kw_only=True)

    type_name: ClassVar[str] = "sip_uri"

    def __post_init__(self) -> None:
        if not self.required:  # a required field has no usable default to check
            super().__post_init__()

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._refuse(value)
        self._check_text(value, TEXT_MAX)
        if value == "":
            if self.required:
                raise self._refuse(value, "it is required")
            return value
        text = value.strip()
        try:
            uri = parse_uri(text, self.key)
        except SipParseError as error:
            raise self._refuse(value, _uri_hint(text) or error.detail) from None
        if not isinstance(uri, SipUri):
            raise self._refuse(value, f"the scheme is {uri.scheme}:, not sip: or sips:")
        if uri.headers:
            raise self._refuse(value, "a URI here may not carry ?headers")
        if uri.password is not None:
            raise self._refuse(value, "put the password in the password field, not the URI")
        if self.user == "required" and uri.user is None:
            raise self._refuse(value, "it needs a user part, as in sip:alice@example.com")
        if self.user == "forbidden" and uri.user is not None:
            raise self._refuse(value, "a server URI has no user part, as in "
                                      f"{uri.scheme}:{uri.host_port}")
        uri.host = uri.host.lower()
        return str(uri)

    def allowed(self) -> str:
        return self.form + ("" if self.required else ', or "" for none')


def _uri_hint(text: str) -> str | None:
    if ":" not in text or text.split(":", 1)[0].lower() not in ("sip", "sips"):
        if "@" in text or "." in text:
            return f"did you mean \"sip:{text}\"?"
    return None


# The fields of an account, in the order they are written to the file. Keys are field names
# so that error messages name the field; `help` feeds describe() (a future accounts.schema).
FIELDS: tuple[Setting, ...] = (
    SipUriSetting("aor", "", "The account's address of record, e.g. sip:alice@example.com.",
                  user="required", required=True,
                  form="a sip: or sips: address of record such as sip:alice@example.com"),
    StrSetting("display_name", "", "Name shown to the people this account calls or writes to.",
               form="a display name without line breaks", check=_check_no_controls,
               max_length=NAME_MAX),
    StrSetting("username", "",
               "User name for digest authentication. Empty: the user part of the AOR.",
               form='an authentication user name, or "" for the user part of the AOR',
               check=_check_no_controls, max_length=NAME_MAX),
    StrSetting("password", "", "Password for digest authentication.", secret=True,
               form="a password"),
    SipUriSetting("registrar", "",
                  "Registrar to register with, e.g. sip:registrar.example.com;transport=tcp. "
                  "Empty: locate the AOR's domain by DNS (RFC 3263).",
                  user="forbidden",
                  form="a registrar sip: or sips: URI without user part, e.g. "
                       "sip:192.0.2.1:5060;transport=tcp"),
    SipUriSetting("outbound_proxy", "",
                  "Proxy every request of this account goes through (a pre-loaded loose "
                  "route). Empty: none.",
                  user="forbidden",
                  form="a proxy sip: or sips: URI without user part, e.g. sip:proxy.example.com"),
    EnumSetting("transport", "",
                "Preferred transport when the server URI does not name one. Empty: "
                "automatic (RFC 3263, then the order of sip.transport_list).",
                choices=("", "udp", "tcp", "tls")),
    BoolSetting("register", True, "Register this account with its registrar."),
    IntSetting("expires", 600, "Registration lifetime asked from the registrar, in seconds.",
               minimum=60, maximum=86400),
    BoolSetting("auto_answer", False,
                "Answer incoming calls to this account at once, without a sessions.answer."),
    BoolSetting("accept_files_from_contacts", False,
                "Accept files that this account's contacts send (incoming file transfers from "
                "an address on its contact list) by itself, into files.download_dir, without a "
                "sessions.answer; others still wait for one."),
    SipUriSetting("voicemail", "",
                  "Voicemail URI whose message summary (RFC 3842) this account subscribes to, "
                  "often the AOR itself. Empty: none.",
                  form="a sip: or sips: URI such as sip:alice@example.com"),
    BoolSetting("message_summary", True,
                "Subscribe to the voicemail's message summary (account.message_summary "
                "events) when a voicemail URI is set."),
    BoolSetting("auto_accept_chat", False,
                "Accept at once the remote party's proposal to add chat to a session of this "
                "account, without a sessions.accept_proposal."),
)
BY_NAME: dict[str, Setting] = {setting.key: setting for setting in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(BY_NAME)

# Fields whose change means a running registration must be redone.
REGISTRATION_FIELDS = frozenset({"aor", "display_name", "username", "password", "registrar",
                                 "outbound_proxy", "transport", "register", "expires"})

# Keys clients see but never set; named in the refusal when sent.
_READ_ONLY = {"id": "an account's id is chosen by sipd and never changes",
              "password_set": "password_set is read-only; send password to change it",
              "local": "local is read-only"}


def describe() -> list[dict[str, Any]]:
    """Every account field with its type, default, allowed values and help text."""
    out = []
    for setting in FIELDS:
        item = setting.describe()
        item["required"] = bool(getattr(setting, "required", False))
        out.append(item)
    return out


# --- errors ----------------------------------------------------------------------------------

class AccountError(Exception):
    """Something about one account that a client can act on; `account_id` names it."""

    def __init__(self, account_id: str, message: str) -> None:
        super().__init__(message)
        self.account_id = account_id


class AccountNotFound(AccountError, LookupError):
    def __init__(self, account_id: str, known: Iterable[str] = ()) -> None:
        close = difflib.get_close_matches(str(account_id), list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(account_id, f"no account with id {account_id!r}{hint}")


class ReadOnlyAccount(AccountError):
    """The built-in local account cannot be changed or removed."""


class DuplicateAccount(SettingError):
    """Another account already has this AOR; `existing_id` names it."""

    def __init__(self, aor: str, existing_id: str) -> None:
        super().__init__("aor", f"account {existing_id!r} already has the AOR {aor}; "
                                "update that account instead")
        self.aor = aor
        self.existing_id = existing_id


def _unknown_field(name: Any) -> SettingError:
    if name in _READ_ONLY:
        return SettingError(str(name), _READ_ONLY[name])
    close = difflib.get_close_matches(str(name), FIELD_NAMES, n=1)
    hint = f"did you mean {close[0]}?" if close else "known fields: " + ", ".join(FIELD_NAMES)
    return SettingError(str(name), f"unknown account field {json.dumps(name)}: {hint}")


# --- the account -----------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountConfig:
    """One account's configuration, every field validated. Build it with `create`,
    `from_storage` or `updated`; the constructor itself does not validate."""
    id: str
    aor: str
    display_name: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    registrar: str = ""
    outbound_proxy: str = ""
    transport: str = ""
    register: bool = True
    expires: int = 600
    auto_answer: bool = False
    accept_files_from_contacts: bool = False
    voicemail: str = ""
    message_summary: bool = True
    auto_accept_chat: bool = False
    # Keys of the stored table this version does not know (later groups such as presence,
    # xcap, msrp, rtp overrides; or an admin's typo, which is logged): kept when written back.
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=True)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def create(cls, account_id: str, values: Mapping[str, Any]) -> AccountConfig:
        """A new account from client values: `aor` required, unknown keys refused."""
        if not isinstance(values, Mapping):
            raise SettingError("account", "an account must be an object of fields")
        if "aor" not in values:
            raise SettingError("aor", "aor is required, e.g. \"sip:alice@example.com\"")
        return cls(account_id, aor="").updated(values)

    @classmethod
    def from_storage(cls, account_id: str, table: Mapping[str, Any]) -> AccountConfig:
        """An account from its [accounts.<id>] table. Unknown keys are kept (and logged).
        SettingError names the key as accounts.<id>.<field>."""
        where = f"{SECTION}.{account_id}"
        if not isinstance(table, Mapping):
            raise SettingError(where, f"{where} must be a table ([{where}]) of account "
                                      "fields, not a value")
        known = {key: value for key, value in table.items() if key in BY_NAME}
        extra = {key: value for key, value in table.items() if key not in BY_NAME}
        if XCAP_SECTION in extra:
            try:
                extra[XCAP_SECTION] = validate_xcap(extra[XCAP_SECTION], {})
            except SettingError as error:
                raise SettingError(f"{where}.{error.key}", f"{where}.{error}") from None
        for key in extra:
            if not isinstance(extra[key], Mapping):  # a sub-table is a later group: quiet
                close = difflib.get_close_matches(key, FIELD_NAMES, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                log.warning("unknown account field %s.%s is kept but ignored%s", where, key, hint)
        if "aor" not in known:
            raise SettingError(f"{where}.aor", f"{where}.aor is required, e.g. "
                                               "aor = \"sip:alice@example.com\"")
        try:
            account = cls(account_id, aor="").updated(known)
        except SettingError as error:
            raise SettingError(f"{where}.{error.key}", f"{where}.{error}") from None
        return dataclasses.replace(account, extra=dict(extra))

    def updated(self, changes: Mapping[str, Any]) -> AccountConfig:
        """A copy with `changes` validated and applied; fields not given keep their value
        (the password too). SettingError names the first bad field."""
        if not isinstance(changes, Mapping):
            raise SettingError("account", "account changes must be an object of fields")
        values: dict[str, Any] = {}
        xcap_changes: dict[str, Any] = {}
        for name, value in changes.items():
            if name == XCAP_SECTION:
                if not isinstance(value, Mapping):
                    validate_xcap(value, {})  # raises, saying what xcap must be
                xcap_changes.update(value)
                continue
            if isinstance(name, str) and name.startswith(XCAP_SECTION + "."):
                xcap_changes[name.split(".", 1)[1]] = value
                continue
            setting = BY_NAME.get(name) if isinstance(name, str) else None
            if setting is None:
                raise _unknown_field(name)
            values[name] = setting.validate(value)
        if xcap_changes:
            extra = dict(self.extra)
            extra[XCAP_SECTION] = validate_xcap(xcap_changes, self.extra.get(XCAP_SECTION) or {})
            values["extra"] = extra
        result = dataclasses.replace(self, **values)
        result._check_combination()
        return result

    def _check_combination(self) -> None:
        server = self.registrar or self.aor
        scheme = server.split(":", 1)[0]
        if scheme == "sips" and self.transport in ("udp", "tcp"):
            which = "registrar" if self.registrar else "aor"
            raise SettingError("transport", f"transport must be \"tls\" or \"\" for a sips: "
                                            f"{which}; got the string \"{self.transport}\"")

    # -- views ----------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.id == LOCAL_ID

    @property
    def aor_uri(self) -> SipUri:
        uri = parse_uri(self.aor, "aor")
        assert isinstance(uri, SipUri)
        return uri

    @property
    def auth_username(self) -> str:
        """The digest user name: the username field, or else the AOR's user part."""
        return self.username or (self.aor_uri.user or "")

    @property
    def locates_registrar(self) -> bool:
        """True when no registrar is set: the AOR's domain is located per RFC 3263."""
        return not self.registrar

    @property
    def registrar_uri(self) -> SipUri:
        """The REGISTER Request-URI: the registrar, or the AOR's domain (RFC 3261 §10.2)."""
        if self.registrar:
            uri = parse_uri(self.registrar, "registrar")
            assert isinstance(uri, SipUri)
            return uri
        aor = self.aor_uri
        return SipUri(aor.host, port=aor.port, scheme=aor.scheme)

    @property
    def outbound_proxy_uri(self) -> SipUri | None:
        if not self.outbound_proxy:
            return None
        uri = parse_uri(self.outbound_proxy, "outbound_proxy")
        assert isinstance(uri, SipUri)
        return uri

    @property
    def registers(self) -> bool:
        """Whether this account should be registered at all (the local account never is)."""
        return self.register and not self.is_local

    def to_public(self) -> dict[str, Any]:
        """What accounts.get/list return: never the password, only whether one is set.
        `username` is the effective one (the AOR's user part when none is set)."""
        view = {
            "id": self.id,
            "aor": self.aor,
            "display_name": self.display_name,
            "username": self.auth_username,
            "password_set": self.password != "",
            "registrar": self.registrar,
            "outbound_proxy": self.outbound_proxy,
            "transport": self.transport,
            "register": self.registers,
            "expires": self.expires,
            "auto_answer": self.auto_answer,
            "accept_files_from_contacts": self.accept_files_from_contacts,
            "voicemail": self.voicemail,
            "message_summary": self.message_summary,
            "auto_accept_chat": self.auto_accept_chat,
            "local": self.is_local,
        }
        if XCAP_SECTION in self.extra:
            view["xcap"] = public_xcap(self.extra[XCAP_SECTION])
        return view

    def to_storage(self) -> dict[str, Any]:
        """The [accounts.<id>] table: every field (empty strings too, so the file shows the
        knobs), then the unknown keys it was read with."""
        table: dict[str, Any] = {name: getattr(self, name) for name in FIELD_NAMES}
        for key, value in self.extra.items():
            table.setdefault(key, value)
        return table

    def changed_fields(self, other: AccountConfig) -> set[str]:
        return {name for name in FIELD_NAMES if getattr(self, name) != getattr(other, name)}


def local_account(aor: str = DEFAULT_LOCAL_AOR) -> AccountConfig:
    """The built-in account for direct calls (no registrar, never registers)."""
    return dataclasses.replace(AccountConfig(LOCAL_ID, aor="").updated({"aor": aor}),
                               register=False)


@functools.lru_cache(maxsize=65536)  # indexes of many accounts are rebuilt on each SIGHUP
def aor_key(aor: str) -> tuple[str | None, str, int | None]:
    """Two AORs name the same account when user, host and port match (sip: and sips: too)."""
    uri = parse_uri(aor, "aor")
    assert isinstance(uri, SipUri)
    return uri.user, uri.host.lower(), uri.port


_SLUG_RUN = re.compile(r"[^a-z0-9]+")


def account_id_for(aor: str, taken: Container[str]) -> str:
    """An id from the AOR: `sip:alice@example.test` -> `alice-example-test`, with `-2`, `-3`
    ... when taken; never "local". Ids are bare TOML keys (a-z, 0-9, -), so also file names.
    `taken` is asked about candidates only (a dict of 10,000 accounts is not copied)."""
    try:
        uri = parse_uri(aor, "aor")
    except SipParseError:
        uri = None
    if isinstance(uri, SipUri):  # decoded, without parameters
        text = f"{uri.user or ''}@{uri.host_port}"
    else:
        text = aor.split(":", 1)[-1]
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # é -> e
    base = _SLUG_RUN.sub("-", text.lower()).strip("-")[:60].strip("-") or "account"
    candidate, n = base, 1
    while candidate == LOCAL_ID or candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
