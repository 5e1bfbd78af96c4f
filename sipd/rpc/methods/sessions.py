"""sessions.*: calls (INVITE sessions) out and in, and their audio.

Progress comes as events on the `sessions` topic: `session.new`, `session.state` (calling,
ringing, early, established, ending, ended, failed; with the SIP code and reason when there
is one), `session.dtmf`, `session.hold`, `session.recording` (a recording file is complete),
`session.transfer` (a transfer's progress, ours or the remote party's), `session.proposal`
`{id, proposal, streams, state: pending|accepted|rejected|expired}` (the remote party offers
to add streams), `session.streams` `{id, streams, change: added|removed|refused, stream, by:
local|remote, code?, reason?}`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Literal

from ...accounts.model import AccountNotFound
from ...media.process import MediaWorkerError, MediaWorkerGone
from ...media.supervisor import MediaUnavailable
from ...sessions.errors import (
    InvalidSessionParam,
    SessionNotFound,
    SessionStateError,
    StreamUnavailable,
)
from ...sessions.streams.screen import SCREEN as SCREEN_KIND
from ...sessions.streams.screen import parse_address
from ..api import method
from ..dispatch import CallContext
from ..errors import CONFLICT, REMOTE_ERROR, UNAVAILABLE, RpcError, invalid_params, not_found
from ..registry import Constraint

ID = Annotated[str, Constraint(minLength=1), "a session id (sessions.list shows them)"]
SCREEN = Annotated[dict[str, Any] | None,
                   "a screen-sharing stream: {\"role\": \"share\" (our screen, from a VNC "
                   "server) or \"view\" (theirs, on a loopback port for a VNC viewer), "
                   "\"vnc\": \"HOST:PORT\" (the VNC server shared, default 127.0.0.1:5900; "
                   "for view, a listening viewer to bridge to)}"]


def _screen_options(screen: dict[str, Any] | None) -> dict[str, Any]:
    if screen is None:
        return {}
    role, vnc = screen.get("role", "view"), screen.get("vnc")
    unknown = sorted(set(screen) - {"role", "vnc"})
    if unknown:
        raise invalid_params(f"screen takes role and vnc, not {', '.join(unknown)}",
                             field="screen")
    if role not in ("share", "view"):
        raise invalid_params("screen.role is share or view", field="screen")
    if vnc is not None:
        try:
            parse_address(vnc if isinstance(vnc, str) else "")
        except ValueError as exc:
            raise invalid_params(f"screen.vnc: {exc}", field="screen") from None
    return {SCREEN_KIND: {"role": role, "vnc": vnc}}
PATH = Annotated[str, Constraint(minLength=1), "an absolute path on the daemon's host"]


@contextmanager
def _errors(session_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except SessionNotFound as exc:
        raise not_found("session", exc.id) from None
    except AccountNotFound as exc:
        raise not_found("account", exc.account_id) from None
    except InvalidSessionParam as exc:
        raise invalid_params(exc.reason, field=exc.field) from None
    except SessionStateError as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc)}) from None
    except (MediaUnavailable, MediaWorkerGone, StreamUnavailable) as exc:
        raise RpcError(UNAVAILABLE, "Unavailable", {"reason": str(exc)}) from None
    except MediaWorkerError as exc:
        raise RpcError(REMOTE_ERROR, "Media engine refused", {"reason": str(exc)}) from None


def _sessions(ctx: CallContext):
    return ctx.service.useragent.sessions


@method("sessions.list")
async def list_(ctx: CallContext) -> dict:
    """Every session, live or just ended."""
    return {"sessions": _sessions(ctx).list()}


@method("sessions.get")
async def get(ctx: CallContext, *, id: ID) -> dict:
    """One session: direction, remote party, state, hold, media details, and `rtp`: the
    packets and bytes of audio sent and received so far (null without live media; with
    "stale": true when they are the last a media worker that stopped answering gave).
    `lines`: its streams other than audio, each {index (its m-line), kind, state, and for
    MSRP local_path, remote_path, connected, failure?}; `proposal`: the remote party's
    proposal waiting for an answer ({id, streams}) or null; `session_timer`: the RFC 4028
    timer agreed with the remote party ({interval, refresher: us|them}) or null."""
    with _errors(id):
        call = _sessions(ctx).get(id)
        return {**call.view(), "rtp": await call.rtp_counters()}


AUDIO_DEVICE = Annotated[
    Literal["null", "web"],
    'where the call\'s audio comes from and goes: "null" (nothing; sessions.play and '
    'sessions.record still work) or "web" (a web page\'s microphone and speaker, over the '
    "page server's audio channel /audio/ID)"]


@method("sessions.start")
async def start(
    ctx: CallContext, *,
    account: Annotated[str, "the calling account's id (\"local\": the daemon's own address)"],
    to: Annotated[str, "whom to call, e.g. sip:bob@example.com or sip:local@192.0.2.1:5060"],
    streams: Annotated[list[Annotated[str, Constraint(minLength=1)]],
                       Constraint(minItems=1),
                       "the streams to offer, in m-line order: \"audio\", \"chat\", "
                       "\"screen-sharing\" (a session without audio starts no media "
                       "engine)"] = ["audio"],  # noqa: B006
    audio_device: AUDIO_DEVICE = "null",
    screen: SCREEN = None,
) -> dict:
    """Call someone; returns the new session (its `id` names it in every later call).

    The call's progress comes as `session.state` events; a call that cannot be placed ends
    in state `failed` with a code and reason. A screen-sharing stream that views reports the
    loopback port a VNC viewer connects to in a `session.screen` event {id, role, viewer}
    and in sessions.get's line `screen`."""
    with _errors():
        sender = ctx.service.useragent.accounts.get(account)
        view = await _sessions(ctx).start(sender, to, list(streams),
                                          options=_screen_options(screen))
    try:
        _sessions(ctx).get(view["id"]).audio_device = audio_device
    except SessionNotFound:
        pass  # over and forgotten already: its audio went nowhere
    return {**view, "audio_device": audio_device}


