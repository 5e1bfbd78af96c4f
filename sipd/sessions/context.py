"""What a session may use of the daemon (docs/design.md, "Sessions and streams"): the SIP
stack and its timers, the locator, the event bus, our addresses, the media workers, the
stream kinds, the dialog table, and a way to start another session (a transfer's). The
session manager builds one SessionContext and hands it to every session; a session never
sees the manager.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sipd.accounts.model import AccountConfig
from sipd.media.supervisor import MediaUnavailable
from sipd.sip.header_values import Address
from sipd.sip.trio.locator import Target
from sipd.sip.uri import SipUri, Uri

from .policy import SessionPolicy
from .streams import StreamRegistry

Publish = Callable[[str, dict[str, Any]], None]


class Addresses:
    """Our SIP addresses: toward the remote parties (From, Contact) and toward the media
    workers (the internal URI, a random user part per daemon run)."""

    def __init__(self, stack: Any, media_address: str) -> None:
        self.stack = stack
        self.media_address = media_address  # the address in our SDP toward the outside
        self.token = "sipd-" + secrets.token_hex(8)  # the user part of our internal URI

    @property
    def internal_transport(self) -> str:
        """How we talk SIP with the workers: TCP when we listen on it (docs/design.md)."""
        return "tcp" if "tcp" in self.stack.ports else "udp"

    def internal_uri(self, transport: str) -> SipUri:
        host, port = self.stack.local_contact(transport, _Loopback(transport), learned=False)
        uri = SipUri(host or "127.0.0.1", user=self.token, port=port)
        if transport != "udp":
            uri.params.set("transport", transport)
        return uri

    def internal_contact(self, transport: str) -> Address:
        return Address(self.internal_uri(transport))

    def is_internal_uri(self, uri: Uri) -> bool:
        return isinstance(uri, SipUri) and uri.user == self.token

    def sender(self, account: AccountConfig, target: Target) -> Address:
        """Our From: the account's AOR; for the local account our own address, so that the
        remote party can call back."""
        uri = account.aor_uri
        if account.is_local:
            host, port = self.stack.local_contact(target.transport, target, learned=False)
            uri = SipUri(host, user=uri.user, port=port)
            if target.transport != "udp":
                uri.params.set("transport", target.transport)
        return Address(uri, account.display_name or None)

    def contact(self, account: AccountConfig, transport: str, toward: Any) -> Address:
        """Our Contact toward the remote party: the user part is the account id (how requests
        in the dialog find the account, like the contact we register)."""
        host, port = self.stack.local_contact(transport, toward)
        uri = SipUri(host, user=account.id, port=port)
        if transport != "udp":
            uri.params.set("transport", transport)
        return Address(uri)


class _Loopback:
    """The target the workers are, for the stack's choice of a local address."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.host = self.address = "127.0.0.1"
        self.port = 0


class MediaWorkers:
    """The media supervisor as sessions see it; it may start late, or not at all."""

    def __init__(self) -> None:
        self.supervisor: Any = None  # sipd.media.supervisor.MediaSupervisor, once it runs
        self.problem = "it has not started yet"  # why there is none

    def _running(self) -> Any:
        if self.supervisor is None:
            raise MediaUnavailable(f"the media engine is not running: {self.problem}")
        return self.supervisor

    async def allocate(self, session_id: str) -> Any:
        return await self._running().allocate(session_id)

    def release(self, session_id: str) -> None:
        if self.supervisor is not None:
            self.supervisor.release(session_id)

    async def request(self, session_id: str, cmd: str, /, **fields: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self._running().request(session_id, cmd, **fields)
        return reply

    def audio_codecs(self) -> tuple[str, ...]:
        """The codec names the workers are configured with (none known: no check)."""
        if self.supervisor is None:
            return ()
        return tuple(self.supervisor.config.media.audio_codecs)


class StartSession(Protocol):
    async def __call__(self, account: AccountConfig, to: str, streams: list[str], *,
                       extra_headers: Any = (), extra: dict[str, Any] | None = None,
                       watch: Callable[[dict[str, Any]], None] | None = None
                       ) -> dict[str, Any]: ...


@dataclass
class SessionContext:
    stack: Any                   # sipd.sip.trio.stack.SipStack
    timers: Any                  # its SIP timers
    locator: Any                 # sipd.sip.trio.locator.Locator (RFC 3263)
    linger: float                # how long an ended session stays for retransmissions
    publish: Publish             # session.* events (and their watchers)
    spawn: Callable[..., None]   # a task that outlives its session (a transfer's)
    addresses: Addresses
    media: MediaWorkers
    streams: StreamRegistry
    register_dialog: Callable[[str, str, Any], None]  # (Call-ID, local tag) -> leg
    forget: Callable[[Any], None]                       # the session is over
    start_session: StartSession  # another session (the call a REFER asks for)
    # What stream kinds need of the daemon, by name (StreamContext.resources): the user agent
    # puts its MSRP endpoint here for the MSRP kinds.
    resources: dict[str, Any] = field(default_factory=dict)
    # The settings sessions follow (ring limits, session timers), read when used.
    policy: SessionPolicy = field(default_factory=SessionPolicy)
