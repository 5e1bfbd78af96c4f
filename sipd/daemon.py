"""`sipd`: start the daemon, serve until told to stop, stop cleanly.

Start-up order: logging, paths, settings (a broken file stops us here, untouched), the RPC front
door, then rpc.json and READY. Stop: `system.stopping`, clients closed with a reason, rpc.json
removed, STOPPING. SIGHUP re-reads the settings file and keeps the old settings if it is invalid.
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from . import __version__, logsetup
from .contacts.service import open_contacts
from .files.trio.uploads import UploadStore
from .history.trio import open_history
from .limits import RPC, raise_descriptor_limit
from .rpc.methods import registry
from .rpc.server import RpcServer
from .service import Service
from .settings.errors import ConfigError, PersistError
from .settings.paths import Paths, check_writable, default_paths, ensure_dir
from .settings.store import SettingsStore
from .systemd_notify import Notifier
from .useragent import open_user_agent
from .web.server import WebServer, WebSettingError

log = logging.getLogger("sipd")

EXIT_CONFIG = 2      # the configuration file is broken: fix it, restarting will not help
EXIT_ENVIRONMENT = 1  # a directory or port is unusable, or another sipd holds the runtime dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = default_paths()
    parser = argparse.ArgumentParser(prog="sipd", description="Headless SIP user agent service, "
                                     "driven over JSON-RPC on a WebSocket.")
    parser.add_argument("--config", type=Path, default=defaults.config_file,
                        help=f"settings file (created with defaults if missing; default "
                             f"{defaults.config_file})")
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir,
                        help=f"history and other state (default {defaults.state_dir})")
    parser.add_argument("--runtime-dir", type=Path, default=defaults.runtime_dir,
                        help=f"rpc.json and the lock (default {defaults.runtime_dir})")
    parser.add_argument("--version", action="version", version=f"sipd {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logsetup.setup("info")
    paths = Paths(args.config.absolute(), args.state_dir.absolute(), args.runtime_dir.absolute())
    try:
        settings = SettingsStore.open(paths.config_file)
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_CONFIG
    except PersistError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_ENVIRONMENT
    logsetup.set_level(settings.get("log.level"))
    before, soft, hard = raise_descriptor_limit()
    if soft != before:
        log.info("raised the open file limit from %d to %d (the hard limit)", before, soft)
    elif soft < hard:
        log.warning("could not raise the open file limit %d to the hard limit %d", soft, hard)
    try:
        for directory in (paths.state_dir, paths.runtime_dir):
            ensure_dir(directory)
            check_writable(directory)
        lock = _lock_runtime_dir(paths.runtime_dir)
        # A daemon killed with SIGKILL leaves its rpc.json: clients must not find a dead URL.
        (paths.runtime_dir / "rpc.json").unlink(missing_ok=True)
    except (PersistError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return EXIT_ENVIRONMENT
    try:
        return trio.run(run, Service(settings, paths))
    except (OSError, BaseExceptionGroup) as exc:  # e.g. the RPC or a SIP port is taken
        problem = _environment_problem(exc)
        if problem is None:
            raise
        log.error("cannot start: %s", problem)
        return EXIT_ENVIRONMENT
    finally:
        lock.close()


def _environment_problem(exc: BaseException) -> BaseException | None:
    """The OSError (a port taken, an address missing...) behind a failed start, if any."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _environment_problem(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, OSError):
        return exc
    return _environment_problem(exc.__cause__) if exc.__cause__ else None


