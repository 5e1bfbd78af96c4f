"""Kamailio as registrar and proxy for the interop tests.

    with Kamailio(tmp_path, users={"alice": "secret"}, tls=True) as kam:
        kam.udp_port, kam.tcp_port, kam.tls_port, kam.domain, kam.ca_cert_path
        kam.proxy_uri("tcp")          # sip:127.0.0.1:PORT;transport=tcp, an outbound proxy
        kam.add_user("bob", "pw")     # effective at once
        kam.contacts("alice")         # Contact URIs registered for alice@domain
        kam.rpc("core.uptime")        # any Kamailio RPC, through kamcmd

Users authenticate with digest (realm = domain, qop=auth) against a `subscriber` table in an
SQLite file that Kamailio opens read-only. Registrations live in memory. Requests to
sip:user@domain go to the user's registered contacts; in-dialog requests follow their Route set.
Features for later issues are switched on by name: Kamailio(..., features={"presence"}).
With "presrules" (beside "presence" and "xcap") the presence server no longer makes every
watcher active: it decides by the presentity's pres-rules, stored through its XCAP server.
With "dummypresence" a presentity that published nothing is shown open ("Available") rather
than with no document (the presence benchmark's NOTIFYs then carry PIDF).

Kamailio runs in the foreground (-DD -E), as an unprivileged user when the tests run as root,
with its config, database, certificates and sockets in a run directory of its own (the test's tmp
dir is private to root); its log and a copy of its config are in the test's tmp dir.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .certs import TestCA
from .ports import HOST, free_port
from .proc import Process, ProcessError, require_binary, wait_until

TEMPLATE = Path(__file__).with_name("kamailio.cfg.in")
DBTEXT_SCHEMA_DIR = Path("/usr/share/kamailio/dbtext/kamailio")
DEFAULT_DOMAIN = "example.test"
FEATURES = frozenset({"presence", "xcap", "msrp", "presrules", "dummypresence"})
#: features that need others: presrules is presence deciding by the pres-rules on its XCAP server
REQUIRES = {"presrules": {"presence", "xcap"}, "dummypresence": {"presence"}}


def _run_identity() -> tuple[str, str] | None:
    """(user, group) Kamailio drops to when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("SIPD_TEST_USER"), "sipd-test", "kamailio", "nobody"):
        if not name:
            continue
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name
    raise RuntimeError("no unprivileged user to run Kamailio as "
                       "(tried sipd-test, kamailio, nobody)")


