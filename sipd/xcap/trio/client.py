"""One XCAP server (one XCAP root): GET, PUT and DELETE of documents, elements and attributes
over one httpx.AsyncClient, with conditional writes, retries and errors a user can act on.

    async with XcapClient("https://xcap.example.com/xcap-root", username="alice",
                          password="secret") as client:
        doc = await client.get(uri)                       # XcapResponse(etag, content_type...)
        same = await client.get(uri, etag=doc.etag)       # NOT_MODIFIED (304)
        etag = await client.put(uri, body, content_type, if_match=doc.etag)
        await client.delete(uri, if_match=etag)
        caps = await client.caps()                        # XcapCaps, or None if not offered

httpx runs on trio (httpcore's trio backend, chosen by sniffio). TLS is verified unless
`verify` says otherwise (False, or the path of a CA file). `local_port` (xcap.local_port):
connections leave from that port, one at a time (sipd/xcap/trio/transport.py). Connection
errors, timeouts and 5xx answers (but 501) are retried with exponential backoff; what still
fails is XcapUnavailableError. 404 is XcapNotFoundError, 412 XcapPreconditionFailed, 409
XcapConflictError with the server's xcap-error document, any other error XcapHTTPError.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import httpx
import trio

from sipd.xcap.caps import XcapCaps, parse_caps
from sipd.xcap.errors import (
    XcapConflictError,
    XcapDocumentError,
    XcapHTTPError,
    XcapNotFoundError,
    XcapPreconditionFailed,
    XcapUnavailableError,
)
from sipd.xcap.trio.auth import ChallengeAuth
from sipd.xcap.trio.transport import bound_transport
from sipd.xcap.uri import XcapUri, normalize_root
from sipd.xcap.usages import MIME_ERROR, XCAP_CAPS
from sipd.xcap.xcaperror import XcapErrorDocument, parse_xcap_error

log = logging.getLogger(__name__)

#: the largest body we read from a server (documents are limited again when parsed)
MAX_BODY = 8 * 1024 * 1024


class _NotModified:
    def __repr__(self) -> str:
        return "NOT_MODIFIED"


NOT_MODIFIED: Final = _NotModified()


@dataclass(frozen=True)
class XcapResponse:
    etag: str | None
    content_type: str
    content: bytes


MAX_CONNECTIONS = 4  # to the XCAP server, per client (one client per account)


class XcapClient:
    def __init__(
        self,
        root: str,
        *,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        basic_in_clear: bool = False,
        local_address: str | None = None,
        local_port: int = 0,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        user_agent: str = "sipd",
    ) -> None:
        self.root = normalize_root(root)
        self.retries = retries
        self.backoff = backoff
        self._any_etag = "*"
        auth = (ChallengeAuth(username, password or "", basic_in_clear=basic_in_clear)
                if username else None)
        verify_arg: bool | ssl.SSLContext = (ssl.create_default_context(cafile=verify)
                                             if isinstance(verify, str) else verify)
        # A few connections per server at most: each is a descriptor the daemon's budget
        # (sipd/limits.py) counts, and one account's document manager sends one request at a
        # time anyway; more requests at once wait for a connection instead of opening one.
        transport = bound_transport(verify=verify_arg, local_address=local_address,
                                    local_port=local_port, max_connections=MAX_CONNECTIONS)
        self._http = httpx.AsyncClient(
            transport=transport, auth=auth, timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent}, follow_redirects=False, trust_env=False)

    async def __aenter__(self) -> XcapClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- requests ------------------------------------------------------------------------------

    async def get(self, uri: XcapUri, *, etag: str | None = None) -> XcapResponse | _NotModified:
        """The document, element or attribute; NOT_MODIFIED when `etag` is still current."""
        headers = {"If-None-Match": quote_etag(etag)} if etag else {}
        response = await self._request("GET", uri, headers=headers)
        if response.status_code == 304:
            return NOT_MODIFIED
        self._raise_for_status(response, uri)
        return XcapResponse(response_etag(response),
                            response.headers.get("content-type", "").split(";")[0].strip(),
                            response.content)

    async def put(self, uri: XcapUri, body: bytes, content_type: str, *,
                  if_match: str | None = None, if_none_match: str | None = None) -> str | None:
        """Write; returns the document's new ETag (None if the server gave none). Every write
        is conditional: pass the ETag it is based on, or if_none_match="*" to create."""
        headers = {"Content-Type": content_type}
        headers.update(self._conditions(if_match, if_none_match))
        response = await self._request("PUT", uri, headers=headers, content=body)
        self._raise_for_status(response, uri)
        return response_etag(response)

    async def delete(self, uri: XcapUri, *, if_match: str | None = None) -> str | None:
        response = await self._request("DELETE", uri, headers=self._conditions(if_match, None))
        self._raise_for_status(response, uri)
        return response_etag(response)

    async def caps(self) -> XcapCaps | None:
        """The server's xcap-caps, or None when it does not serve them (404, 501...)."""
        uri = XcapUri(self.root, XCAP_CAPS.auid, XCAP_CAPS.default_document)
        try:
            result = await self.get(uri)
        except XcapHTTPError as exc:
            log.info("XCAP server %s offers no xcap-caps (%s)", self.root, exc.status)
            return None
        assert isinstance(result, XcapResponse)
        return parse_caps(result.content)

    # -- internals -----------------------------------------------------------------------------

    def _conditions(self, if_match: str | None, if_none_match: str | None) -> dict[str, str]:
        headers = {}
        if if_match:
            headers["If-Match"] = quote_etag(if_match)
        if if_none_match == "*":
            headers["If-None-Match"] = self._any_etag
        elif if_none_match:
            headers["If-None-Match"] = quote_etag(if_none_match)
        return headers

    def _learn_quirks(self, response: httpx.Response) -> None:
        # Kamailio's xcap_server (5.x) only recognises a quoted "*" in If-None-Match and lets
        # `If-None-Match: *` (RFC 9110's form) overwrite an existing document.
        if response.headers.get("server", "").lower().startswith("kamailio"):
            self._any_etag = '"*"'

    async def _request(self, method: str, uri: XcapUri, *, headers: dict[str, str],
                       content: bytes | None = None) -> httpx.Response:
        url = str(uri)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._send(method, url, headers, content)
                self._learn_quirks(response)
            except httpx.TransportError as exc:
                if last:
                    raise XcapUnavailableError(
                        f"XCAP server {self.root} unreachable: {describe_transport_error(exc)}"
                    ) from None
                log.info("%s %s failed (%s); retrying in %.2fs", method, url,
                         describe_transport_error(exc), delay)
            else:
                if response.status_code < 500 or response.status_code == 501:
                    return response
                if last:
                    raise XcapUnavailableError(
                        f"XCAP server {self.root} answered {response.status_code} "
                        f"{response.reason_phrase} for {method} {url}")
                log.info("%s %s answered %s; retrying in %.2fs", method, url,
                         response.status_code, delay)
            await trio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def _send(self, method: str, url: str, headers: dict[str, str],
                    content: bytes | None) -> httpx.Response:
        request = self._http.build_request(method, url, headers=headers, content=content)
        response = await self._http.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > MAX_BODY:
                    raise XcapDocumentError(
                        f"{method} {url}: the server's answer is larger than {MAX_BODY} bytes")
                chunks.append(chunk)
        finally:
            await response.aclose()
        response._content = b"".join(chunks)  # what .content returns from now on
        return response

    def _raise_for_status(self, response: httpx.Response, uri: XcapUri) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        url = str(uri)
        if status == 404:
            raise XcapNotFoundError(404, response.reason_phrase, url)
        if status == 412:
            raise XcapPreconditionFailed(412, response.reason_phrase, url)
        if status == 409:
            raise XcapConflictError(url, _error_document(response), _short(response))
        raise XcapHTTPError(status, response.reason_phrase, url, _short(response))