@method("sessions.answer")
async def answer(
    ctx: CallContext, *, id: ID,
    path: Annotated[str | None, Constraint(minLength=1),
                    "an incoming file transfer: where to save the file, a folder or a file "
                    "path (default files.download_dir)"] = None,
    screen: SCREEN = None,
    audio_device: AUDIO_DEVICE = "null",
) -> dict:
    """Answer an incoming call; `established` follows as a session.state event. A
    screen-sharing stream takes the other half of the offer (its role is set); `screen`
    gives its vnc address."""
    options = _screen_options(screen)
    with _errors(id):
        call = _sessions(ctx).get(id)
        call.audio_device = audio_device
        call.stream_options.update(options)
        if path is not None:
            if not os.path.isabs(path):
                raise invalid_params("path must be absolute", field="path")
            call.stream_options.setdefault("file-transfer", {})["path"] = path
        await call.answer()
        return call.view()


@method("sessions.reject")
async def reject(
    ctx: CallContext, *, id: ID,
    code: Annotated[int, Constraint(minimum=300, maximum=699),
                    "the SIP status to refuse with (486 busy, 603 decline...)"] = 603,
) -> dict:
    """Refuse an incoming call that has not been answered."""
    with _errors(id):
        call = _sessions(ctx).get(id)
        call.reject(code)
        return call.view()


@method("sessions.end")
async def end(ctx: CallContext, *, id: ID) -> dict:
    """Hang up: cancel a call still ringing, decline an unanswered incoming one, or BYE."""
    with _errors(id):
        call = _sessions(ctx).get(id)
        call.end()
        return call.view()


@method("sessions.hold")
async def hold(ctx: CallContext, *, id: ID) -> dict:
    """Put the call on hold (our audio becomes sendonly); `session.hold` says when it is."""
    with _errors(id):
        await _sessions(ctx).hold(id, True)
        return {}


@method("sessions.unhold")
async def unhold(ctx: CallContext, *, id: ID) -> dict:
    """Take the call off hold; `session.hold` says when it is."""
    with _errors(id):
        await _sessions(ctx).hold(id, False)
        return {}


@method("sessions.send_dtmf")
async def send_dtmf(
    ctx: CallContext, *, id: ID,
    digits: Annotated[str, Constraint(minLength=1, maxLength=31, pattern="^[0-9*#A-Da-d]+$"),
                      "the digits, 0-9 * # A-D, at most 31 (sent as RFC 4733 events)"],
) -> dict:
    """Send DTMF digits in the call's audio."""
    with _errors(id):
        await _sessions(ctx).send_dtmf(id, digits.upper())
        return {}


