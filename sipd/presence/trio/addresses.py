"""Our own addresses in presence requests: the From and Contact of an account toward a peer.

The Contact's user part is the account id, as in the contact we register, so requests in a
dialog find their account; the local account's From is the daemon's own address, so that the
peer can reach it back (the same rule as pager mode's)."""

from __future__ import annotations

from typing import Any

from sipd.accounts.model import AccountConfig
from sipd.accounts.outbound import first_hop
from sipd.sip.header_values import Address
from sipd.sip.trio.locator import LocationError, Locator
from sipd.sip.uri import SipUri

__all__ = ["OurAddresses"]


class OurAddresses:
    def __init__(self, stack: Any, locator: Locator) -> None:
        self.stack = stack
        self.locator = locator

    async def toward(self, account: AccountConfig, uri: SipUri) -> tuple[Any, str]:
        """The first place a request from `account` to `uri` goes, and its transport."""
        try:
            targets = await self.locator.locate(first_hop(account, uri))
        except (LocationError, ValueError):
            targets = []
        toward = targets[0] if targets else None
        return toward, toward.transport if toward is not None else (uri.transport or "udp")

    async def identity(self, account: AccountConfig, uri: SipUri) -> tuple[Address, Address]:
        """Our From and Contact for a request from `account` toward `uri`."""
        toward, transport = await self.toward(account, uri)
        contact = self.contact(account, toward, transport)
        from_uri = account.aor_uri
        if account.is_local:  # the daemon's own address: reachable for replies
            from_uri = SipUri(contact.uri.host, user=from_uri.user,  # type: ignore[union-attr]
                              port=contact.uri.port)  # type: ignore[union-attr]
            if transport != "udp":
                from_uri.params.set("transport", transport)
        return Address(from_uri, account.display_name or None), contact

    def contact(self, account: AccountConfig, toward: Any, transport: str | None = None
                 ) -> Address:
        """Our Contact toward a peer: the user part is the account id, as in the contact we
        register, so requests in the dialog find the account."""
        transport = (transport or getattr(toward, "transport", None) or "udp").lower()
        host, port = self.stack.local_contact(transport, toward)
        uri = SipUri(host, user=account.id, port=port)
        if transport != "udp":
            uri.params.set("transport", transport)
        return Address(uri)