def quote_etag(etag: str) -> str:
    if etag == "*" or etag.startswith('"') or etag.startswith('W/"'):
        return etag
    return f'"{etag}"'


def response_etag(response: httpx.Response) -> str | None:
    value = response.headers.get("etag")
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def _error_document(response: httpx.Response) -> XcapErrorDocument | None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (MIME_ERROR, "application/xml", "text/xml") or not response.content:
        return None
    try:
        return parse_xcap_error(response.content)
    except XcapDocumentError as exc:
        log.info("unreadable xcap-error document: %s", exc)
        return None


def _short(response: httpx.Response) -> str:
    content_type = response.headers.get("content-type", "")
    if not response.content or not content_type.startswith("text/"):
        return ""
    text = response.content[:200].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def describe_transport_error(exc: httpx.TransportError) -> str:
    """What went wrong, from the deepest cause that says something (httpx's ConnectError
    often carries no text of its own; the ssl or OS error under it does)."""
    causes: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in causes:
        causes.append(current)
        current = current.__cause__ or current.__context__
    for cause in reversed(causes):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f"the server's TLS certificate is not trusted ({cause.verify_message}; "
                    f"{cause.reason})")
    for cause in reversed(causes):
        text = str(cause).strip()
        if text:
            return f"{type(exc).__name__}: {text}"
    return type(exc).__name__
