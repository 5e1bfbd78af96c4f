"""Event sequence numbers that keep rising across runs of the daemon.

A client resumes its event stream with the last `seq` it saw. If every run numbered from 1, a
`since` from the previous run would name some event of this one, and the client would silently
miss what happened in between. So the state directory keeps a reservation: the highest number
any run may hand out. A run starts two above the stored reservation (the number in between is
never used, so crossing a restart is always a gap, even for a client that saw the previous
run's very last event), and reserves a block ahead before it hands out numbers; numbers are
written down once per block, not per event, and a crash loses at most the unused rest of a
block. The first run of a state directory starts at 1. If the reservation cannot be saved,
numbers still rise within the run (and the run's `boot` id still tells runs apart); the log
says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .settings.atomic import write_private_file
from .settings.errors import PersistError

log = logging.getLogger(__name__)

BLOCK = 100_000
FILE_NAME = "event-seq"


class SeqReservation:
    """The reservation file: `first_seq()` once at start, then `reserve(n)` whenever the bus
    is about to hand out a number above what is reserved."""

    def __init__(self, state_dir: Path, block: int = BLOCK) -> None:
        self.path = state_dir / FILE_NAME
        self.block = block

    def first_seq(self) -> int:
        """The first number of this run; reserves the first block. The very first run of a
        state directory starts at 1, as there is nothing before it to miss."""
        stored = self._read()
        first = 1 if stored is None else stored + 2
        self._write(first - 1 + self.block)
        return first

    def reserve(self, next_seq: int) -> int:
        """Reserve a block from `next_seq` on; returns the highest number now allowed."""
        ceiling = next_seq - 1 + self.block
        self._write(ceiling)
        return ceiling

    def _read(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            log.warning("cannot read %s (%s): event numbers start again from 2, so a client "
                        "resuming from the previous run may only notice it by the boot id",
                        self.path, error)
            return 0
        if not text.isdigit():
            log.warning("%s does not hold a number: event numbers start again from 2",
                        self.path)
            return 0
        return int(text)

    def _write(self, ceiling: int) -> None:
        try:
            write_private_file(self.path, f"{ceiling}\n")
        except PersistError as error:
            log.warning("%s; event numbers of the next run may repeat this run's", error)
