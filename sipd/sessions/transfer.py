"""Call transfer on a back-to-back call (sipd.sessions.session): the REFER we send and the
NOTIFYs that come back (we transfer), the REFER we get and the new call it starts (we are
transferred), and which call an INVITE with Replaces takes over (we are the target).

The protocol decisions are in sipd.sessions.refer (sans-I/O); this module carries them out on
the call's outside leg and publishes `session.transfer` events:

- outgoing: requested (REFER sent) -> accepted (2xx) -> trying / ringing (NOTIFY 100 / 18x) ->
  completed (NOTIFY 2xx: we hang up, reason "transferred") or failed (the call stays as it was);
- incoming: requested (with "to" and "by") -> trying / ringing -> completed or failed, each
  with "session", the new call's id. The transferor normally hangs up once it hears of the
  success; a call it leaves up is ended by us after HANGUP_WAIT seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import trio

from sipd.sip.header_values import Address
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.uri import SipUri

from .invite.events import (
    InDialogRequest,
    InDialogResponse,
    InviteSessionError,
    Role,
    SendRequest,
    SessionState,
)
from .refer import (
    ACCEPTED,
    COMPLETED,
    REQUESTED,
    TRYING,
    Progress,
    ReferError,
    ReferNotifier,
    ReferSubscriber,
    Replaces,
    parse_refer_to,
    parse_referred_by,
    refer_to_value,
    state_of,
)

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

log = logging.getLogger(__name__)

HANGUP_WAIT = 5.0  # seconds the transferor gets to hang up after a successful transfer
# The new call's states as the status line the transferor hears (RFC 3515 §2.4.5).
_STATUS_OF_STATE = {"ringing": (180, "Ringing"), "early": (183, "Session Progress"),
                    "established": (200, "OK")}


@dataclass
class _Outgoing:
    subscriber: ReferSubscriber
    key: str  # the REFER's request key (its InDialogResponse)
    data: dict[str, Any]  # the fields every event of this transfer carries


@dataclass
class _Incoming:
    notifier: ReferNotifier
    data: dict[str, Any]
    session: str | None = None  # the new call


class Transfers:
    """The transfers of one call; `last` is the latest `session.transfer` data (sessions.get)."""

    def __init__(self, call: Session) -> None:
        self.call = call
        self.outgoing: _Outgoing | None = None
        self.incoming: _Incoming | None = None
        self.last: dict[str, Any] | None = None

    def _publish(self, base: dict[str, Any], progress: Progress) -> None:
        data = {"id": self.call.id, **base, "state": progress.state}
        if progress.code is not None:
            data["code"] = progress.code
        if progress.reason:
            data["reason"] = progress.reason
        self.last = {k: v for k, v in data.items() if k != "id"}
        log.info("session %s: transfer %s %s", self.call.id, data.get("direction"),
                 progress.state)
        self.call.context.publish("session.transfer", data)

    @property
    def busy(self) -> bool:
        return self.outgoing is not None and not self.outgoing.subscriber.done

    # -- we transfer ------------------------------------------------------------------------------
    def start(self, target: SipUri, replaces: Replaces | None = None,
              replaces_id: str | None = None) -> dict[str, Any]:
        """Sends REFER on the outside leg (the caller checked the call is established).
        InviteSessionError when the dialog cannot take it."""
        leg = self.call.outside
        assert leg is not None
        session, dialog = leg.session, leg.session.dialog
        assert dialog is not None
        headers = [("Refer-To", refer_to_value(target, replaces)),
                   ("Referred-By", str(Address(dialog.local_uri.uri)))]
        actions = session.send_in_dialog("REFER", leg.now(), headers=headers)
        send = next(a for a in actions if isinstance(a, SendRequest))
        assert send.request.cseq is not None
        data: dict[str, Any] = {"direction": "outgoing", "to": str(target)}
        if replaces_id is not None:
            data["replaces"] = replaces_id
        out = self.outgoing = _Outgoing(ReferSubscriber(str(send.request.cseq.number),
                                                        leg.now()), send.key, data)
        self._publish(data, Progress(REQUESTED))
        leg.feed(actions)
        self.call.start_soon(self._expire, out)
        return {"id": self.call.id, "state": REQUESTED}

    async def _expire(self, out: _Outgoing) -> None:
        """No final NOTIFY in time: the transfer failed (the call stays up)."""
        while not out.subscriber.done:
            await trio.sleep_until(out.subscriber.deadline)
            self._progress(out, out.subscriber.timer(trio.current_time()))

    def _progress(self, out: _Outgoing, progress: Progress | None) -> None:
        if progress is None:
            return
        self._publish(out.data, progress)
        if progress.state == COMPLETED:
            self.call.end("transferred")

    def on_response(self, action: InDialogResponse) -> None:
        out = self.outgoing
        if out is None or action.key != out.key:
            return  # the response to one of our NOTIFYs, or an INFO
        response = action.response
        status = response.status if response is not None else None
        reason = response.reason if response is not None else action.reason
        self._progress(out, out.subscriber.refer_response(status, reason,
                                                          trio.current_time()))

    def on_request(self, action: InDialogRequest) -> bool:
        """REFER and NOTIFY in the call's dialog; False for other requests."""
        ref = action.ref
        method = action.request.method
        if method not in ("REFER", "NOTIFY"):
            return False
        if not isinstance(ref, IncomingRequest) or ref.transaction is None or ref.answered:
            return True
        if method == "NOTIFY":
            self._notify_received(action, ref)
        else:
            self._refer_received(action, ref)
        return True

    def _notify_received(self, action: InDialogRequest, ref: IncomingRequest) -> None:
        request = action.request
        out = self.outgoing
        if out is None:
            ref.respond_nowait(481, "Subscription Does Not Exist")
            return
        content_type = request.headers.get("Content-Type")
        overtaken = out.subscriber.state == REQUESTED  # no 202 yet: this NOTIFY says it
        answer = out.subscriber.notify(request.headers.get("Event"),
                                       request.headers.get("Subscription-State"),
                                       content_type, request.body, trio.current_time())
        ref.respond_nowait(answer.status, answer.reason)
        if overtaken and out.subscriber.state != REQUESTED and answer.progress is not None:
            self._publish(out.data, Progress(ACCEPTED))  # every transfer says it was accepted
        self._progress(out, answer.progress)

    # -- we are transferred ------------------------------------------------------------------------
    def _refer_received(self, action: InDialogRequest, ref: IncomingRequest) -> None:
        request = action.request
        call = self.call
        leg = call.outside
        if leg is None or leg.session.state is not SessionState.ESTABLISHED:
            ref.respond_nowait(403, "Forbidden: the call is not established")
            return
        if self.incoming is not None and not self.incoming.notifier.done:
            ref.respond_nowait(491, "Request Pending: a transfer is in progress")
            return
        targets = request.headers.values("Refer-To")
        try:
            if len(targets) != 1:
                raise ReferError(400, "a REFER needs exactly one Refer-To")
            target = parse_refer_to(targets[0])
        except ReferError as exc:
            ref.respond_nowait(exc.status, exc.reason)
            return
        by = parse_referred_by(request.headers.get("Referred-By"))
        assert request.cseq is not None
        data: dict[str, Any] = {"direction": "incoming", "to": str(target.uri)}
        if by is not None:
            data["by"] = str(by.uri)
        incoming = self.incoming = _Incoming(ReferNotifier(str(request.cseq.number)), data)
        ref.respond_nowait(202, "Accepted")
        self._publish(data, Progress(REQUESTED))
        self._send_notify(incoming, 100, "Trying")
        call.context.spawn(self._place, incoming, target.uri, target.replaces, by)

    async def _place(self, incoming: _Incoming, uri: SipUri, replaces: Replaces | None,
                     by: Address | None) -> None:
        """The new call the REFER asked for, from the same account."""
        call = self.call
        headers = []
        if by is not None:
            headers.append(("Referred-By", str(by)))
        if replaces is not None:
            headers.append(("Replaces", str(replaces)))
        try:
            view = await call.context.start_session(
                call.account, str(uri), ["audio"], extra_headers=headers,
                extra={"transferred_by": call.id},
                watch=lambda data: self._new_call_state(incoming, data))
        except Exception as exc:  # noqa: BLE001 - told to the transferor, not raised
            log.info("session %s: the transfer call could not start: %s", call.id, exc)
            self._new_call_state(incoming, {"state": "failed", "code": 503,
                                            "reason": f"cannot call {uri}: {exc}"})
            return
        incoming.session = view["id"]
        self._publish({**incoming.data, "session": view["id"]}, Progress(TRYING, 100, "Trying"))

    def _new_call_state(self, incoming: _Incoming, data: dict[str, Any]) -> None:
        state = data.get("state")
        if state in _STATUS_OF_STATE:
            status, reason = _STATUS_OF_STATE[state]
        elif state == "failed":
            status, reason = data.get("code") or 500, data.get("reason") or "Failed"
        elif state == "ended" and not incoming.notifier.done:
            status, reason = 487, data.get("reason") or "Request Terminated"
        else:
            return
        if incoming.notifier.done:
            return
        self._send_notify(incoming, status, reason)
        base = dict(incoming.data)
        if incoming.session is not None or data.get("id"):
            base["session"] = incoming.session or data.get("id")
        self._publish(base, Progress(state_of(status), status, reason))
        if 200 <= status < 300:
            self.call.context.spawn(self._hang_up_later)

    def _send_notify(self, incoming: _Incoming, status: int, reason: str) -> None:
        content = incoming.notifier.notify(status, reason)
        leg = self.call.outside
        if content is None or leg is None or leg.closed:
            return
        try:
            leg.feed(leg.session.send_in_dialog(
                "NOTIFY", leg.now(), headers=content.headers, body=content.body,
                content_type=content.content_type))
        except InviteSessionError as exc:  # the old call is over: nobody to tell
            log.debug("session %s: no NOTIFY (%d): %s", self.call.id, status, exc)

    async def _hang_up_later(self) -> None:
        """The transfer worked: the transferor should hang up; if it has not, we do."""
        await trio.sleep(HANGUP_WAIT)
        if not self.call.terminated:
            self.call.end("transferred")


