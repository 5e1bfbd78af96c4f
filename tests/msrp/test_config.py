"""msrp.* settings as the MSRP trio side takes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipd.msrp.trio.config import endpoint_settings, relay_list, relay_settings
from sipd.settings.addresses import check_msrp_relay_uri
from sipd.settings.schema import BY_KEY


def getter(**overrides):
    values = {key: setting.default for key, setting in BY_KEY.items()}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return values.__getitem__


def test_no_relay_by_default_and_the_state_dir_holds_the_identity():
    get = getter()
    assert relay_settings(get, username="u", password="p", domain="d", nameservers=None) is None
    settings = endpoint_settings(get, host="127.0.0.1", state_dir=Path("/var/lib/sipd"))
    assert settings.transport == "tls" and settings.state_dir == Path("/var/lib/sipd/msrp")
    assert (settings.chunk_size, settings.direct_chunk_size) == (2048, 256 * 1024)
    small = endpoint_settings(getter(msrp__direct_chunk_size=4096), host="127.0.0.1",
                              state_dir=Path("/tmp"))
    assert small.direct_chunk_size == 4096


def test_relays_in_order_with_the_accounts_credentials_unless_overridden():
    get = getter(msrp__relay="msrps://a.test;tcp, msrps://b.test:2856;tcp")
    relay = relay_settings(get, username="alice", password="pw", domain="example.test",
                           nameservers=None)
    assert relay is not None and relay.relays == ("msrps://a.test;tcp", "msrps://b.test:2856;tcp")
    assert relay.credentials is not None and relay.credentials.username == "alice"
    get = getter(msrp__relay="auto", msrp__relay_username="relayuser",
                 msrp__relay_password="rp")
    relay = relay_settings(get, username="alice", password="pw", domain="example.test",
                           nameservers=None)
    assert relay is not None and relay.relays == ("auto",)
    assert relay.credentials.username == "relayuser" and relay.credentials.password == "rp"
    assert "rp" not in repr(relay.credentials)


def test_relay_setting_is_checked():
    check_msrp_relay_uri("auto")
    check_msrp_relay_uri("msrps://a.test;tcp msrps://[::1]:2855;tcp")
    assert relay_list(" msrps://a;tcp,,msrps://b;tcp ") == ("msrps://a;tcp", "msrps://b;tcp")
    for bad in ("msrp://a.test;tcp", "auto msrps://a;tcp", "msrps://:99999;tcp"):
        with pytest.raises(ValueError):
            check_msrp_relay_uri(bad)
