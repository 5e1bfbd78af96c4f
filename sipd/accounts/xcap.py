"""An account's XCAP settings: the `[accounts.<id>.xcap]` table (or `xcap` in accounts.add /
accounts.update), validated like every other setting.

    table = validate_xcap({"root": "https://xcap.example.com/xcap-root"}, base={})
    XcapAccountSettings.of(account, global_root="")   # what the contacts service runs with

An empty root means no XCAP server (global `xcap.root` is the default for accounts that set
none): contacts and presence policies then live in the daemon's state. User name and password
default to the account's digest credentials. The password is write-only, like the account's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sipd.settings import addresses
from sipd.settings.errors import SettingError
from sipd.settings.kinds import BoolSetting, Setting, StrSetting

if TYPE_CHECKING:
    from sipd.accounts.model import AccountConfig

SECTION = "xcap"


def _check_sip_uri(text: str) -> None:
    scheme = text.split(":", 1)[0].lower()
    if scheme not in ("sip", "sips") or "@" not in text or any(c.isspace() for c in text):
        raise ValueError("it is not a sip: URI with a user part")


def _check_root(text: str) -> None:
    addresses.check_http_url(text)
    if "@" in urlsplit(text).netloc:
        raise ValueError("put the user name and password in xcap.username and xcap.password, "
                         "not in the URL (where logs would show them)")


XCAP_FIELDS: tuple[Setting, ...] = (
    StrSetting("xcap.root", "",
               "XCAP root URL of this account's contacts and presence policies. Empty: the "
               "global xcap.root; when that is empty too, they live in sipd's own state.",
               form='an http:// or https:// URL, or "" for none',
               check=_check_root),
    StrSetting("xcap.username", "",
               "User name for the XCAP server. Empty: the account's digest user name."),
    StrSetting("xcap.password", "",
               "Password for the XCAP server. Empty: the account's password.", secret=True),
    BoolSetting("xcap.verify_tls", True,
                "Check the XCAP server's TLS certificate (tls.ca_list, else the system store)."),
    BoolSetting("xcap.basic_in_clear", False,
                "Allow HTTP basic authentication over plain http:// (the password then crosses "
                "the network readable). Off: only digest is answered without TLS."),
    StrSetting("xcap.presence_service_uri", "",
               "URI of the account's presence list service (rls-services, RFC 4826): the "
               "contacts marked for presence are subscribed to through it. Empty: no "
               "rls-services document is written.",
               form='a sip: URI such as sip:alice-buddies@example.com, or "" for none',
               check=_check_sip_uri),
)
BY_NAME: dict[str, Setting] = {setting.name: setting for setting in XCAP_FIELDS}
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in XCAP_FIELDS}


def validate_xcap(changes: Any, base: Mapping[str, Any]) -> dict[str, Any]:
    """`base` (a stored xcap table) with `changes` validated and applied; every field is in
    the result. SettingError names the field as xcap.<name>."""
    if not isinstance(changes, Mapping):
        raise SettingError(SECTION, "xcap must be a table of XCAP settings, e.g. "
                                    '{"root": "https://xcap.example.com/xcap-root"}')
    table = dict(DEFAULTS)
    table.update({k: v for k, v in base.items() if k in BY_NAME})
    for name, value in changes.items():
        setting = BY_NAME.get(name) if isinstance(name, str) else None
        if setting is None:
            raise SettingError(f"{SECTION}.{name}", f"unknown XCAP setting xcap.{name}; known: "
                                                    + ", ".join(BY_NAME))
        table[name] = setting.validate(value)
    return table


def public_xcap(table: Mapping[str, Any]) -> dict[str, Any]:
    """The table as clients see it: the password only says whether it is set."""
    view = {name: table.get(name, default) for name, default in DEFAULTS.items()}
    view["password_set"] = bool(view.pop("password"))
    return view


@dataclass(frozen=True)
class XcapAccountSettings:
    """What one account's XCAP document manager runs with (None from `of`: no XCAP)."""

    root: str
    xui: str
    username: str
    password: str = field(repr=False)
    verify: bool
    basic_in_clear: bool
    presence_service_uri: str | None

    @classmethod
    def of(cls, account: AccountConfig, global_root: str = "") -> XcapAccountSettings | None:
        if account.is_local:
            return None
        table = validate_xcap({}, account.extra.get(SECTION) or {})
        root = table["root"] or global_root
        if not root:
            return None
        return cls(root=root, xui=_xui(account.aor),
                   username=table["username"] or account.auth_username,
                   password=table["password"] or account.password,
                   verify=table["verify_tls"], basic_in_clear=table["basic_in_clear"],
                   presence_service_uri=table["presence_service_uri"] or None)


def _xui(aor: str) -> str:
    """The XCAP User Identifier: the AOR without parameters (RFC 4825 §4)."""
    return aor.split(";", 1)[0]