def find_replaced(sessions: Iterable[Session],
                  replaces: Replaces) -> tuple[Session | None, int, str]:
    """The call an INVITE with Replaces takes over (RFC 3891 §3), else the status to refuse
    it with: 481 (no such dialog, or an early one we did not start), 603 (it is over), 486
    (confirmed but early-only asked)."""
    for call in sessions:
        leg = call.outside
        if leg is None or leg.session.call_id != replaces.call_id \
                or leg.session.local_tag != replaces.to_tag:
            continue
        session = leg.session
        if call.terminated or session.terminated or session.state is SessionState.ENDING:
            return None, 603, "Decline: that call is over"
        dialog = session.dialog
        if session.state is SessionState.ESTABLISHED and dialog is not None:
            if dialog.remote_tag != replaces.from_tag:
                break
            if replaces.early_only:
                return None, 486, "Busy Here: that call is established"
            return call, 200, "OK"
        if session.role is Role.UAS:  # ringing here: only its own caller may take it over
            return None, 481, "Call/Transaction Does Not Exist"
        return call, 200, "OK"  # our outgoing call still ringing: it is cancelled
    return None, 481, "Call/Transaction Does Not Exist"


def attended_target(other: Session) -> tuple[SipUri, Replaces] | None:
    """Where the transferee goes in an attended transfer: the remote target (Contact) of our
    dialog with the other party — that very device, not an address of record that could
    fork to another one, which would answer 481 — with that dialog named in Replaces as
    the other party sees it (its own tag is our remote tag). None: no sip: URI to use."""
    assert other.outside is not None and other.outside.session.dialog is not None
    dialog = other.outside.session.dialog
    target = dialog.remote_target
    if not isinstance(target, SipUri):
        target = dialog.remote_uri.uri
    if not isinstance(target, SipUri):
        return None
    return target, Replaces(dialog.call_id, dialog.remote_tag, dialog.local_tag)
