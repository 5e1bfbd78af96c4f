"""The server side of a SipStack (sipd.sip.trio.stack): what happens to a new request after
the transaction layer has it. Rejects what a UAS cannot take (`validate_request_for_uas`),
answers 404 for users that are not ours, answers OPTIONS and CANCEL itself, runs the UA's
handler in a task of its own and answers 500 when it fails or leaves the request unanswered."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable

import trio

from ..builder import build_response
from ..message import Request, Response
from ..transaction import CancelReceived, Event, ServerTransaction
from ..transaction_layer import TransactionLayer
from ..uri import SipUri, Uri
from ..validation import validate_request_for_uas
from .config import StackConfig
from .handles import IncomingRequest
from .transport import Source

log = logging.getLogger("sipd.sip.trio.stack")  # one logger for the whole stack

RequestHandler = Callable[[IncomingRequest], Awaitable[None]]
Spawn = Callable[..., None]  # start_soon(async_fn, *args) in the stack's nursery


class ServerTransactions:
    """Takes new requests to the UA's handler and answers them through their transactions
    (the `Responder` of every IncomingRequest); `dispatch(events)` is the stack's way of
    acting on what the transaction layer returns."""

    def __init__(self, config: StackConfig, layer: TransactionLayer,
                 dispatch: Callable[[list[Event]], None], spawn: Spawn) -> None:
        self.config = config
        self.layer = layer
        self._dispatch = dispatch
        self._spawn = spawn
        self._request_handler: RequestHandler | None = None
        self._is_local_uri: Callable[[Uri], bool] | None = None
        self._incoming: dict[ServerTransaction, IncomingRequest] = {}

    def set_request_handler(self, handler: RequestHandler | None) -> None:
        self._request_handler = handler

    def set_local_uri_check(self, is_local_uri: Callable[[Uri], bool] | None) -> None:
        self._is_local_uri = is_local_uri

    # -- what the transaction layer reports --------------------------------------------------
    def ack_received(self, request: Request, source: Source) -> None:
        """An ACK to a 2xx: no transaction, no answer; the handler sees it."""
        self._spawn_handler(IncomingRequest(self, request, source, None))

    def terminated(self, transaction: Any) -> None:
        self._incoming.pop(transaction, None)

    def new_request(self, transaction: ServerTransaction, request: Request,
                    source: Source) -> None:
        incoming = IncomingRequest(self, request, source, transaction)
        self._incoming[transaction] = incoming
        config = self.config
        rejection = validate_request_for_uas(
            request, supported_methods=config.supported_methods,
            supported_extensions=config.supported_extensions,
            accepted_types=config.accepted_types)
        if rejection is not None:
            log.debug("rejecting %r: %d %s", incoming, rejection.status, rejection.reason)
            incoming.respond_nowait(rejection.status, rejection.reason, headers=rejection.headers)
            return
        if not self._addressed_to_us(request):
            incoming.respond_nowait(404, "Not Found")
            return
        if self._request_handler is None:
            if request.method == "OPTIONS":
                self._answer_options(incoming)
            else:
                incoming.respond_nowait(480, "No Handler")
            return
        self._spawn_handler(incoming)

    def _addressed_to_us(self, request: Request) -> bool:
        if self._is_local_uri is None:
            return True
        uri = request.uri
        if request.method == "OPTIONS" and isinstance(uri, SipUri) and uri.user is None:
            return True  # to the UA itself (a keep-alive, a capability query)
        try:
            return bool(self._is_local_uri(uri))
        except Exception:  # noqa: BLE001
            log.exception("is_local_uri failed for %s", uri)
            return True

    def _answer_options(self, incoming: IncomingRequest) -> None:
        config = self.config
        headers = [("Allow", ", ".join(sorted(config.supported_methods))),
                   ("Accept", ", ".join(config.accepted_types)),
                   ("Accept-Encoding", "identity"),
                   ("Supported", ", ".join(config.supported_extensions))]
        incoming.respond_nowait(200, "OK", headers=headers)

    def _spawn_handler(self, incoming: IncomingRequest) -> None:
        if self._request_handler is None:
            log.debug("no handler for %r", incoming)
            return
        self._spawn(self._run_handler, self._request_handler, incoming)

    async def _run_handler(self, handler: RequestHandler, incoming: IncomingRequest) -> None:
        try:
            await handler(incoming)
        except Exception:  # noqa: BLE001 - answered 500, logged, the stack goes on
            log.exception("request handler failed on %r", incoming)
            self._answer_leftover(incoming, 500, "Server Internal Error")
            return
        if incoming.transaction is None or incoming.answered or incoming.detached:
            return
        if incoming.method == "OPTIONS":
            self._answer_options(incoming)
        else:
            log.warning("request handler left %r unanswered: 500", incoming)
            self._answer_leftover(incoming, 500, "Request Not Handled")

    def _answer_leftover(self, incoming: IncomingRequest, status: int, reason: str) -> None:
        if incoming.transaction is None or incoming.answered:
            return
        try:
            incoming.respond_nowait(status, reason)
        except Exception:  # noqa: BLE001 - the transaction may have ended meanwhile
            log.debug("could not answer %r with %d", incoming, status, exc_info=True)

    def cancel_received(self, event: CancelReceived) -> None:
        invite = event.invite_transaction
        cancel = IncomingRequest(self, event.request, event.source, event.transaction)
        if invite is None:
            cancel.respond_nowait(481, "Call/Transaction Does Not Exist")
            return
        cancel.respond_nowait(200, "OK", to_tag=invite.to_tag)
        incoming = self._incoming.get(invite)
        if incoming is not None and not incoming.answered:
            incoming.respond_nowait(487, "Request Terminated")
            incoming.cancelled.set()

    def respond(self, incoming: IncomingRequest, status: int, reason: str | None, *,
                headers: Iterable[tuple[str, str]], body: bytes, content_type: str | None,
                to_tag: str | None) -> Response:
        """Answers `incoming` through its server transaction (IncomingRequest.respond)."""
        transaction = incoming.transaction
        assert transaction is not None
        response = build_response(incoming.request, status, reason,
                                  to_tag=to_tag or transaction.to_tag, headers=headers,
                                  body=body, content_type=content_type)
        if "Server" not in response.headers and self.config.user_agent:
            response.headers.add("Server", self.config.user_agent)
        self._dispatch(self.layer.send_response(transaction, response, trio.current_time()))
        return response
