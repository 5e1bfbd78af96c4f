"""What every independent user agent a test drives (baresip, linphonec; tests/peers/) has in
common: a process started and always stopped, its log, the pager-mode messages it printed, and
a way to wait for the end of its call.

A driver subclasses `UserAgentPeer`, sets MESSAGE_LINE (a pattern with the sender and the text
as its two groups) and implements `start`, `stop` and `ended_waiter`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from tests.harness.waits import wait_until

PEER_TIMEOUT = 30.0


class UserAgentPeer:
    NAME: ClassVar[str]
    MESSAGE_LINE: ClassVar[re.Pattern[str]]

    tmpdir: Path
    process: Any  # tests.peers.proc.Process once started

    def start(self) -> UserAgentPeer:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> UserAgentPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process else ""

    def messages(self) -> list[tuple[str, str]]:
        """(sender, text) of every pager-mode message received so far."""
        return self.MESSAGE_LINE.findall(self.log_text())

    def wait_message(self, timeout: float = 10.0, text: str | None = None) -> tuple[str, str]:
        """The first received message (with `text`, if given)."""
        def find() -> tuple[str, str] | None:
            for peer, body in self.messages():
                if text is None or body == text:
                    return peer, body
            return None

        return wait_until(find, timeout=timeout, what=f"{self.NAME} to receive a message",
                          on_timeout=self.log_tail)

    def ended_waiter(self, timeout: float = PEER_TIMEOUT) -> Callable[[], Awaitable[Any]]:
        """Called before a hang-up (it may mark the log): an async function that waits until
        this user agent has seen its call end."""
        raise NotImplementedError
