"""Schema validation: each type, its bounds, and messages that say what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipd.settings import schema
from sipd.settings.errors import SettingError

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_KEYS = {
    "files.download_dir", "files.share_dir",
    "sip.local_udp_port", "sip.local_tcp_port", "sip.local_tls_port", "sip.transport_list",
    "sip.listen_address", "sip.max_message_bytes",
    "tls.ca_list", "tls.certificate", "tls.verify_server", "tls.verify_client",
    "rtp.port_range", "rtp.media_address", "rtp.audio_codecs", "rtp.srtp",
    "dns.nameservers", "nat.stun_servers", "sip.t1", "nat.ice", "nat.turn.server",
    "nat.turn.username", "nat.turn.password",
    "msrp.local_port", "msrp.transport", "msrp.relay", "msrp.relay_username",
    "msrp.relay_password", "msrp.certificate", "msrp.max_message_size",
    "rtp.inactivity_timeout", "media.heartbeat_interval", "media.unresponsive_grace",
    "media.zygote",
    "msrp.chunk_size",
    "msrp.direct_chunk_size",
    "xcap.local_port", "xcap.root",
    "presence.allow_everyone", "presence.subscribe_expires", "presence.publish_expires",
    "presence.publish_dialogs", "presence.max_watchers",
    "xcap.timeout", "xcap.retries",
    "web.listen", "web.certificate", "web.private_key", "web.max_upload_bytes", "web.upload_keep",
    "rpc.listen", "rpc.allowed_origins", "rpc.max_message_bytes", "rpc.event_replay",
    "rpc.client_queue", "media.max_workers", "log.level",
    "rpc.max_batch", "rpc.event_replay_bytes", "rpc.client_queue_bytes", "history.keep_days",
    "sip.max_connections", "sip.max_connections_per_address", "sip.message_timeout",
    "sip.udp_receive_buffer", "sip.session_expires", "sip.min_se",
    "sessions.no_answer_timeout", "sessions.max_incoming", "sessions.max_incoming_per_account",
}


def valid(key, value):
    return schema.lookup(key).validate(value)


def refused(key, value) -> str:
    with pytest.raises(SettingError) as caught:
        schema.lookup(key).validate(value)
    assert caught.value.key == key
    return str(caught.value)


def test_the_schema_has_exactly_the_documented_keys():
    assert {s.key for s in schema.SETTINGS} == EXPECTED_KEYS
    assert len(schema.SETTINGS) == len(EXPECTED_KEYS)


def test_every_default_is_valid_and_unchanged_by_validation():
    for setting in schema.SETTINGS:
        assert setting.validate(setting.default) == setting.default, setting.key


def test_documented_defaults():
    defaults = {s.key: s.default for s in schema.SETTINGS}
    assert defaults["sip.transport_list"] == ["udp", "tcp", "tls"]
    assert defaults["rtp.port_range"] == "50000-50500"
    assert defaults["rtp.audio_codecs"] == ["G722", "PCMU", "PCMA"]
    assert defaults["rtp.srtp"] == "optional"
    assert defaults["rpc.listen"] == "127.0.0.1:7575"
    assert defaults["tls.verify_server"] is True and defaults["tls.verify_client"] is False
    assert defaults["msrp.transport"] == "tls"
    assert defaults["media.max_workers"] == 4
    assert defaults["log.level"] == "info"


def test_table_is_everything_before_the_last_dot():
    setting = schema.lookup("nat.turn.server")
    assert (setting.table, setting.name) == ("nat.turn", "server")
    assert schema.lookup("sip.local_udp_port").table == "sip"


# int

def test_int_accepts_bounds():
    assert valid("media.max_workers", 1) == 1
    assert valid("media.max_workers", 64) == 64


@pytest.mark.parametrize("value", [0, 65, -1])
def test_int_out_of_bounds_names_the_bounds(value):
    message = refused("media.max_workers", value)
    assert "1..64" in message and "out of range" in message


def test_int_refuses_a_numeric_string_and_says_to_drop_the_quotes():
    message = refused("sip.max_message_bytes", "5060")
    assert 'the string "5060"' in message and "without quotes" in message


@pytest.mark.parametrize("value", [True, False, 4.0, None, [4]])
def test_int_refuses_other_types(value):
    refused("media.max_workers", value)


# port

@pytest.mark.parametrize("value", [0, 1, 5060, 65535])
def test_port_accepts(value):
    assert valid("sip.local_udp_port", value) == value


@pytest.mark.parametrize("value", [-1, 65536, "5060", True, 5060.0])
def test_port_refuses(value):
    message = refused("sip.local_udp_port", value)
    assert "0..65535" in message


@given(st.integers())
def test_port_accepts_exactly_0_to_65535(value):
    setting = schema.lookup("msrp.local_port")
    if 0 <= value <= 65535:
        assert setting.validate(value) == value
    else:
        with pytest.raises(SettingError):
            setting.validate(value)


# port range

def test_port_range_accepts_and_normalises():
    assert valid("rtp.port_range", "50000-50500") == "50000-50500"
    assert valid("rtp.port_range", " 40000 - 40010 ") == "40000-40010"
    assert valid("rtp.port_range", "1024-1024") == "1024-1024"
    assert valid("rtp.port_range", "65534-65535") == "65534-65535"


@pytest.mark.parametrize("value, problem", [
    ("50500-50000", "above its end"),
    ("1000-2000", "outside 1024..65535"),
    ("60000-70000", "outside 1024..65535"),
    ("50000", "LOW-HIGH"),
    ("a-b", "not a number"),
    (50000, "port range"),
    ([50000, 50500], "port range"),
])
def test_port_range_refuses(value, problem):
    assert problem in refused("rtp.port_range", value)


@given(st.integers(1024, 65535), st.integers(1024, 65535))
def test_port_range_accepts_any_ordered_pair(a, b):
    low, high = sorted((a, b))
    assert valid("rtp.port_range", f"{low}-{high}") == f"{low}-{high}"


# bool

def test_bool_must_be_a_real_bool():
    assert valid("nat.ice", True) is True
    assert "true or false" in refused("nat.ice", 1)
    assert "write true without quotes" in refused("nat.ice", "True")
    refused("nat.ice", None)


# enum

def test_enum_accepts_choices_and_suggests_on_a_near_miss():
    assert valid("rtp.srtp", "mandatory") == "mandatory"
    message = refused("rtp.srtp", "Optional")
    assert '"disabled", "optional", "mandatory"' in message
    assert 'did you mean "optional"' in message
    assert 'did you mean "warning"' in refused("log.level", "warn")
    refused("msrp.transport", "udp")


# lists

def test_list_of_enum():
    assert valid("sip.transport_list", ["tls"]) == ["tls"]
    assert valid("sip.transport_list", ("tcp", "udp")) == ["tcp", "udp"]
    assert "non-empty" in refused("sip.transport_list", [])
    message = refused("sip.transport_list", ["udp", "sctp"])
    assert '"sctp" is not allowed' in message and '"udp", "tcp", "tls"' in message
    assert "listed twice" in refused("sip.transport_list", ["udp", "udp"])
    assert 'give a list, e.g. ["udp"]' in refused("sip.transport_list", "udp")
    refused("sip.transport_list", [1])


def test_codec_list():
    assert valid("rtp.audio_codecs", ["PCMU", "speex/16000"]) == ["PCMU", "speex/16000"]
    assert "codec name" in refused("rtp.audio_codecs", ["PC MU"])
    refused("rtp.audio_codecs", [""])


def test_stun_servers():
    servers = ["stun.example.com", "192.0.2.1:3478", "[2001:db8::1]:3478", "[::1]"]
    assert valid("nat.stun_servers", servers) == servers
    assert valid("nat.stun_servers", []) == []
    assert "brackets" in refused("nat.stun_servers", ["2001:db8::1"])
    assert "outside 1..65535" in refused("nat.stun_servers", ["stun.example.com:99999"])
    assert "not a valid IPv4" in refused("nat.stun_servers", ["999.1.2.3"])
    refused("nat.stun_servers", ["bad_host!"])
    refused("nat.stun_servers", ["[::1"])


def test_allowed_origins():
    origins = ["http://localhost:8080", "https://example.com", "http://[::1]:3000"]
    assert valid("rpc.allowed_origins", origins) == origins
    assert "scheme://host[:port]" in refused("rpc.allowed_origins", ["example.com"])
    assert "drop the slash" in refused("rpc.allowed_origins", ["https://example.com/"])
    assert "has a path" in refused("rpc.allowed_origins", ["https://example.com/app"])


# strings with a form

def test_listen_address():
    for value in ["127.0.0.1:7575", "[::1]:0", "localhost:7575", "0.0.0.0:7575"]:
        assert valid("rpc.listen", value) == value
    assert "needs a port" in refused("rpc.listen", "127.0.0.1")
    assert "brackets" in refused("rpc.listen", "::1:7575")
    refused("rpc.listen", "127.0.0.1:70000")
    refused("rpc.listen", 7575)


def test_ip_address_settings():
    assert valid("sip.listen_address", "::") == "::"
    assert valid("sip.listen_address", "192.0.2.10") == "192.0.2.10"
    assert "not an IP address" in refused("sip.listen_address", "eth0")
    assert "may not be empty" in refused("sip.listen_address", "")
    assert valid("rtp.media_address", "") == ""
    refused("rtp.media_address", "example.com")


def test_paths_must_be_absolute():
    assert valid("tls.ca_list", "") == ""
    assert valid("tls.ca_list", "/etc/ssl/certs/ca.pem") == "/etc/ssl/certs/ca.pem"
    assert valid("tls.certificate", "~/sipd/cert.pem") == "~/sipd/cert.pem"
    assert "absolute path" in refused("tls.certificate", "cert.pem")
    refused("tls.certificate", "/a\x00b")


def test_uris():
    assert valid("msrp.relay", "msrps://relay.example.com:2855;tcp")
    assert valid("msrp.relay", "msrps://alice@relay.example.com;tcp")
    assert "msrps: URI" in refused("msrp.relay", "msrp://relay.example.com")
    assert valid("xcap.root", "https://xcap.example.com/xcap-root")
    assert "https:// URL" in refused("xcap.root", "ftp://xcap.example.com")
    assert valid("nat.turn.server", "turn.example.com:3478")
    refused("nat.turn.server", "turn.example.com:x")


# secrets

def test_secret_values_never_appear_in_messages_or_public_views():
    setting = schema.lookup("nat.turn.password")
    assert setting.secret
    with pytest.raises(SettingError) as caught:
        setting.validate(918273645)
    assert "918273645" not in str(caught.value) and "hidden" in str(caught.value)
    assert setting.public("hunter2") is None
    assert schema.lookup("nat.turn.username").public("alice") == "alice"


# unknown keys

def test_unknown_key_lists_close_matches():
    with pytest.raises(SettingError) as caught:
        schema.lookup("sip.local_udp_prot")
    assert caught.value.key == "sip.local_udp_prot"
    assert "sip.local_udp_port" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_key_without_close_match_points_to_the_schema():
    with pytest.raises(SettingError, match="settings.schema"):
        schema.lookup("zzz")


def test_describe_is_json_ready():
    described = json.loads(json.dumps(schema.describe()))
    by_key = {item["key"]: item for item in described}
    assert by_key["media.max_workers"]["minimum"] == 1
    assert by_key["rtp.srtp"]["choices"] == ["disabled", "optional", "mandatory"]
    assert by_key["nat.turn.password"]["secret"] is True
    assert all(item["help"] and item["allowed"] for item in described)


# the example configuration

def flatten(tree, prefix=""):
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def test_render_example_parses_to_all_defaults():
    parsed = dict(flatten(tomllib.loads(schema.render_example())))
    assert parsed == {s.key: s.default for s in schema.SETTINGS}


def test_render_example_documents_every_key_and_keeps_lines_short():
    text = schema.render_example()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 90
    for setting in schema.SETTINGS:
        index = next(i for i, line in enumerate(lines)
                     if line.startswith(f"{setting.name} = ") and _table_at(lines, i)
                     == setting.table)
        assert lines[index - 1].startswith("# Allowed: "), setting.key


def _table_at(lines, index):
    for line in reversed(lines[:index]):
        if line.startswith("["):
            return line.strip("[]")
    return ""


def test_config_example_file_is_the_rendered_schema():
    committed = (ROOT / "config" / "sipd.toml").read_text()
    assert committed == schema.render_example(), (
        "config/sipd.toml is stale: regenerate it with "
        "`.venv/bin/python -m sipd.settings.schema > config/sipd.toml`")


def test_module_main_prints_the_example():
    result = subprocess.run([sys.executable, "-m", "sipd.settings.schema"], check=True,
                            capture_output=True, text=True, cwd=ROOT)
    assert result.stdout == schema.render_example()
    assert result.stderr == ""


def test_nameservers_are_addresses_with_optional_port():
    assert valid("dns.nameservers", ["127.0.0.1:5353", "[::1]", "[::1]:53"]) == [
        "127.0.0.1:5353", "[::1]", "[::1]:53"]
    with pytest.raises(SettingError, match="not an IP address"):
        valid("dns.nameservers", ["dns.example.test"])


@pytest.mark.parametrize("key, value, fragment", [
    ("nat.turn.username", "u" * 1025, "1025 characters long; at most 1024"),
    ("tls.ca_list", "/" + "p" * 4096, "4097 characters long; at most 4096"),
    ("rpc.allowed_origins", [f"http://h{i}.test" for i in range(1001)], "1001 items"),
    ("rpc.allowed_origins", [f"http://h{i}.{'x' * 100}.test" for i in range(200)],
     "characters long together"),
    ("rpc.listen", "1" * 5000, "at most 1024"),
    ("log.level", "d" * 5000, "at most 1024"),
    ("nat.turn.username", "a\ud800b", "lone surrogate (\\ud800)"),
    ("dns.nameservers", ["\udfff"], "lone surrogate"),
])
def test_oversized_and_invalid_unicode_values_are_refused_briefly(key, value, fragment):
    message = refused(key, value)
    assert fragment in message
    assert len(message) < 600
    message.encode("utf-8")  # a refusal can always be logged and sent


def test_a_secret_is_not_shown_when_too_long():
    message = refused("nat.turn.password", "s3cret" * 1000)
    assert "s3cret" not in message and "at most 1024" in message
