"""The daemon's msrp.* settings as what the MSRP trio side takes: one EndpointSettings for the
daemon, and RelaySettings for a session of an account. `get` reads a setting by key, so this
module knows the keys but not the settings store."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...sip.auth import Credentials
from .endpoint import EndpointSettings
from .relay import RelaySettings

Get = Callable[[str], Any]


def relay_list(value: str) -> tuple[str, ...]:
    """msrp.relay: "" (none), "auto" (SRV of the account's domain) or URIs, space or comma
    separated, tried in order."""
    return tuple(item for item in re.split(r"[\s,]+", value.strip()) if item)


def endpoint_settings(get: Get, *, host: str, state_dir: Path) -> EndpointSettings:
    certificate = get("msrp.certificate") or None
    return EndpointSettings(
        host=host, port=get("msrp.local_port"), transport=get("msrp.transport"),
        state_dir=state_dir / "msrp", cert_file=certificate, key_file=certificate,
        relay=None)


def relay_settings(get: Get, *, username: str, password: str, domain: str,
                   nameservers: Sequence[tuple[str, int]] | None) -> RelaySettings | None:
    """The relays a session of this account goes through, None when msrp.relay is empty.
    AUTH uses msrp.relay_username/password when set, else the account's credentials."""
    relays = relay_list(get("msrp.relay"))
    if not relays:
        return None
    credentials = Credentials(get("msrp.relay_username") or username,
                              get("msrp.relay_password") or password)
    return RelaySettings(relays, credentials, domain=domain,
                         ca_file=get("tls.ca_list") or None,
                         verify_tls=get("tls.verify_server"), nameservers=nameservers)
