"""What the presence machines (Subscriber, Notifier, Publisher) hand back to the layer that
drives them: actions to carry out, in the order returned, and events to publish. Plain data.

Actions:
- `SendRequest(request, key, dialog)`: start a client transaction for `request` (it has no
  Via: the stack adds one with a fresh branch). `dialog` is None for a request outside any
  dialog (the initial SUBSCRIBE, every PUBLISH): send it through the account's next hop, with
  failover. Otherwise it is the DialogId of the dialog it belongs to: it already carries
  that dialog's Request-URI and Route set, send it to `builder.next_hop(request)`. Feed the
  outcome back to the machine with the same `key`: `response(key, final, now)`, or
  `no_response(key, now, reason)` when it timed out or could not be sent; after a 401/407
  send an authenticated copy through `resend(key, copy, now)` instead.
- `SendResponse(ref, status, ...)`: answer the incoming request the driver passed in with
  `ref` (its IncomingRequest: `ref.respond_nowait(status, reason, headers=..., body=...,
  content_type=..., to_tag=...)`).
- `ClaimDialog(key)` / `ReleaseDialog(key)`: from now on, route in-dialog requests whose
  Call-ID and To tag (our tag) are `key` to this machine / stop doing so. A subscriber
  claims its key when it sends the SUBSCRIBE, since a NOTIFY may come before the 2xx, from
  any fork.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sipd.sip.builder import build_response
from sipd.sip.dialog import DialogId
from sipd.sip.message import Request, Response

__all__ = ["SendRequest", "SendResponse", "ClaimDialog", "ReleaseDialog", "DialogKey"]


@dataclass(frozen=True)
class DialogKey:
    """How the user agent's dialog table finds an owner: Call-ID and our own tag."""
    call_id: str
    local_tag: str


@dataclass(frozen=True, eq=False)
class SendRequest:
    request: Request
    key: str
    dialog: DialogId | None = None


@dataclass(frozen=True, eq=False)
class SendResponse:
    ref: Any  # what the driver passed in with the request
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str | None = None
    to_tag: str | None = None

    def build(self, request: Request) -> Response:
        """The response as `IncomingRequest.respond_nowait` builds it (less its Server)."""
        return build_response(request, self.status, self.reason, to_tag=self.to_tag,
                              headers=self.headers, body=self.body,
                              content_type=self.content_type)


@dataclass(frozen=True)
class ClaimDialog:
    key: DialogKey


@dataclass(frozen=True)
class ReleaseDialog:
    key: DialogKey
