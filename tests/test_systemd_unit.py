"""systemd/sipd.service: valid for systemd, sandboxed, wired to the daemon's own notify code."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "sipd.service"


def unit_for_this_checkout(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's sipd (verify checks it exists)."""
    sipd = ROOT / ".venv" / "bin" / "sipd"
    if not sipd.exists():
        pytest.skip("needs `make install` (.venv/bin/sipd)")
    text = UNIT.read_text().replace("/opt/sipd/.venv/bin/sipd", str(sipd))
    copy = tmp_path / "sipd.service"
    copy.write_text(text)
    return copy


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keep the case of directives
    parser.read(UNIT)
    return dict(parser["Service"])


def test_unit_has_what_a_service_needs():
    service = service_section()
    assert service["Type"] == "notify"
    assert service["User"] == "sipd"
    for directive in ("StateDirectory", "ConfigurationDirectory", "RuntimeDirectory"):
        assert service[directive] == "sipd"
    for directive, value in {"ProtectSystem": "strict", "ProtectHome": "yes",
                             "NoNewPrivileges": "yes", "PrivateTmp": "yes"}.items():
        assert service[directive] == value
    families = set(service["RestrictAddressFamilies"].split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "WatchdogSec" in service
    # ExecStart names the very directories the unit creates
    assert "--config /etc/sipd/sipd.toml" in service["ExecStart"]
    assert "--state-dir /var/lib/sipd" in service["ExecStart"]
    assert "--runtime-dir /run/sipd" in service["ExecStart"]
    assert service["RestartPreventExitStatus"] == "2"  # the daemon's exit code for a bad config
    assert int(service["LimitNOFILE"]) >= 65536  # room for many connections (sipd/limits.py)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_clean(tmp_path):
    unit = unit_for_this_checkout(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if unit.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_sandbox_exposure_is_low(tmp_path):
    unit = unit_for_this_checkout(tmp_path)
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SYSTEMD_COLORS": "0"})
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5


def test_sysusers_creates_the_service_user():
    line = next(text for text in (ROOT / "systemd" / "sipd.sysusers").read_text().splitlines()
                if text and not text.startswith("#"))
    assert line.split()[:2] == ["u", "sipd"]
