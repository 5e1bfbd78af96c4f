"""Pager-mode messaging (RFC 3428): MESSAGE out and in, with is-composing (RFC 3994).

Out: `send` builds the MESSAGE for an account, sends it through the account's next hop with
failover and digest, and reports the final status (also as `message.delivery`). In: a MESSAGE
for one of our accounts becomes `message.received` (or `message.composing` for an
is-composing indication) and is answered 200 once the event is kept (the history stored it);
what we cannot take gets 415 or 400. `message.sending` precedes the MESSAGE we send.
"""

from __future__ import annotations

import datetime
import logging
import math
import uuid
from typing import Any

import trio

from sipd.accounts.model import AccountConfig
from sipd.accounts.outbound import DeliveryError, proxy_route, send_with_failover
from sipd.sip.builder import build_request, warning_value
from sipd.sip.errors import SipParseError
from sipd.sip.header_values import Address, parse_address
from sipd.sip.uri import SipUri, target_uri

from .content import (
    Composing,
    ContentRejected,
    OutgoingContentError,
    UnsupportedContent,
    interpret_message,
    outgoing_body,
)
from .iscomposing import ISCOMPOSING_CONTENT_TYPE, ComposingReceiver, IsComposing

log = logging.getLogger(__name__)


class PagerError(ValueError):
    """The message cannot be built (bad recipient, bad content); `field` names the param."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def recipient_uri(to: str) -> SipUri:
    try:
        return target_uri(to)
    except ValueError as exc:
        raise PagerError("to", str(exc)) from None


class Pager:
    def __init__(self, bus: Any, stack: Any, locator: Any, accounts: Any) -> None:
        self.bus = bus
        self.stack = stack
        self.locator = locator
        self.accounts = accounts
        # what each peer is doing, per (account, from, to); expire_composing lapses it
        self._composing: dict[tuple[str, str, str], ComposingReceiver] = {}
        self._composing_changed = trio.Event()

    # -- out ------------------------------------------------------------------------------

    async def send(self, account: AccountConfig, to: str, content: str,
                   content_type: str = "text/plain", cpim: bool = False) -> dict[str, Any]:
        recipient = recipient_uri(to)
        sender = self._sender(account, recipient)
        try:
            body_type, body = outgoing_body(
                content, content_type, cpim=cpim, sender=str(sender.uri),
                recipient=str(recipient), now=datetime.datetime.now(datetime.UTC))
        except OutgoingContentError as exc:
            raise PagerError("content", str(exc)) from None
        message_id = uuid.uuid4().hex
        # what is being sent, before it goes (the history files it, then its outcome)
        self.bus.publish("message.sending", {"id": message_id, "account": account.id,
                                             "to": str(recipient), "content": content,
                                             "content_type": content_type})
        result = await self._deliver(account, recipient, sender, body_type, body, message_id)
        self.bus.publish("message.delivery", {"account": account.id, "to": str(recipient),
                                              **result})
        return result

    async def send_composing(self, account: AccountConfig, to: str,
                             active: bool) -> dict[str, Any]:
        recipient = recipient_uri(to)
        indication = IsComposing("active" if active else "idle",
                                 content_type="text/plain", refresh=60 if active else None)
        return await self._deliver(account, recipient, self._sender(account, recipient),
                                   ISCOMPOSING_CONTENT_TYPE, indication.encode())

    async def _deliver(self, account: AccountConfig, recipient: SipUri, sender: Address,
                       content_type: str, body: bytes,
                       message_id: str | None = None) -> dict[str, Any]:
        route = proxy_route(account)
        request = build_request("MESSAGE", recipient, from_=sender, to=Address(recipient),
                                routes=[route] if route else (), body=body,
                                content_type=content_type)
        message_id = message_id or uuid.uuid4().hex
        try:
            response = await send_with_failover(
                self.stack, self.locator, account, request,
                authenticator=self.accounts.authenticator(account))
        except DeliveryError as exc:
            log.info("MESSAGE from %s to %s not delivered: %s", account.id, recipient, exc)
            return {"id": message_id, "code": exc.code or 503, "reason": exc.reason,
                    "delivered": False}
        log.info("MESSAGE from %s to %s: %d %s", account.id, recipient, response.status,
                 response.reason)
        return {"id": message_id, "code": response.status, "reason": response.reason,
                "delivered": 200 <= response.status < 300}

    def _sender(self, account: AccountConfig, recipient: SipUri) -> Address:
        uri = account.aor_uri
        if account.is_local:  # "from the daemon's own address": reachable for replies
            transport = self._reply_transport(recipient)
            host, port = self.stack.local_contact(transport, None, learned=False)
            uri = SipUri(host, user=uri.user, port=port)
            if transport != "udp":
                uri.params.set("transport", transport)
        return Address(uri, account.display_name or None)

    def _reply_transport(self, recipient: SipUri) -> str:
        """The transport a reply to the local account can use: one we listen on, UDP unless
        the recipient's URI names another (a TCP-only peer may not take UDP)."""
        listening = self.stack.ports
        wanted = recipient.transport or ("tls" if recipient.secure else "udp")
        if wanted in listening:
            return wanted
        for transport in ("udp", "tcp", "tls"):
            if transport in listening:
                return transport
        return "udp"  # listening on nothing: replies cannot reach us anyway

    # -- in -------------------------------------------------------------------------------

    async def on_message(self, incoming: Any, account: AccountConfig) -> None:
        request = incoming.request
        try:
            interpreted = interpret_message(request.headers.get("Content-Type") or "",
                                            request.body)
        except ContentRejected as exc:
            # the sender's user learns why from the Warning (RFC 3261 §20.43), we from the log
            log.info("MESSAGE for %s from %s refused with %d: %s", account.id,
                     request.headers.get("From"), exc.status, exc.detail)
            headers = [("Warning", warning_value(exc.detail))]
            if isinstance(exc, UnsupportedContent):
                headers.append(("Accept", exc.accept_header))
            await incoming.respond(exc.status, exc.reason, headers=headers)
            return
        sender = _address_text(request.headers.get("From"))
        recipient = _address_text(request.headers.get("To"))
        peer = (account.id, sender, recipient)
        now = trio.current_time()
        if isinstance(interpreted, Composing):
            await incoming.respond(200)
            indication = interpreted.indication
            receiver = self._composing.setdefault(peer, ComposingReceiver())
            if receiver.indication(indication, now) is not None:
                self._publish_composing(peer, receiver.state, indication.content_type,
                                        "indication", indication.refresh)
            self._composing_changed.set()
            return
        composing = self._composing.pop(peer, None)
        event = self.bus.publish("message.received", {
            "id": uuid.uuid4().hex,
            **interpreted.event_data(account=account.id, sender=sender, recipient=recipient)})
        # The 200 says "taken": only once the history (if on) has stored the message, so a
        # daemon killed right after it keeps what the sender was told it got.
        await self.bus.kept(event)
        await incoming.respond(200)
        if composing is not None and composing.message_received(now) is not None:
            self._publish_composing(peer, "idle", composing.content_type, "message")

    async def expire_composing(self) -> None:
        """RFC 3994 §3.3: an `active` that is not refreshed in time lapses to idle."""
        while True:
            deadlines = [d for r in self._composing.values()
                         if (d := r.next_deadline()) is not None]
            with trio.move_on_at(min(deadlines, default=math.inf)):
                await self._composing_changed.wait()
            self._composing_changed = trio.Event()
            now = trio.current_time()
            for peer, receiver in list(self._composing.items()):
                if receiver.tick(now) is not None:
                    self._publish_composing(peer, "idle", receiver.content_type, "timeout")
                if receiver.state == "idle":
                    del self._composing[peer]

    def _publish_composing(self, peer: tuple[str, str, str], state: str,
                           content_type: str | None, reason: str,
                           refresh: int | None = None) -> None:
        account, sender, recipient = peer
        self.bus.publish("message.composing", {
            "account": account, "from": sender, "to": recipient, "state": state,
            "refresh": refresh, "content_type": content_type, "reason": reason})


def _address_text(value: str | None) -> str:
    """The URI of a From/To header, as text (display names are not identities)."""
    if not value:
        return ""
    try:
        return str(parse_address(value).uri)
    except SipParseError:
        return value
