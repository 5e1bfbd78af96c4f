"""sipctl, run as a user runs it, against a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def sipctl(*args: str, runtime_dir=None, check: bool = True, timeout: float = 30):
    command = [sys.executable, "-m", "sipctl"]
    if runtime_dir is not None:
        command += ["--runtime-dir", str(runtime_dir)]
    result = subprocess.run(command + list(args), capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def run(sipd):
    return lambda *args, **kw: sipctl(*args, runtime_dir=sipd.runtime_dir, **kw)


def test_version_table_and_json(run, sipd):
    assert "sipd" in run("version").stdout
    info = json.loads(run("--json", "version").stdout)
    assert info["pid"] == sipd.proc.pid


def test_settings_round_trip(run):
    changed = json.loads(run("--json", "settings", "set", "rpc.event_replay", "50").stdout)
    assert changed["value"] == 50 and changed["is_default"] is False
    assert json.loads(run("--json", "settings", "get", "rpc.event_replay").stdout)["value"] == 50
    listing = run("settings", "get").stdout
    assert "rpc.event_replay" in listing and "50" in listing
    run("settings", "set", "sip.transport_list", '["tcp", "tls"]')
    shown = json.loads(run("--json", "settings", "get", "sip.transport_list").stdout)
    assert shown["value"] == ["tcp", "tls"]
    run("settings", "reset", "rpc.event_replay")
    assert json.loads(run("--json", "settings", "get", "rpc.event_replay").stdout)["is_default"]
    assert "sip.local_udp_port" in run("settings", "schema").stdout


def test_errors_exit_non_zero_with_one_line(run):
    result = run("settings", "set", "sip.local_udp_port", "huge", check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "sip.local_udp_port" in result.stderr
    result = run("call", "system.versoin", check=False)
    assert result.returncode == 1 and "system.versoin" in result.stderr
    result = run("call", "settings.get", "{not json", check=False)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_call_any_method(run):
    result = json.loads(run("--json", "call", "settings.get", '{"key": "log.level"}').stdout)
    assert result["value"] == "debug"
    discover = json.loads(run("--json", "call", "rpc.discover").stdout)
    assert any(m["name"] == "settings.set" for m in discover["methods"])


def test_watch_streams_events(run, sipd):
    watcher = subprocess.Popen(
        [sys.executable, "-m", "sipctl", "--runtime-dir", str(sipd.runtime_dir), "--json",
         "watch", "settings", "--since", "0", "--count", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run("settings", "set", "media.max_workers", "2")
        run("settings", "set", "media.max_workers", "3")
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    events = [json.loads(line)["params"] for line in out.splitlines()]
    assert [e["data"]["value"] for e in events] == [2, 3]
    assert all(e["name"] == "settings.changed" for e in events)


def test_no_daemon_is_a_clear_error(tmp_path):
    result = sipctl("version", runtime_dir=tmp_path, check=False)
    assert result.returncode == 3 and "does not seem to run" in result.stderr


def test_explicit_url_and_token(sipd, tmp_path):
    endpoint = sipd.endpoint
    result = sipctl("--url", endpoint.url, "--token", endpoint.token, "--json", "version",
                    runtime_dir=tmp_path)
    assert json.loads(result.stdout)["name"] == "sipd"
    result = sipctl("--url", endpoint.url, "--token", "wrong", "version", runtime_dir=tmp_path,
                    check=False)
    assert result.returncode == 3 and "refused" in result.stderr
