"""sipctl's accounts and message commands, run as a user runs them, against two real daemons."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.harness.process import SipdProcess, running
from tests.harness.sipctl import sipctl, sipctl_json
from tests.harness.waits import wait_until


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    base = tmp_path_factory.mktemp("sipctl-sip")
    with running(base) as started:
        yield started


@pytest.fixture
def a(daemons):
    log_start = len(daemons[0].log())
    yield daemons[0]
    print(f"--- sipd a ---\n{daemons[0].log()[log_start:]}")  # shown on failure


@pytest.fixture
def b(daemons):
    log_start = len(daemons[1].log())
    yield daemons[1]
    print(f"--- sipd b ---\n{daemons[1].log()[log_start:]}")


_PORTS: dict[str, dict[str, int]] = {}


def local_uri(daemon: SipdProcess, transport: str = "udp") -> str:
    """sip:local@ the daemon's SIP address (its ports asked once: they do not change)."""
    key = str(daemon.base)
    if key not in _PORTS:
        _PORTS[key] = sipctl_json(daemon, "state")["sip"]["ports"]
    port = _PORTS[key][transport]
    return f"sip:local@127.0.0.1:{port}" + ("" if transport == "udp" else ";transport=tcp")


class Watcher:
    """`sipctl --json watch messages` on a daemon, from its current seq on."""

    def __init__(self, daemon: SipdProcess, count: int) -> None:
        seq = sipctl_json(daemon, "state")["seq"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sipctl", "--runtime-dir", str(daemon.runtime_dir), "--json",
             "watch", "messages", "--since", str(seq), "--count", str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def events(self) -> list[dict[str, Any]]:
        try:
            out, err = self.process.communicate(timeout=20)
        finally:
            self.process.kill()
            self.process.wait()
        assert self.process.returncode == 0, err
        return [json.loads(line)["params"] for line in out.splitlines()]


# -- accounts ---------------------------------------------------------------------------------

def test_accounts_lifecycle(a):
    listing = sipctl(a, "accounts", "list").stdout.splitlines()
    assert listing[0].split() == ["ID", "AOR", "REGISTRATION", "STATE"]
    assert listing[1].split() == ["local", "sip:local@localhost", "unregistered"]

    added = sipctl_json(a, "accounts", "add", "--aor", "sip:erin@example.test", "--password", "-",
                        "--username", "erin-auth", "--display-name", "Erin É",
                        "--registrar", "sip:127.0.0.1:9;transport=tcp",
                        "--outbound-proxy", "sip:127.0.0.1:9", "--transport", "tcp",
                        "--no-register", "--expires", "300", stdin="s3cret ✓\n")
    account_id = added["id"]
    assert added["aor"] == "sip:erin@example.test" and added["display_name"] == "Erin É"
    assert added["username"] == "erin-auth" and added["password_set"] is True
    assert added["registrar"] == "sip:127.0.0.1:9;transport=tcp"
    assert added["outbound_proxy"] == "sip:127.0.0.1:9"
    assert added["transport"] == "tcp" and added["expires"] == 300
    assert added["register"] is False and "password" not in added

    rows = [line.split() for line in sipctl(a, "accounts", "list").stdout.splitlines()]
    assert [account_id, "sip:erin@example.test", "unregistered"] in rows

    shown = sipctl(a, "accounts", "get", account_id).stdout
    assert "Erin É" in shown and "s3cret" not in shown

    updated = sipctl_json(a, "accounts", "update", account_id, "--display-name", "Erin",
                          "--expires", "120", "--outbound-proxy", "")
    assert updated["display_name"] == "Erin" and updated["expires"] == 120
    assert updated["outbound_proxy"] == "" and updated["password_set"] is True
    assert updated["username"] == "erin-auth"  # fields not given keep their values

    sipctl(a, "accounts", "remove", account_id)
    missing = sipctl(a, "accounts", "get", account_id, check=False)
    assert missing.returncode == 1 and account_id in missing.stderr
    assert missing.stderr.count("\n") == 1


def test_accounts_errors_and_usage(a):
    bad = sipctl(a, "accounts", "add", "--aor", "erin@example.test", check=False)
    assert bad.returncode == 1 and "aor" in bad.stderr and bad.stderr.count("\n") == 1
    local = sipctl(a, "accounts", "remove", "local", check=False)
    assert local.returncode == 1 and "local" in local.stderr
    no_aor = sipctl(a, "accounts", "add", "--password", "x", check=False)
    assert no_aor.returncode == 2 and "--aor" in no_aor.stderr
    bad_transport = sipctl(a, "accounts", "add", "--aor", "sip:x@example.test", "--transport",
                           "sctp", check=False)
    assert bad_transport.returncode == 2
    not_registrable = sipctl(a, "accounts", "register", "local", check=False)
    assert not_registrable.returncode == 1 and "registers nowhere" in not_registrable.stderr


def wait_registration(daemon: SipdProcess, account_id: str, state: str) -> dict[str, Any]:
    return wait_until(
        lambda: (shown := sipctl_json(daemon, "accounts", "get", account_id))
        ["registration"]["state"] == state and shown,
        timeout=15, what=f"{account_id} {state}")


@pytest.mark.interop
def test_accounts_register_and_unregister_at_kamailio(a, kamailio):
    registrar = kamailio.proxy_uri("udp").replace(";transport=udp", "")
    account_id = sipctl_json(a, "accounts", "add", "--aor", kamailio.aor("alice"),
                             "--password", "alice-secret", "--registrar", registrar,
                             "--no-register")["id"]
    try:
        assert kamailio.contacts("alice") == []

        sipctl(a, "accounts", "register", account_id)
        wait_registration(a, account_id, "registered")
        assert kamailio.contacts("alice")
        listing = sipctl(a, "accounts", "list").stdout
        assert any(line.split()[:1] == [account_id] and line.split()[-1] == "registered"
                   for line in listing.splitlines())

        sipctl(a, "accounts", "unregister", account_id)
        wait_registration(a, account_id, "unregistered")
        assert kamailio.contacts("alice") == []
    finally:
        sipctl(a, "accounts", "remove", account_id, check=False)


# -- messages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_message_send_between_daemons(a, b, transport):
    to = local_uri(b, transport)
    watcher = Watcher(b, count=2)

    shown = sipctl(a, "message", "send", "local", to, "héllo ✓ from sipctl").stdout
    result = sipctl_json(a, "message", "send", "local", to, "wrapped ✓", "--cpim",
                         "--content-type", "text/plain;charset=utf-8")

    assert "delivered  True" in shown and "200" in shown
    assert result["code"] == 200 and result["delivered"] is True
    plain, wrapped = (event["data"] for event in watcher.events())
    assert plain["content"] == "héllo ✓ from sipctl" and plain["to"] == to
    assert plain["content_type"] == "text/plain" and "cpim" not in plain
    assert wrapped["content"] == "wrapped ✓" and wrapped["cpim"]["to"] == [f"<{to}>"]


def test_message_composing(a, b):
    watcher = Watcher(a, count=2)
    to = local_uri(a, "tcp")

    active = sipctl_json(b, "message", "composing", "local", to, "active")
    sipctl(b, "message", "composing", "local", to, "idle")

    assert active["delivered"] is True
    events = watcher.events()
    assert [e["name"] for e in events] == ["message.composing"] * 2
    assert [e["data"]["state"] for e in events] == ["active", "idle"]
    usage = sipctl(b, "message", "composing", "local", to, "typing", check=False)
    assert usage.returncode == 2


def test_message_failures(a, b):
    to_nobody = local_uri(b).replace("sip:local@", "sip:nobody@")
    refused = sipctl(a, "--json", "message", "send", "local", to_nobody, "anyone?",
                     check=False)
    not_found = json.loads(refused.stdout)  # the result is printed, and the exit code is 1
    assert not_found["code"] == 404 and not_found["delivered"] is False
    assert refused.returncode == 1 and "not delivered: 404" in refused.stderr

    unknown = sipctl(a, "message", "send", "nobody", local_uri(b), "x", check=False)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    assert unknown.stderr.count("\n") == 1
    bad_to = sipctl(a, "message", "send", "local", "tel:+15551234", "x", check=False)
    assert bad_to.returncode == 1 and "tel:+15551234" in bad_to.stderr
