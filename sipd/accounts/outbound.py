"""Where an account's out-of-dialog requests go, and sending one with failover and digest.

The next hop (RFC 3261 §8.1.2, RFC 3263): the account's outbound proxy (as a loose Route),
else its configured registrar (the server that knows the account's domain, which may have no
DNS records at all), else the Request-URI located by RFC 3263. The account's transport
preference is applied where the URI does not name a transport itself.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, overload

from sipd.sip.auth import AuthFailure, Credentials, CredentialStore, DigestAuthenticator
from sipd.sip.header_values import Address
from sipd.sip.message import Request, Response
from sipd.sip.trio.handles import TransactionTimeout
from sipd.sip.trio.locator import LocationError, Locator, Target
from sipd.sip.trio.transport import TransportError
from sipd.sip.uri import SipUri, Uri

from .model import AccountConfig

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})


class DeliveryError(Exception):
    """A request could not be delivered: no server answered, or none could be located."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def with_transport(uri: SipUri, preference: str) -> SipUri:
    """The URI with the account's transport preference, unless it names one already."""
    if not preference or uri.transport or (uri.secure and preference != "tls"):
        return uri
    uri = uri.copy()
    uri.params.set("transport", preference)
    return uri


def proxy_route(account: AccountConfig) -> Address | None:
    """The Route header of the outbound proxy (loose routing), if the account has one."""
    proxy = account.outbound_proxy_uri
    if proxy is None:
        return None
    proxy = proxy.copy()
    proxy.params.set("lr")
    return Address(with_transport(proxy, account.transport))


@overload
def first_hop(account: AccountConfig, request_uri: SipUri) -> SipUri: ...
@overload
def first_hop(account: AccountConfig, request_uri: Uri) -> Uri: ...


def first_hop(account: AccountConfig, request_uri: Uri) -> Uri:
    """The URI to locate for a request from this account."""
    if account.outbound_proxy_uri is not None:
        return with_transport(account.outbound_proxy_uri, account.transport)
    if account.registrar and not account.is_local:
        return with_transport(account.registrar_uri, account.transport)
    if isinstance(request_uri, SipUri):
        return with_transport(request_uri, account.transport)
    return request_uri


def credentials_of(account: AccountConfig) -> DigestAuthenticator:
    store = CredentialStore([Credentials(account.auth_username, account.password)]
                            if account.password else [])
    return DigestAuthenticator(store)


def fresh_copy(request: Request) -> Request:
    """The request for a new transaction: without our Via (the stack adds one with a new
    branch)."""
    copy = request.copy()
    copy.headers.remove("Via")
    return copy


async def send_with_failover(stack: Any, locator: Locator, account: AccountConfig,
                             request: Request, *, max_auth_rounds: int = 2,
                             authenticator: DigestAuthenticator | None = None) -> Response:
    """Send a non-INVITE request for `account`: the located targets in order (the next one
    after a timeout, a transport error or a 5xx/408), and answer digest challenges with the
    account's credentials. With an `authenticator` kept across requests, credentials for the
    realms it answered before go with the first attempt (no challenge round trip each time).
    Returns the final response; DeliveryError when nothing answered."""
    hop = first_hop(account, request.uri)
    if not isinstance(hop, SipUri):  # e.g. tel: from an account with no proxy or registrar
        raise DeliveryError(f"cannot locate a server for {hop}: it is no SIP URI, and the "
                            "account has no outbound proxy or registrar")
    try:
        targets = await locator.locate(hop)
    except LocationError as exc:
        raise DeliveryError(f"cannot locate a server: {exc}") from None
    authenticator = authenticator or credentials_of(account)
    failures: list[str] = []
    code = 503  # RFC 3261 §8.1.3.1: a transport error counts as 503, a timeout as 408
    for target in targets:
        target = _stream_if_large(stack, target, request)
        plain = fresh_copy(request)
        attempt = plain.copy()
        authenticator.authorize_preemptively(attempt)
        preemptive = len(attempt.headers) > len(plain.headers)
        for _ in range(max_auth_rounds + 1):
            try:
                response = await stack.send_request(attempt, target)
            except (TransactionTimeout, TransportError) as exc:
                locator.mark_failed(target)
                failures.append(f"{target}: {exc or type(exc).__name__}")
                code = 408 if isinstance(exc, TransactionTimeout) else 503
                break
            if response.status in (401, 407):
                result = authenticator.authenticate(attempt, response)
                if result.failure is AuthFailure.REJECTED and preemptive:
                    # remembered credentials went stale without a stale=true: start afresh
                    authenticator.forget()
                    result = authenticator.authenticate(plain, response)
                preemptive = False
                if result.request is None:
                    if result.failure is AuthFailure.REJECTED:
                        log.info("%s: credentials refused by %s", account.id, target)
                    return response
                attempt = fresh_copy(result.request)
                continue
            if response.status in TRANSIENT_STATUSES and target is not targets[-1]:
                locator.mark_failed(target)
                failures.append(f"{target}: {response.status} {response.reason}")
                break
            locator.mark_succeeded(target)
            return response
        else:
            return response
    raise DeliveryError("no server answered: " + "; ".join(failures) if failures
                        else "no server to send to", code)


UDP_SIZE_LIMIT = 1300  # RFC 3261 §18.1.1: larger requests go over a congestion-controlled transport


def _stream_if_large(stack: Any, target: Target, request: Request) -> Target:
    """A request too large for UDP goes to the same server over TCP, when we speak TCP."""
    if (target.transport != "udp" or "tcp" not in stack.config.transports
            or len(request.to_bytes()) + 200 <= UDP_SIZE_LIMIT):  # 200: room for our Via
        return target
    return dataclasses.replace(target, transport="tcp")


__all__ = ["DeliveryError", "Target", "credentials_of", "first_hop", "fresh_copy",
           "proxy_route", "send_with_failover", "with_transport"]
