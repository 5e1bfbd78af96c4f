"""What the stack hands the UA above it: an incoming request to answer, a client transaction
to follow, and the errors of sending."""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Protocol

import trio

from ..message import Request, Response
from ..transaction import ClientTransaction, ServerTransaction
from .stream import Connection
from .transport import Source, TransportError

log = logging.getLogger(__name__)


class TransactionTimeout(Exception):
    """No final response came within 64*T1 (timer B or F, RFC 3261 §17.1)."""


@dataclass(frozen=True, eq=False)
class Hop:
    """The destination of a client transaction: the target and the connection used."""

    transport: str
    host: str
    address: str
    port: int
    connection: Connection | None = None

    def __repr__(self) -> str:
        return f"<Hop {self.transport} {self.address}:{self.port} ({self.host})>"


ProvisionalCallback = Callable[[Response], "Awaitable[None] | None"]


class ClientTransactionHandle:
    """A request in flight: its responses in order (`async for response in handle`), or
    `await handle.final_response()`. The iteration ends when the transaction ends and then
    raises TransactionTimeout / TransportError if that is how it ended without a final
    response. An INVITE's transaction stays for 64*T1 after a 2xx to pass on the 2xx of other
    branches (RFC 6026); `final_response()` returns the first final response."""

    def __init__(self, request: Request, target: Any, hop: Hop) -> None:
        self.request = request
        self.target = target
        self.hop = hop
        self.transaction: ClientTransaction | None = None
        self.final: Response | None = None
        self.error: Exception | None = None
        self._send, self._receive = trio.open_memory_channel[Response](math.inf)
        self._listener: Callable[[Response], None] | None = None

    def __repr__(self) -> str:
        return f"<ClientTransactionHandle {self.request.method} to {self.hop!r}>"

    # -- the stack feeds it ------------------------------------------------------------------
    def _deliver(self, response: Response) -> None:
        if not response.is_provisional and self.final is None:
            self.final = response
        listener = self._listener
        if listener is not None:
            try:
                listener(response)
            except Exception:  # noqa: BLE001 - the UA's bug must not stop the stack
                log.exception("%r: the response listener failed on %d", self, response.status)
            return
        try:
            self._send.send_nowait(response)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # nobody listens any more

    def _fail(self, error: Exception) -> None:
        if self.final is None and self.error is None:
            self.error = error
        self._send.close()

    def _end(self) -> None:
        self._send.close()

    # -- the UA reads it ---------------------------------------------------------------------
    def listen(self, listener: Callable[[Response], None]) -> None:
        """Each response goes to `listener(response)` as it comes, from the stack's task: no
        trip through the scheduler before the UA acts on it (a call's 200 passed on to the
        other leg). Iterating the handle then yields nothing and only says how the
        transaction ended (TransactionTimeout / TransportError). `close()` stops it."""
        while True:  # none should be queued yet; if one is, it goes first
            try:
                queued = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            listener(queued)
        self._listener = listener

    def stop(self) -> None:
        """Stops listening and ends the iteration now (the transaction runs to its end)."""
        self._listener = None
        self._send.close()

    async def __aiter__(self) -> AsyncIterator[Response]:
        async for response in self._receive:
            yield response
        if self.final is None:
            raise self.error or TransportError(
                f"the {self.request.method} transaction ended without a final response")

    async def final_response(self, on_provisional: ProvisionalCallback | None = None) -> Response:
        try:
            async for response in self:
                if not response.is_provisional:
                    return response
                if on_provisional is not None:
                    result = on_provisional(response)
                    if inspect.isawaitable(result):
                        await result
        finally:
            self.close()
        raise AssertionError("unreachable: the iteration raises without a final response")

    def close(self) -> None:
        """Stops listening (the transaction itself runs to its end)."""
        self._listener = None
        self._receive.close()


class Responder(Protocol):
    """What answers an IncomingRequest: the server side of the stack (stack/server.py)."""

    def respond(self, incoming: IncomingRequest, status: int, reason: str | None, *,
                headers: Iterable[tuple[str, str]], body: bytes, content_type: str | None,
                to_tag: str | None) -> Response: ...


class IncomingRequest:
    """A request that arrived, with the way to answer it.

    `transaction` is None for an ACK to a 2xx (it has no transaction and gets no answer).
    `cancelled` is set when a CANCEL for this INVITE came (the stack has answered 487).
    A handler that wants to answer after it returns calls `detach()` first; otherwise the
    stack answers what it left unanswered (500, or the default answer to OPTIONS).
    """

    def __init__(self, responder: Responder, request: Request, source: Source,
                 transaction: ServerTransaction | None) -> None:
        self._responder = responder
        self.request = request
        self.source = source
        self.transaction = transaction
        self.responses: list[Response] = []
        self.final_response: Response | None = None
        self.cancelled = trio.Event()
        self.detached = False

    def __repr__(self) -> str:
        return f"<IncomingRequest {self.request.method} from {self.source!r}>"

    @property
    def transport(self) -> str:
        return self.source.transport

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def answered(self) -> bool:
        return self.final_response is not None

    def detach(self) -> None:
        self.detached = True

    async def respond(self, status: int, reason: str | None = None, *,
                      headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                      content_type: str | None = None, to_tag: str | None = None) -> Response:
        """Sends a response (through the server transaction: it retransmits as needed)."""
        response = self.respond_nowait(status, reason, headers=headers, body=body,
                                       content_type=content_type, to_tag=to_tag)
        await trio.lowlevel.checkpoint()
        return response

    def respond_nowait(self, status: int, reason: str | None = None, *,
                       headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                       content_type: str | None = None, to_tag: str | None = None) -> Response:
        if self.transaction is None:
            raise RuntimeError(f"{self.request.method} has no transaction: it is not answered")
        if self.final_response is not None and not (
                self.request.method == "INVITE" and 200 <= status < 300
                and self.final_response.is_success):
            raise RuntimeError(f"{self.request.method} was already answered with "
                               f"{self.final_response.status}")
        response = self._responder.respond(self, status, reason, headers=headers, body=body,
                                           content_type=content_type, to_tag=to_tag)
        self.responses.append(response)
        if not response.is_provisional:
            self.final_response = response
        return response
