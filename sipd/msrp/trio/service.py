"""The daemon's one MSRP endpoint: made from the msrp.* settings at start, its listener on
msrp.local_port in the user agent's nursery. When it cannot start (a port taken, a certificate
that does not load) the daemon serves on without MSRP and says why in system.state; streams
that need it fail with that reason."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from .config import Get, endpoint_settings, relay_settings
from .connection import MsrpConnectError
from .endpoint import MsrpEndpoint
from .relay import RelaySettings
from .tls import MsrpTlsError

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


class MsrpUnavailable(Exception):
    pass


class MsrpService:
    def __init__(self, get: Get | None, *, host: str = "", state_dir: Path | None = None,
                 may_accept: Callable[[], bool] = lambda: True,
                 nameservers: Sequence[tuple[str, int]] | None = None) -> None:
        self._get = get
        self._may_accept = may_accept  # the daemon's descriptor budget, for peer connections
        self._host = host
        self._state_dir = state_dir
        self._nameservers = nameservers
        self._endpoint: MsrpEndpoint | None = None
        self.problem: str | None = "it has not started yet"

    @classmethod
    def unstarted(cls) -> MsrpService:
        return cls(None)

    async def start(self, nursery: trio.Nursery) -> None:
        assert self._get is not None and self._state_dir is not None
        try:
            endpoint = MsrpEndpoint(endpoint_settings(self._get, host=self._host,
                                                      state_dir=self._state_dir),
                                    may_accept=self._may_accept)
            await nursery.start(endpoint.serve)
        except (OSError, ValueError, MsrpTlsError, MsrpConnectError) as exc:
            self.problem = f"MSRP is not available: {exc}"
            log.error("%s (chat, file transfer and screen sharing are off)", self.problem)
            return
        self._endpoint, self.problem = endpoint, None
        log.info("MSRP listens on %s:%d (%s)", self._host, endpoint.port,
                 endpoint.settings.transport)

    @property
    def endpoint(self) -> MsrpEndpoint:
        if self._endpoint is None:
            raise MsrpUnavailable(self.problem or "MSRP is not available")
        return self._endpoint

    def relay_for(self, *, username: str, password: str,
                  domain: str) -> RelaySettings | None:
        """The relays a session of an account with these credentials goes through (None:
        direct), read from the msrp.* settings as they are now."""
        if self._get is None:
            return None
        return relay_settings(self._get, username=username, password=password, domain=domain,
                              nameservers=self._nameservers)

    @property
    def max_message_size(self) -> int:
        """msrp.max_message_size: the largest message a session of ours takes."""
        size: int = self._get("msrp.max_message_size") if self._get is not None \
            else DEFAULT_MAX_MESSAGE_SIZE
        return size

    def state(self) -> dict[str, Any]:
        if self._endpoint is None:
            return {"available": False, "problem": self.problem}
        fingerprint = self._endpoint.fingerprint
        listener = self._endpoint.listener
        return {"available": True, "address": self._host, "port": self._endpoint.port,
                "transport": self._endpoint.settings.transport,
                "fingerprint": str(fingerprint) if fingerprint else None,
                "refused": listener.refused, "displaced": listener.displaced}
