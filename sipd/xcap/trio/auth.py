"""HTTP authentication for XCAP: digest when the server asks for it, basic only over TLS
(or when a setting allows it in the clear), answered after the server's 401 challenge."""

from __future__ import annotations

from collections.abc import Generator

import httpx


class ChallengeAuth(httpx.Auth):
    """Answers a 401 with digest (RFC 7616, through httpx.DigestAuth) or basic credentials,
    whichever scheme the challenge names; digest is preferred when both are offered."""

    def __init__(self, username: str, password: str, *, basic_in_clear: bool = False) -> None:
        self._digest = httpx.DigestAuth(username, password)
        self._basic = httpx.BasicAuth(username, password)
        self._basic_in_clear = basic_in_clear
        self._scheme: str | None = None  # what the server asked for last time

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._scheme == "digest":
            yield from self._digest.auth_flow(request)
            return
        if self._scheme == "basic":
            yield from self._basic.auth_flow(request)
            return
        response = yield request
        if response.status_code != 401:
            return
        challenges = [value.split(None, 1)[0].lower()
                      for value in response.headers.get_list("www-authenticate") if value]
        if "digest" in challenges:
            self._scheme = "digest"
            flow = self._digest.auth_flow(request)
            next(flow)  # the unauthenticated request, which was just answered
            try:
                yield flow.send(response)
            except StopIteration:
                return
        elif "basic" in challenges and (request.url.scheme == "https" or self._basic_in_clear):
            self._scheme = "basic"
            yield from self._basic.auth_flow(request)
