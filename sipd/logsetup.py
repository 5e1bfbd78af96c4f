"""Logging for a service: one line per event, journald-friendly, secrets redacted.

Under systemd (JOURNAL_STREAM set) lines carry a `<N>` syslog priority prefix and no time stamp,
since the journal adds both; in a terminal they carry a time stamp and the level name.
"""

from __future__ import annotations

import logging
import os
import sys

_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                    logging.CRITICAL: 2}


class _Redactor(logging.Filter):
    """Replaces every registered secret (tokens, passwords) by *** in the final message."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                if secret in message:
                    message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{record.name}: {super().format(record)}".replace("\n", " | ")


_redactor = _Redactor()


def redact(secret: str) -> None:
    """Never let this value appear in a log line."""
    if secret and len(secret) >= 4:
        _redactor.secrets.add(secret)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_redactor)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(level)
    # Libraries chatter at debug about every frame; keep them at warning unless asked.
    for noisy in ("trio-websocket", "jsonrpcserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())
