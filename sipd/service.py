"""The daemon's domain root: settings, the event bus and the parts that hang off them.

RPC methods reach everything through a Service; nothing here knows about RPC. Domain packages
register what they contribute to `system.state` and which settings they apply live.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import trio

from . import __version__
from .event_seq import SeqReservation
from .events import EventBus
from .limits import DescriptorBudget
from .settings import schema
from .settings.paths import Paths
from .settings.store import SettingsStore

log = logging.getLogger(__name__)

Applier = Callable[[str, Any], None]


class Service:
    def __init__(self, settings: SettingsStore, paths: Paths) -> None:
        self.settings = settings
        self.paths = paths
        reservation = SeqReservation(paths.state_dir)
        self.bus = EventBus(settings.get("rpc.event_replay"),
                            settings.get("rpc.event_replay_bytes"),
                            first_seq=reservation.first_seq(), reserve=reservation.reserve)
        # The one budget of file descriptors every part that accepts connections asks.
        self.descriptors = DescriptorBudget.for_this_process()
        self.started = time.time()
        self.stop_reason: str | None = None
        self.stop_requested = trio.Event()
        self.useragent: Any = None  # the SIP side (sipd.useragent.UserAgent), once started
        self.history: Any = None  # sipd.history.trio.History, once started
        self.contacts: Any = None  # sipd.contacts.service.ContactsService, once started
        self.web: Any = None  # sipd.web.server.WebServer (the web page), once started
        self.uploads: Any = None  # sipd.files.trio.uploads.UploadStore, once started
        self._appliers: list[tuple[str, Applier]] = []
        self._live_keys: set[str] = set()
        self._state: dict[str, Callable[[], Any]] = {}
        self.on_setting("rpc.event_replay",
                        lambda _key, value: self.bus.resize(replay_size=value))
        self.on_setting("rpc.event_replay_bytes",
                        lambda _key, value: self.bus.resize(replay_bytes=value))

    # -- lifecycle ------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_requested.set()

    def version(self) -> dict[str, Any]:
        return {"name": "sipd", "version": __version__, "pid": os.getpid()}

    # -- state snapshot -------------------------------------------------------------------

    def add_state(self, section: str, provider: Callable[[], Any]) -> None:
        self._state[section] = provider

    def state(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = {
            "version": self.version(),
            "uptime": round(time.time() - self.started, 3),
            "seq": self.bus.seq,
            "boot": self.bus.boot,
            "stopping": self.stop_reason is not None,
            "descriptors": self.descriptors.state(),
        }
        for section, provider in self._state.items():
            snapshot[section] = provider()
        return snapshot

    # -- settings -------------------------------------------------------------------------

    def on_setting(self, prefix: str, applier: Applier) -> None:
        """Call applier(key, value) whenever a key equal to or under prefix changes."""
        self._appliers.append((prefix, applier))

    def public_value(self, key: str, value: Any) -> Any:
        """A value as clients and logs may see it: secrets only say whether they are set."""
        return schema.lookup(key).public(value)

    def reads_live(self, *keys: str) -> None:
        """These keys are read each time they are used: a change needs no applier."""
        self._live_keys.update(keys)

    def applies_live(self, key: str) -> bool:
        return key in self._live_keys or any(
            key == prefix or key.startswith(prefix + ".") for prefix, _ in self._appliers)

    def changed(self, key: str, old: Any, new: Any) -> None:
        """Announce and apply a change already validated and persisted by the store."""
        if old == new:
            return
        live = self.applies_live(key)
        log.info("setting %s changed to %s%s", key, _shorten(repr(self.public_value(key, new))),
                 "" if live else " (takes effect at the next start)")
        self.bus.publish("settings.changed", {"key": key, "value": self.public_value(key, new),
                                              "restart_required": not live})
        for prefix, applier in self._appliers:
            if key == prefix or key.startswith(prefix + "."):
                try:
                    applier(key, new)
                except Exception:
                    log.exception("applying %s failed; it takes effect at the next start", key)

    def set_setting(self, key: str, value: Any) -> Any:
        old, new = self.settings.set(key, value)
        self.changed(key, old, new)
        return new

    def reset_setting(self, key: str) -> Any:
        old, new = self.settings.reset(key)
        self.changed(key, old, new)
        return new

    def reload_settings(self) -> dict[str, Any]:
        """SIGHUP: re-read the file; on error the old settings stay (ConfigError raised)."""
        changes = self.settings.reload()
        for key, (old, new) in changes.items():
            self.changed(key, old, new)
        return {key: self.public_value(key, new) for key, (_, new) in changes.items()}


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
