"""The SIP side of the daemon, put together: the stack built from the settings, server location,
the accounts with their registrations, and where incoming requests go.

Incoming requests are routed by method to the domain part that handles them (MESSAGE to the
pager; INVITE, SUBSCRIBE, NOTIFY to sessions and presence as they arrive) and by Request-URI
to the account they address.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from .accounts.manager import UNREGISTER_WAIT, AccountManager
from .accounts.store import AccountStore
from .dialogs import DialogTable
from .files.trio.service import FilesService
from .limits import PEER
from .media.supervisor import open_media_supervisor
from .messages.content import ACCEPT as MESSAGE_CONTENT_TYPES
from .messages.pager import Pager
from .msrp.trio.service import MsrpService
from .netwatch import watch_network
from .presence.trio.service import CONTENT_TYPES as PRESENCE_CONTENT_TYPES
from .presence.trio.service import EXTENSIONS as PRESENCE_EXTENSIONS
from .presence.trio.service import PresenceService
from .sessions.manager import SessionManager, media_config
from .sessions.policy import SessionPolicy
from .settings import addresses
from .sip.timers import TimerSettings
from .sip.trio.locator import Locator
from .sip.trio.stack import SipStack, StackConfig, open_sip_stack
from .sip.trio.tls import TlsConfig
from .xcap.diffevent import CONTENT_TYPE as XCAP_DIFF_TYPE

log = logging.getLogger(__name__)

# What this daemon handles today; the stack answers 501 (with this Allow) and 415 (with this
# Accept) for the rest, before any account is looked up. Presence extends these.
# REFER and NOTIFY are taken in a call's dialog only (transfer, sipd.sessions.b2bua_transfer).
HANDLED_METHODS = ("ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS",
                   "REFER", "SUBSCRIBE")
SESSION_CONTENT_TYPES = ("application/sdp", "application/dtmf-relay", "application/dtmf",
                         "message/sipfrag")
# RFC 3891: an INVITE may Require replaces; RFC 4028: a re-INVITE may Require timer.
EXTENSIONS = ("replaces", "timer", *PRESENCE_EXTENSIONS)
ACCEPTED_TYPES = (*MESSAGE_CONTENT_TYPES, *SESSION_CONTENT_TYPES, *PRESENCE_CONTENT_TYPES,
                  XCAP_DIFF_TYPE)  # the NOTIFYs of sipd.contacts' xcap-diff subscriptions


def stack_config(settings: Any) -> StackConfig:
    get = settings.get
    certificate = get("tls.certificate") or None
    return StackConfig(
        listen_address=get("sip.listen_address"),
        udp_port=get("sip.local_udp_port"), tcp_port=get("sip.local_tcp_port"),
        tls_port=get("sip.local_tls_port"),
        transports=tuple(get("sip.transport_list")),
        max_message_bytes=get("sip.max_message_bytes"),
        max_connections=get("sip.max_connections"),
        max_connections_per_address=get("sip.max_connections_per_address"),
        message_timeout=float(get("sip.message_timeout")),
        udp_receive_buffer=get("sip.udp_receive_buffer"),
        supported_methods=HANDLED_METHODS, accepted_types=ACCEPTED_TYPES,
        supported_extensions=EXTENSIONS,
        timers=TimerSettings(t1=get("sip.t1") / 1000, t2=max(4.0, get("sip.t1") / 1000)),
        tls=TlsConfig(ca_file=get("tls.ca_list") or None,
                      cert_file=Path(certificate) if certificate else None,
                      verify_server=get("tls.verify_server"),
                      verify_client=get("tls.verify_client")),
    )


def nameservers(settings: Any) -> list[tuple[str, int]] | None:
    configured = settings.get("dns.nameservers")
    if not configured:
        return None
    servers = []
    for entry in configured:
        host, port = addresses.parse_host_port(entry)
        servers.append((host, port or 53))
    return servers


@dataclass
class UserAgent:
    stack: SipStack
    locator: Locator
    accounts: AccountManager
    pager: Pager
    sessions: SessionManager
    dialogs: DialogTable
    presence: PresenceService
    msrp: MsrpService

    def state(self) -> dict[str, Any]:
        return {"ports": self.stack.ports, "listen_address": self.stack.config.listen_address,
                **self.stack.transports.state()}

    def on_stray_response(self, response: Any, source: Any) -> None:
        """A response no transaction took: to the dialog its From tag names, if any."""
        from_ = response.from_
        owner = self.dialogs.response_owner(response.call_id,
                                            from_.tag if from_ is not None else None)
        if owner is not None:
            owner.on_stray_response(response)

    async def on_request(self, incoming: Any) -> None:
        method = incoming.method
        if method == "OPTIONS":
            return  # the stack answers OPTIONS (Allow, Accept...)
        request = incoming.request
        to_tag = request.to.tag if request.to is not None else None
        # Pager mode is taken in a call's dialog too (RFC 3428 §4): MESSAGE goes to the pager.
        if to_tag and method != "MESSAGE":
            owner = self.dialogs.request_owner(request.call_id, to_tag)
            if owner is not None:
                owner.on_request(incoming)
            elif method != "ACK":  # an ACK is never answered
                await incoming.respond(481)  # RFC 3261 §12.2.2
            return
        # The media workers' INVITEs on the internal leg, dialog requests without a dialog.
        if await self.sessions.on_request(incoming):
            return
        if method == "ACK":
            return  # an ACK is never answered
        account = self.accounts.account_for(incoming.request.uri)
        if account is None:  # the stack's is_local_uri check makes this rare (a race)
            await incoming.respond(404)
        elif method == "MESSAGE":
            await self.pager.on_message(incoming, account)
        elif method == "INVITE":
            await self.sessions.on_invite(incoming, account)
        elif method == "SUBSCRIBE":
            await self.presence.on_subscribe(incoming, account)
        else:
            await incoming.respond(501)


# Seconds the SIP side of a stop may take in all: the calls hang up, presence ends, then the
# unregistrations get what is left, at least UNREGISTER_WAIT. Below the service manager's stop
# timeout (TimeoutStopSec=15 in systemd/sipd.service) with room for the rest of the exit.
STOP_BUDGET = 11.0


def unregister_budget(stopping_since: float | None) -> float:
    """Seconds left for the unregistrations of a stop that began at `stopping_since`."""
    if stopping_since is None:  # the stack failed before the user agent was up
        return UNREGISTER_WAIT
    return max(UNREGISTER_WAIT, STOP_BUDGET - (trio.current_time() - stopping_since))


@asynccontextmanager
async def open_user_agent(service: Any) -> AsyncIterator[UserAgent]:
    budget = service.descriptors
    async with open_sip_stack(stack_config(service.settings),
                              may_accept=lambda: budget.may_accept(PEER)) as stack:
        # Locate only servers we can reach: a TCP-only daemon must not pick a UDP target.
        locator = Locator(nameservers(service.settings),
                          supported=tuple(t for t in ("tls", "tcp", "udp")
                                          if t in stack.config.transports))
        media_address = service.settings.get("rtp.media_address") or stack.local_address()
        stopping_since: float | None = None
        async with trio.open_nursery() as nursery:
            accounts = AccountManager(service.bus, AccountStore(service.settings), stack,
                                      locator, nursery)
            dialogs = DialogTable()
            sessions = SessionManager(service.bus, stack, locator, accounts, nursery,
                                      media_address=media_address, dialogs=dialogs,
                                      policy=SessionPolicy(service.settings.get))
            presence = PresenceService(service.bus, service.settings, stack, locator, accounts,
                                       dialogs, nursery)
            agent = UserAgent(stack, locator, accounts, Pager(service.bus, stack, locator,
                                                              accounts), sessions, dialogs,
                              presence, MsrpService.unstarted())
            msrp = MsrpService(service.settings.get, host=media_address,
                               state_dir=service.paths.state_dir,
                               may_accept=lambda: budget.may_accept(PEER),
                               nameservers=nameservers(service.settings))
            await msrp.start(nursery)
            service.add_state("msrp", msrp.state)
            agent.msrp = msrp
            sessions.context.resources["msrp"] = msrp  # for the MSRP stream kinds
            files = FilesService(service.settings.get, service.paths.state_dir,
                                 contacts=lambda: service.contacts)
            await files.start()
            sessions.context.resources["files"] = files  # for file transfer streams
            stack.set_local_uri_check(
                lambda uri: sessions.is_internal_uri(uri) or accounts.is_local_uri(uri))
            stack.set_request_handler(agent.on_request)
            stack.set_stray_response_handler(agent.on_stray_response)
            service.add_state("sessions", sessions.list)
            service.add_state("media", sessions.media_state)
            service.add_state("presence", presence.state)
            accounts.start_all()
            presence.start(service.bus, accounts.store.list())
            nursery.start_soon(agent.pager.expire_composing)
            # A network that changed or came back: register again now, not at the refresh;
            # subscriptions refresh with the new contact.
            def network_changed(_why: str) -> None:
                accounts.network_changed()
                nursery.start_soon(presence.network_changed)

            nursery.start_soon(watch_network, network_changed)
            try:
                try:
                    media_settings = media_config(service.settings, media_address)
                    supervisor: Any = open_media_supervisor(
                        media_settings, on_event=sessions.on_media_event,
                        on_worker_state=sessions.on_worker_state)
                except ValueError as exc:  # the daemon still serves messages and accounts
                    log.error("calls are not possible: %s", exc)
                    sessions.media_problem = str(exc)
                    supervisor = nullcontext()
                # Workers start on demand; leaving stops them (after the calls hung up).
                async with supervisor as media:
                    sessions.media = media
                    try:
                        yield agent
                    finally:
                        stopping_since = trio.current_time()
                        with trio.CancelScope(shield=True):
                            await sessions.stop_all()
                            await presence.stop_all()
            finally:
                with trio.CancelScope(shield=True):
                    await accounts.stop_all(unregister_budget(stopping_since))
                nursery.cancel_scope.cancel()