def _lock_runtime_dir(runtime_dir: Path) -> Any:
    """One daemon per runtime directory: a second one would overwrite the first's rpc.json."""
    lock = os.fdopen(os.open(runtime_dir / "sipd.lock", os.O_RDWR | os.O_CREAT, 0o600), "r+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise PersistError(f"another sipd (pid {holder}) is running with runtime directory "
                           f"{runtime_dir}; stop it or use --runtime-dir",
                           path=runtime_dir) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def write_rpc_file(path: Path, url: str, token: str, boot: str) -> None:
    """rpc.json, mode 0600 from birth, replaced atomically so a client never reads half of it.
    `boot` names this run of the daemon (events.subscribe's `boot`)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as stream:
            json.dump({"url": url, "token": token, "pid": os.getpid(), "boot": boot}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


async def run(service: Service) -> int:
    notifier = Notifier()
    token = secrets.token_urlsafe(32)
    logsetup.redact(token)
    server = RpcServer(service, registry, token)
    service.on_setting("log.level", lambda _key, level: logsetup.set_level(level))
    rpc_file = service.paths.runtime_dir / "rpc.json"
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        # The history outlives the user agent: calls ending as it stops are still recorded.
        async with open_history(service.bus, service.paths.state_dir,
                                service.settings.get("history.keep_days")) as history, \
                open_user_agent(service) as agent, \
                open_contacts(service, agent.accounts, agent.presence) as contacts, \
                trio.open_nursery() as nursery:
            service.history = history
            service.add_state("history", history.state)
            service.on_setting("history.keep_days",
                               lambda _key, days: history.set_keep_days(days))
            service.useragent = agent
            service.contacts = contacts
            agent.accounts.on_change(contacts.account_changed)
            service.on_setting("xcap", lambda _key, _value: contacts.sync())
            service.add_state("sip", agent.state)
            service.add_state("accounts", agent.accounts.summary)
            url = await nursery.start(server.run)
            uploads = await _start_uploads(nursery, service, agent)
            web = WebServer(service.settings, token, server, agent.sessions.get,
                            may_accept=lambda: service.descriptors.may_accept(RPC),
                            uploads=uploads, history=lambda: service.history)
            service.web = web
            service.add_state("web", web.state)
            page = await _start_web(nursery, web)
            if page:
                server.page_origins = {page.rstrip("/")}
            boot = service.bus.boot
            write_rpc_file(rpc_file, url, token, boot)
            server.on_url_change = lambda new_url: write_rpc_file(rpc_file, new_url, token, boot)
            service.on_setting("rpc.listen", lambda _key, listen: server.rebind(listen))
            nursery.start_soon(_handle_signals, signals, service, notifier)
            nursery.start_soon(notifier.watchdog_loop)
            service.bus.publish("system.ready", {"version": __version__, "rpc": url,
                                                 "sip": agent.stack.ports, "web": page})
            _settle_heap()
            notifier.ready(f"RPC on {url}")
            log.info("sipd %s ready (config %s, RPC %s, web page %s)", __version__,
                     service.paths.config_file, url, page or "off")

            await service.stop_requested.wait()
            reason = service.stop_reason or "stopping"
            log.info("stopping: %s", reason)
            notifier.stopping(reason)
            service.bus.publish("system.stopping", {"reason": reason})
            rpc_file.unlink(missing_ok=True)
            await server.close_all(f"sipd is stopping: {reason}")
            nursery.cancel_scope.cancel()
    log.info("stopped")
    return 0


async def _start_uploads(nursery: trio.Nursery, service: Service,
                         agent: Any) -> UploadStore | None:
    """The files the web page uploads for files.send, in <state-dir>/uploads: deleted when
    the session that sends one ends, or web.upload_keep seconds after an upload nobody sent.
    None (logged) when that folder cannot be used: the rest of the daemon goes on."""
    def live(session_id: str) -> bool:
        return any(call.id == session_id for call in agent.sessions.calls())

    uploads = UploadStore(service.paths.state_dir / "uploads",
                          keep=lambda: service.settings.get("web.upload_keep"), live=live)
    try:
        await uploads.start()
    except OSError as exc:
        log.error("uploads from the web page are off: %s", exc)
        return None
    service.uploads = uploads
    service.reads_live("web.max_upload_bytes", "web.upload_keep")
    service.bus.subscribe(["sessions"], uploads.session_state)
    nursery.start_soon(uploads.sweep_loop)
    return uploads


async def _start_web(nursery: trio.Nursery, web: WebServer) -> str | None:
    """The web page's URL, or None: a page that cannot be served (its port taken, a bad
    certificate) is logged and left off; SIP and RPC go on without it."""
    try:
        return await nursery.start(web.run)
    except WebSettingError as exc:
        log.error("the web page is off: %s", exc)
        web.error = str(exc)
        return None


def _settle_heap() -> None:
    """What start-up made (modules, settings schema, parser tables, the stack) lives as long as
    the daemon: moved out of the collector's sight, the full collections that come during
    calls scan only what the calls made (they took ~3 ms of a call setup otherwise)."""
    gc.collect()
    gc.freeze()


async def _handle_signals(signals: Any, service: Service, notifier: Notifier) -> None:
    async for signum in signals:
        if signum == signal.SIGHUP:
            notifier.reloading()
            try:
                changed = list(service.reload_settings())  # the keys that changed
                if service.useragent is not None:
                    changed = [*changed, *(f"accounts.{account_id}" for account_id in
                                           await service.useragent.accounts.reload())]
                if service.contacts is not None:
                    service.contacts.reload()  # and what other devices changed on XCAP
                log.info("configuration reloaded; changed: %s", sorted(changed) or "nothing")
            except ConfigError as exc:
                log.error("configuration not reloaded, the previous one stays: %s", exc)
            notifier.ready("configuration reloaded")
        else:
            service.request_stop(f"signal {signal.Signals(signum).name}")


if __name__ == "__main__":
    sys.exit(main())
