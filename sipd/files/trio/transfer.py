"""One file over a running MSRP connection, either way: the sending loop (a range of a local
file as one message, asking for a success report) and the receiving loop (chunks into a
FileReceiver, refused with a failure report on a full disk, confirmed once verified). Both
report progress at a bounded rate (sipd.files.progress) and return how the transfer went; a
receiver saves its part's record with each report (a resume after a crash starts there).

    outcome = await send_file(connection, source, content_type, on_progress)
    outcome = await receive_file(connection, receiver, on_progress, on_kept=store.put)

A peer that answers every chunk 200 itself (no relay between) but never sends the success
report asked for (it ignores Success-Report) has the file: the transfer is "completed" once
it hangs up or the report's wait (MsrpSession.report_timeout) is over, rather than failed
for want of the report.

`Outcome.result` is "completed", "failed" (reason: the peer's failure report, a hash
mismatch, a full disk) or "cut" (the connection ended first: `reason` says why). A cut
receiver keeps its part for a resume (its record goes to `on_kept`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from ...msrp.events import (
    ChunkReceived,
    MessageAborted,
    MessageAnswered,
    MessageDelivered,
    MessageFailed,
)
from ...msrp.trio.connection import ConnectionClosed, MsrpConnection
from ..progress import Progress, ProgressMeter
from ..receiving import TransferRefused
from ..resume import PartRecord
from .receiver import FileReceiver, TransferFailed
from .sender import FileRangeSource

log = logging.getLogger(__name__)

BIND_WAIT = 10.0  # seconds a sender waits for its session to be bound before it sends anyway
UNCONFIRMED = "completed"  # the reason of a file taken whole by a peer that sent no report
TICK = 0.25  # seconds between looks at a sender's progress (4 reports a second at most)

OnProgress = Callable[[Progress], None]


@dataclass
class Outcome:
    result: str  # completed | failed | cut
    reason: str
    transferred: int
    path: str | None = None


async def send_file(connection: MsrpConnection, source: FileRangeSource, content_type: str,
                    on_progress: OnProgress, *, size: int, direct: bool = True,
                    on_answered: Callable[[], None] | None = None) -> Outcome:
    """Sends `source` as one message and waits for its fate (the success report).
    `direct`: no relay on the path, so the 200 responses are the peer's own (a relay's are
    hop by hop, RFC 4976: there only a report says the peer has the file); then
    `on_answered` is called once every chunk was answered 200 (the peer has the file)."""
    start = size - source.size  # octets the receiver holds already (a resume)
    # The file waits for the session to be bound (the empty SEND answered): a relay that is
    # still connecting to the peer would otherwise see a burst of chunks it cannot forward
    # (Kamailio's opens a connection per frame then, and drops them).
    with trio.move_on_after(BIND_WAIT):
        while not connection.session.bound:
            event = await connection.events.receive()
            if isinstance(event, ConnectionClosed):
                return Outcome("cut", event.reason, start)
    meter = ProgressMeter(size, trio.current_time(), start=start)
    message_id = connection.send_message(source, content_type, success_report=True)
    async with trio.open_nursery() as nursery:
        async def tick() -> None:
            while True:
                await trio.sleep(TICK)
                report = meter.update(start + source.sent, trio.current_time())
                if report is not None:
                    on_progress(report)

        nursery.start_soon(tick)
        outcome = Outcome("cut", "the MSRP connection ended", start + source.sent)
        answered = False  # every chunk answered 200: the peer took the whole file
        async for event in connection.events:
            if isinstance(event, MessageAnswered) and event.message_id == message_id:
                answered = direct and source.changed is None
                if answered and on_answered is not None:
                    on_answered()
                continue
            if answered and isinstance(event, MessageFailed) \
                    and event.message_id == message_id and event.code == 408:
                break  # silent past the report's wait (below)
            if isinstance(event, MessageDelivered) and event.message_id == message_id:
                if source.changed is not None:
                    outcome = Outcome("failed", source.changed, start + source.sent)
                else:
                    outcome = Outcome("completed", "completed", size)
                break
            if isinstance(event, MessageFailed) and event.message_id == message_id:
                why = event.reason or "refused"
                code = f"{event.code} " if event.code is not None else ""
                outcome = Outcome("failed" if event.code is not None else "cut",
                                  f"the receiver refused the file: {code}{why}"
                                  if event.code is not None else why, start + source.sent)
                break
            if isinstance(event, ConnectionClosed):
                outcome = Outcome("cut", event.reason, start + source.sent)
                break
        nursery.cancel_scope.cancel()
    if answered and outcome.result == "cut":
        # A peer that sends no success report (RFC 4975 §7.1.2 says it must; some do not):
        # every chunk was taken, and it hung up or stayed silent past the report's wait.
        # The file is its; only its own check of it is unknown.
        log.info("the file was taken whole but no success report came (%s)", outcome.reason)
        outcome = Outcome("completed", UNCONFIRMED, size)
    on_progress(meter.finish(outcome.transferred, trio.current_time()))
    return outcome


async def receive_file(connection: MsrpConnection, receiver: FileReceiver,
                       on_progress: OnProgress, *,
                       on_kept: Callable[[PartRecord], Awaitable[None]] | None = None,
                       on_verified: Callable[[], None] | None = None) -> Outcome:
    """Writes the incoming message into `receiver` until the file is whole and verified (its
    success report goes then, just after `on_verified`: the sender may hang up as soon as it
    has it), refused, or the connection ends."""
    held = receiver.transferred
    meter = ProgressMeter(receiver.incoming.size, trio.current_time(), start=held)
    outcome: Outcome | None = None
    async for event in connection.events:
        if isinstance(event, ChunkReceived):
            try:
                await receiver.write(event.start, event.data, event.total)
                if receiver.complete:
                    path = await receiver.finish()
                    if on_verified is not None:
                        on_verified()
                    connection.confirm_incoming(event.message_id)
                    outcome = Outcome("completed", "completed", receiver.transferred, path)
                    break
            except TransferRefused as refused:
                connection.refuse_incoming(event.message_id, refused.status, refused.reason)
                outcome = Outcome("failed", refused.reason, receiver.transferred)
                break
            except TransferFailed as failed:
                connection.refuse_incoming(event.message_id, 400, failed.reason)
                outcome = Outcome("failed", failed.reason, receiver.transferred)
                break
            now = trio.current_time()
            meter.size = receiver.incoming.size  # a file offered without one: once a chunk says
            report = meter.update(receiver.transferred, now)
            if report is not None:
                on_progress(report)
                if on_kept is not None:  # what a resume after a crash starts from
                    await on_kept(receiver.record())
        elif isinstance(event, MessageAborted):
            outcome = Outcome("cut", f"cancelled by the sender ({event.reason})",
                              receiver.transferred)
            break
        elif isinstance(event, ConnectionClosed):
            outcome = Outcome("cut", event.reason, receiver.transferred)
            break
    if outcome is None:
        outcome = Outcome("cut", "the MSRP connection ended", receiver.transferred)
    if outcome.result == "cut":
        record = await receiver.abort(keep=True)
        if record is not None and on_kept is not None:
            await on_kept(record)
    meter.size = receiver.incoming.size
    on_progress(meter.finish(outcome.transferred, trio.current_time()))
    return outcome