@method("sessions.play")
async def play(
    ctx: CallContext, *, id: ID,
    path: Annotated[str, Constraint(minLength=1),
                    "a WAV file (16-bit mono PCM) on the daemon's host, absolute path"],
    loop: Annotated[bool, "start again at its end"] = False,
) -> dict:
    """Play a WAV file to the remote party (instead of what played before)."""
    with _errors(id):
        await _sessions(ctx).play(id, path, loop)
        return {}


@method("sessions.record")
async def record(ctx: CallContext, *, id: ID, path: PATH) -> dict:
    """Record what the remote party sends to a WAV file until the call ends (or the next
    record); `session.recording` says when the file is complete."""
    with _errors(id):
        await _sessions(ctx).record(id, path)
        return {}


@method("sessions.transfer")
async def transfer(
    ctx: CallContext, *, id: ID,
    to: Annotated[str | None, "blind transfer: where the remote party goes, e.g. "
                              "sip:carol@example.com"] = None,
    replaces: Annotated[str | None, "attended transfer: another established session of ours; "
                                    "the remote party takes its place (REFER with Replaces)"
                        ] = None,
) -> dict:
    """Transfer the remote party of an established call: give either `to` or `replaces`.

    Returns `{"id", "state": "requested"}` once the REFER is sent. Progress comes as
    `session.transfer` events `{id, direction: "outgoing", to, replaces?, state, code?,
    reason?}` with state accepted, trying, ringing, then completed (this call then ends with
    reason "transferred") or failed (the call stays as it was). A transfer asked of us by
    the remote party shows as `direction: "incoming"` with `by` and `session` (the new
    call, whose `session.new` carries `transferred_by`)."""
    if (to is None) == (replaces is None):
        raise invalid_params("give either to (blind transfer) or replaces (attended "
                             "transfer), not both or neither", field="to")
    with _errors(id):
        return await _sessions(ctx).transfer(id, to=to, replaces=replaces)


STREAM = Annotated[str, Constraint(minLength=1),
                   "a stream kind: \"chat\", \"screen-sharing\""]
PROPOSAL = Annotated[str, Constraint(minLength=1),
                     "the proposal's id (session.proposal's `proposal`); default: the pending "
                     "one"]


@method("sessions.add_stream")
async def add_stream(ctx: CallContext, *, id: ID, stream: STREAM,
                     screen: SCREEN = None) -> dict:
    """Add a stream to an established session (a re-INVITE offering it beside the others):
    {id, stream, index}. `session.streams` says how it went: change "added" (it connects
    next), or "refused" with the reason."""
    options = _screen_options(screen)
    with _errors(id):
        call = _sessions(ctx).get(id)
        call.stream_options.update(options)
        return await call.changes.add(stream)


@method("sessions.remove_stream")
async def remove_stream(ctx: CallContext, *, id: ID, stream: STREAM) -> dict:
    """Remove a stream from an established session (a re-INVITE with its line at port 0);
    `session.streams` with change "removed" follows. The last stream cannot be removed: end
    the session instead."""
    with _errors(id):
        return _sessions(ctx).get(id).changes.remove(stream)


@method("sessions.accept_proposal")
async def accept_proposal(ctx: CallContext, *, id: ID, proposal: PROPOSAL | None = None,
                          screen: SCREEN = None) -> dict:
    """Accept the remote party's proposal to add streams (a `session.proposal` event with
    state "pending"); the streams start at once. `screen`: the vnc address of a
    screen-sharing stream added (its role is the other half of the proposal's)."""
    options = _screen_options(screen)
    with _errors(id):
        call = _sessions(ctx).get(id)
        call.stream_options.update(options)
        return await call.changes.accept(proposal)


@method("sessions.reject_proposal")
async def reject_proposal(ctx: CallContext, *, id: ID, proposal: PROPOSAL | None = None
                          ) -> dict:
    """Refuse the remote party's proposal to add streams (488); the session stays as it was.
    A proposal not answered within 30 s is refused the same way."""
    with _errors(id):
        return _sessions(ctx).get(id).changes.reject(proposal)