class Kamailio:
    def __init__(
        self,
        tmpdir: Path,
        users: dict[str, str] | None = None,
        *,
        tls: bool = True,
        domain: str = DEFAULT_DOMAIN,
        features: set[str] | frozenset[str] = frozenset(),
        debug: int = 2,
        msrp_expires: int = 600,
        start_timeout: float = 10.0,
        max_lifetime: float = 600,
    ) -> None:
        unknown = set(features) - FEATURES
        if unknown:
            raise ValueError(f"unknown Kamailio features {sorted(unknown)}; "
                             f"known: {sorted(FEATURES)}")
        for feature, needed in REQUIRES.items():
            if feature in features and not needed <= set(features):
                raise ValueError(f"Kamailio feature {feature} needs {sorted(needed)} too")
        self.binary = require_binary("kamailio")
        self.tmpdir = Path(tmpdir) / f"kamailio-{uuid.uuid4().hex[:6]}"
        self.tmpdir.mkdir(parents=True)
        self.domain = domain
        self.tls = tls
        self.features = frozenset(features)
        self.debug = debug
        self.start_timeout = start_timeout
        self.max_lifetime = max_lifetime
        self.initial_users = dict(users or {})
        self.udp_port = free_port()
        self.tcp_port = self.udp_port  # one port number for UDP and TCP, like port 5060
        self.tls_port = free_port(udp=False) if tls else None
        self.xcap_port = free_port(udp=False) if "xcap" in self.features else None
        self.msrp_port = free_port(udp=False) if "msrp" in self.features else None
        self.msrp_password = "relay-secret"  # the MSRP relay's AUTH password, any user name
        # seconds a relay grant lasts unless the AUTH asks (Expires of the AUTH's 200)
        self.msrp_expires = msrp_expires
        self.log_path = self.tmpdir / "kamailio.log"
        self.identity = _run_identity()
        self.run_dir: Path | None = None
        self.ca: TestCA | None = None
        self.ca_cert_path: Path | None = None
        self.process: Process | None = None

    # -- paths -------------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "users.sqlite"

    @property
    def ctl_socket(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "ctl.sock"

    def proxy_uri(self, transport: str = "udp") -> str:
        """URI of this Kamailio over `transport` (udp, tcp, tls), e.g. for an outbound proxy."""
        port = {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport]
        if port is None:
            raise ValueError(f"this Kamailio has no {transport} listener")
        return f"sip:{HOST}:{port};transport={transport}"

    def msrp_relay_uri(self, transport: str = "tcp") -> str:
        """The MSRP relay's URI over tcp (msrp://, its MSRP listener) or tls (msrps://, the
        TLS listener, which takes MSRP beside SIP)."""
        if self.msrp_port is None:
            raise ValueError("this Kamailio has no msrp feature")
        if transport == "tls":
            if self.tls_port is None:
                raise ValueError("this Kamailio has no TLS listener")
            return f"msrps://{HOST}:{self.tls_port};tcp"
        return f"msrp://{HOST}:{self.msrp_port};tcp"

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Kamailio:
        self._make_run_dir()
        self._make_database()
        if self.tls:
            self._make_tls()
        if "presence" in self.features or "xcap" in self.features:
            self._make_dbtext()
        cfg = self._write_config()
        assert self.run_dir is not None  # made above
        argv = [self.binary, "-DD", "-E", "-f", cfg, "-w", self.run_dir,
                "-P", self.run_dir / "kamailio.pid", "-Y", self.run_dir, "-m", "32", "-M", "8"]
        if os.environ.get("KAMAILIO_MODULES_DIR"):
            argv += ["-L", os.environ["KAMAILIO_MODULES_DIR"]]
        if self.identity:
            argv += ["-u", self.identity[0], "-g", self.identity[1]]
        if self.identity:
            self._chown_tree(self.run_dir)
        self.process = Process(argv, name="kamailio", log_path=self.log_path,
                               max_lifetime=self.max_lifetime).start()
        try:
            wait_until(self._ready, timeout=self.start_timeout,
                       what=f"kamailio to answer OPTIONS on udp/{self.udp_port}",
                       on_timeout=self.process.log_tail, interval=0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=5)
        if self.run_dir is not None and self.run_dir != self.tmpdir / "run":
            # keep what a failure report needs, drop the private run dir
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    # -- users -------------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Add (or replace) a user; Kamailio reads the table per request, so it works at once."""
        with sqlite3.connect(self.db_path, timeout=5) as db:
            db.execute("INSERT OR REPLACE INTO subscriber (username, domain, password) "
                       "VALUES (?, ?, ?)", (username, self.domain, password))
        db.close()

    # -- introspection -----------------------------------------------------------------------

    def rpc(self, *args: str, timeout: float = 5.0) -> str:
        """Run one Kamailio RPC command through kamcmd and return its output."""
        kamcmd = require_binary("kamcmd")
        result = subprocess.run([kamcmd, "-s", f"unix:{self.ctl_socket}", *args],
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise ProcessError(f"kamcmd {' '.join(args)} failed: {result.stderr or result.stdout}")
        return result.stdout

    def contacts(self, user: str) -> list[str]:
        """Contact URIs currently registered for user@domain (empty when none)."""
        try:
            out = self.rpc("ul.lookup", "location", f"{user}@{self.domain}")
        except ProcessError as exc:
            if "Not Found" in str(exc) or "not found" in str(exc).lower():
                return []
            raise
        found = []
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("Address:"):
                found.append(line.split(":", 1)[1].strip())
        return found

    def wait_registered(self, user: str, timeout: float = 10.0) -> list[str]:
        return wait_until(lambda: self.contacts(user), timeout=timeout,
                          what=f"{user}@{self.domain} to be registered at Kamailio",
                          on_timeout=lambda: self.process.log_tail() if self.process else "")

    # -- internals ---------------------------------------------------------------------------

    def _make_run_dir(self) -> None:
        if self.identity:
            # The test's tmp dir is private to root; Kamailio's user needs its own directory.
            self.run_dir = Path(tempfile.mkdtemp(prefix="sipd-kamailio-"))
            os.chmod(self.run_dir, 0o755)
        else:
            self.run_dir = self.tmpdir / "run"
            self.run_dir.mkdir()
        (self.tmpdir / "run-dir.txt").write_text(f"{self.run_dir}\n")

    def _chown_tree(self, root: Path) -> None:
        assert self.identity is not None
        uid = pwd.getpwnam(self.identity[0]).pw_uid
        gid = grp.getgrnam(self.identity[1]).gr_gid
        for dirpath, _dirnames, filenames in os.walk(root):
            os.chown(dirpath, uid, gid)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), uid, gid)

    def _make_database(self) -> None:
        with sqlite3.connect(self.db_path) as db:
            db.executescript("""
                CREATE TABLE version (
                    table_name VARCHAR(32) NOT NULL,
                    table_version INTEGER DEFAULT 0 NOT NULL,
                    CONSTRAINT version_table_name_idx UNIQUE (table_name));
                INSERT INTO version (table_name, table_version) VALUES ('subscriber', 7);
                CREATE TABLE subscriber (
                    id INTEGER PRIMARY KEY NOT NULL,
                    username VARCHAR(64) DEFAULT '' NOT NULL,
                    domain VARCHAR(64) DEFAULT '' NOT NULL,
                    password VARCHAR(64) DEFAULT '' NOT NULL,
                    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
                    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
                    CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
            """)
        db.close()
        for username, password in self.initial_users.items():
            self.add_user(username, password)

    def _make_tls(self) -> None:
        self.ca = TestCA(self.tmpdir / "tls")
        self.ca_cert_path = self.ca.ca_cert_path
        server = self.ca.issue("kamailio", [self.domain, "localhost"], ["127.0.0.1"])
        assert self.run_dir is not None
        for src, name in ((server.cert_path, "server.crt"), (server.key_path, "server.key"),
                          (self.ca.ca_cert_path, "ca.pem")):
            shutil.copyfile(src, self.run_dir / name)
        (self.run_dir / "tls.cfg").write_text(
            "# written by tests/peers/kamailio.py\n"
            "[server:default]\n"
            "method = TLSv1.2+\n"
            "verify_certificate = no\n"
            "require_certificate = no\n"
            f"private_key = {self.run_dir / 'server.key'}\n"
            f"certificate = {self.run_dir / 'server.crt'}\n"
            f"ca_list = {self.run_dir / 'ca.pem'}\n"
            "\n"
            "[client:default]\n"
            "method = TLSv1.2+\n"
            "verify_certificate = no\n"
            "require_certificate = no\n"
            f"ca_list = {self.run_dir / 'ca.pem'}\n"
        )

    def _make_dbtext(self) -> None:
        assert self.run_dir is not None
        target = self.run_dir / "dbtext"
        target.mkdir()
        for table in ("version", "presentity", "active_watchers", "watchers", "xcap", "pua",
                      "rls_presentity", "rls_watchers"):
            src = DBTEXT_SCHEMA_DIR / table
            if src.exists():
                shutil.copyfile(src, target / table)

    def _write_config(self) -> Path:
        assert self.run_dir is not None
        defines = []
        if self.tls:
            defines.append("#!define WITH_TLS")
        for feature in sorted(self.features):
            defines.append(f"#!define WITH_{feature.upper()}")
        values = {
            "FEATURES": "\n".join(defines),
            "DEBUG": str(self.debug),
            "UDP_PORT": str(self.udp_port),
            "TCP_PORT": str(self.tcp_port),
            "TLS_PORT": str(self.tls_port or 0),
            "XCAP_PORT": str(self.xcap_port or 0),
            "MSRP_PORT": str(self.msrp_port or 0),
            "MSRP_PASSWORD": self.msrp_password,
            "MSRP_EXPIRES": str(self.msrp_expires),
            "DOMAIN": self.domain,
            "DB_PATH": str(self.db_path),
            "DB_URL": f"sqlite:///{self.db_path}",
            "PRESENCE_DB_URL": f"text://{self.run_dir / 'dbtext'}",
            "TLS_CFG": str(self.run_dir / "tls.cfg"),
            "CTL_SOCKET": str(self.ctl_socket),
        }
        text = TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        leftover = re.search(r"@@[A-Z_]+@@", text)
        if leftover:
            raise ValueError(f"unfilled placeholder {leftover.group()} in {TEMPLATE.name}")
        cfg = self.run_dir / "kamailio.cfg"
        cfg.write_text(text)
        shutil.copyfile(cfg, self.tmpdir / "kamailio.cfg")  # for the failure report
        return cfg

    def _ready(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            popen = self.process.popen
            raise ProcessError(f"kamailio exited with status {popen.poll() if popen else None}\n"
                               f"{self.process.log_tail()}")
        if not options_ping(HOST, self.udp_port, timeout=0.2):
            return False
        for port in (self.tcp_port, self.tls_port):
            if port is not None and not _tcp_accepts(HOST, port):
                return False
        return True


def options_ping(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """True when a SIP OPTIONS over UDP to host:port gets a 200 answer within `timeout`."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local_port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{call_id[:16]};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={call_id[:8]}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        try:
            sock.sendto(request.encode(), (host, port))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = sock.recv(65535).decode(errors="replace")
                if call_id in data:
                    return data.startswith("SIP/2.0 200")
        except OSError:  # timeout, or ICMP port unreachable (not listening yet)
            return False
    return False


def _tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
