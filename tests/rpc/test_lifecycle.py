"""The daemon as a process: start-up, signals, reload, crashes, systemd notification."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import stat
import subprocess

import pytest
import trio

from sipctl.client import connect
from sipd.settings.schema import render_example
from sipd.settings.store import SettingsStore
from tests.harness.process import ROOT, SipdProcess, host_port
from tests.harness.waits import eventually


def test_first_start_creates_default_config(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.start(write_settings=False)  # no file: the default one is created...
    try:
        assert daemon.config.read_text() == render_example()
        assert stat.S_IMODE(daemon.config.stat().st_mode) == 0o600
        # ...and rpc.json says where the daemon listens, readable only by its user
        info = json.loads(daemon.rpc_file.read_text())
        assert info["url"].startswith("ws://127.0.0.1:") and len(info["token"]) >= 32
        assert stat.S_IMODE(daemon.rpc_file.stat().st_mode) == 0o600
    finally:
        assert daemon.stop() == 0
    assert (ROOT / "config" / "sipd.toml").read_text() == render_example()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_cleanly_and_tells_clients(sipd, signum):
    async with connect(sipd.endpoint) as client:
        await client.call("events.subscribe", {"topics": ["system"]})
        sipd.signal(signum)
        event = await client.next_event("system.stopping")
        assert signal.Signals(signum).name in event["data"]["reason"]
        await eventually(lambda: client.ws.closed, timeout=10, what="client.ws.closed")
        assert client.ws.closed.code == 1001
        assert "sipd is stopping" in client.ws.closed.reason
    assert sipd.wait(10) == 0
    assert not sipd.rpc_file.exists()


async def test_system_shutdown(sipd, client):
    assert await client.call("system.shutdown") == {"stopping": True}
    assert sipd.wait(10) == 0
    assert not sipd.rpc_file.exists()


def test_syntax_error_in_config_refuses_to_start_and_keeps_the_file(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.config.parent.mkdir(parents=True)
    broken = b"[rpc]\nlisten = \"127.0.0.1:0\"\n[sip\nlocal_udp_port = 5060\n"
    daemon.config.write_bytes(broken)
    daemon.start(wait=False)
    assert daemon.wait(15) == 2
    assert f"{daemon.config}:3" in daemon.log()
    assert daemon.config.read_bytes() == broken
    assert not daemon.rpc_file.exists()


def test_invalid_value_in_config_refuses_to_start(tmp_path):
    daemon = SipdProcess(tmp_path, {"sip.local_udp_port": 99999})
    daemon.start(wait=False)
    assert daemon.wait(15) == 2
    assert "sip.local_udp_port" in daemon.log()


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare for a read-only mount")
def test_read_only_state_dir_is_a_clear_error(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.state_dir.mkdir(parents=True)
    daemon.config.parent.mkdir(parents=True)
    from tests.harness.process import write_config
    write_config(daemon.config, daemon.settings)
    command = " ".join(daemon.command())
    # A read-only bind mount: permission bits alone do not stop root.
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         f"mount --bind -o ro {daemon.state_dir} {daemon.state_dir} && exec {command}"],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 1
    assert str(daemon.state_dir) in result.stderr and "read-only" in result.stderr.lower()


def test_second_daemon_on_same_runtime_dir_refuses(sipd, tmp_path):
    second = SipdProcess(tmp_path, name="sipd")  # same directories as the fixture's
    second.start(wait=False, write_settings=False)
    assert second.wait(15) == 1
    assert "another sipd" in second.log()
    assert sipd.rpc_file.exists()  # the first one's file is untouched


def test_rpc_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = SipdProcess(tmp_path, {"rpc.listen": f"127.0.0.1:{port}"})
        daemon.start(wait=False)
        assert daemon.wait(15) == 1
    assert "address already in use" in daemon.log().lower()


async def test_sighup_reloads_and_keeps_old_settings_when_invalid(sipd, client):
    await client.call("events.subscribe", {"topics": ["settings"]})
    text = sipd.config.read_text()
    sipd.config.write_text(text.replace("[log]", "[media]\nmax_workers = 7\n\n[log]", 1)
                           if "[media]" not in text else text + "\n")
    if "[media]" in text:
        await client.call("settings.set", {"key": "media.max_workers", "value": 2})
        await client.next_event("settings.changed")
        sipd.config.write_text(sipd.config.read_text().replace("max_workers = 2",
                                                               "max_workers = 7"))
    sipd.signal(signal.SIGHUP)
    event = await client.next_event("settings.changed")
    assert event["data"] == {"key": "media.max_workers", "value": 7, "restart_required": True}

    good = sipd.config.read_text()
    sipd.config.write_text(good.replace("max_workers = 7", "max_workers = \"many\""))
    sipd.signal(signal.SIGHUP)
    await eventually(lambda: "configuration not reloaded" in sipd.log(), timeout=10,
                     what="'configuration not reloaded' in sipd.log()")
    assert (await client.call("settings.get", {"key": "media.max_workers"}))["value"] == 7


async def test_kill_9_during_settings_writes_leaves_a_valid_file(tmp_path):
    daemon = SipdProcess(tmp_path).start()
    try:
        async with connect(daemon.endpoint) as client:
            async def write_forever():
                value = 0
                while True:
                    value = value % 60 + 1
                    await client.call("settings.set", {"key": "media.max_workers",
                                                       "value": value})
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write_forever)
                await trio.sleep(0.5)
                daemon.proc.kill()
                await eventually(lambda: daemon.proc.poll() is not None, timeout=10,
                                 what="daemon.proc.poll() is not None")
                nursery.cancel_scope.cancel()
    except BaseException as exc:  # the connection breaks: that is the point
        if not _broken_connection(exc):
            raise
    store = SettingsStore.open(daemon.config)  # parses and validates
    assert 1 <= store.get("media.max_workers") <= 60
    assert not [p for p in daemon.config.parent.iterdir() if p.name != "sipd.toml"]
    # and the daemon starts again over the stale rpc.json the killed one left
    restarted = SipdProcess(tmp_path)
    restarted.start(write_settings=False)
    try:
        async with connect(restarted.endpoint) as client:
            assert (await client.call("system.version"))["pid"] == restarted.proc.pid
    finally:
        assert restarted.stop() == 0


def _broken_connection(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_broken_connection(e) for e in exc.exceptions)
    from trio_websocket import ConnectionClosed
    return isinstance(exc, (ConnectionClosed, ConnectionError, trio.BrokenResourceError,
                            trio.Cancelled))


def test_systemd_notifications(tmp_path):
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        notify.settimeout(15)
        daemon = SipdProcess(tmp_path, env={"NOTIFY_SOCKET": address,
                                            "WATCHDOG_USEC": "200000"})
        daemon.start()
        try:
            messages = set()
            while not {"READY=1", "WATCHDOG=1"} <= messages:
                messages |= set(notify.recv(4096).decode().split("\n"))
            assert any(m.startswith("STATUS=RPC on ws://127.0.0.1:") for m in messages)
            daemon.signal(signal.SIGTERM)
            while "STOPPING=1" not in messages:
                messages |= set(notify.recv(4096).decode().split("\n"))
            assert daemon.wait(10) == 0
        finally:
            daemon.stop()


async def test_state_snapshot_and_seq(sipd, client):
    state = await client.call("system.state")
    assert state["version"]["pid"] == sipd.proc.pid
    assert state["stopping"] is False and state["seq"] >= 1  # system.ready was published
    await client.call("settings.set", {"key": "media.max_workers", "value": 2})
    assert (await client.call("system.state"))["seq"] == state["seq"] + 1


async def test_rpc_listen_moves_live_and_rpc_json_follows(sipd, client):
    old_url = sipd.endpoint.url
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await client.call("settings.set", {"key": "rpc.listen", "value": f"127.0.0.1:{port}"})
    await eventually(lambda: sipd.endpoint.url != old_url, timeout=10,
                     what="sipd.endpoint.url != old_url")
    assert host_port(sipd.endpoint.url) == ("127.0.0.1", port)
    async with connect(sipd.endpoint) as moved:
        assert (await moved.call("system.version"))["name"] == "sipd"
    # the connection that asked for the move is still served
    assert (await client.call("system.version"))["name"] == "sipd"
    with pytest.raises(OSError):
        await trio.open_tcp_stream(*host_port(old_url))


async def test_rpc_listen_on_a_taken_port_keeps_the_old_listener(sipd, client):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        await client.call("settings.set", {"key": "rpc.listen", "value": f"127.0.0.1:{port}"})
        await eventually(lambda: "cannot listen on" in sipd.log(), timeout=10,
                         what="'cannot listen on' in sipd.log()")
    async with connect(sipd.endpoint) as again:
        assert (await again.call("system.version"))["name"] == "sipd"


async def test_an_idle_client_stays_connected(sipd, client):
    """Connections live as long as the client wants: no handshake or auth deadline ends an
    authenticated connection (both are 10 s and 30 s; this waits past the first)."""
    await client.call("events.subscribe", {"topics": ["settings"]})
    await trio.sleep(12)
    assert client.ws.closed is None
    await client.call("settings.set", {"key": "media.max_workers", "value": 2})
    assert (await client.next_event("settings.changed"))["data"]["value"] == 2
