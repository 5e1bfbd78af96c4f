"""Streams added to or removed from an established session by a re-INVITE (RFC 3264 §8): ours
(`sessions.add_stream`, `sessions.remove_stream`) and the remote party's. A remote offer that
adds streams is a proposal the user answers (`session.proposal` event, then
`accept_proposal` / `reject_proposal`); one not answered within PROPOSAL_TIMEOUT is rejected
(488). A remote offer that removes one of our streams is taken at once, and so is one that
changes a stream's line in a way the stream can follow (a chat peer's new relay path).

Only changes of the streams other than audio are handled here: the audio lines of our
description stay as they are (the media worker is not asked), so an offer that also changes
the audio goes the usual way (the audio stream, sipd.sessions.streams.audio.passing), which answers lines it has no stream for
with port 0. The session holds one StreamChanges and hands it the outside leg's re-INVITE
offers and the outcome of its own re-INVITEs first.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from sipd.sip.builder import warning_value

from .errors import InvalidSessionParam, SessionStateError
from .invite.events import ReinviteCompleted
from .sdp import MediaDescription, SessionDescription, changed_media
from .streams import Stream, StreamKind, StreamRefused, StreamState, UnknownStreamKind
from .streams.audio import sdp

if TYPE_CHECKING:  # pragma: no cover
    from .driver import LegDriver
    from .session import Session

log = logging.getLogger(__name__)

PROPOSAL_TIMEOUT = 30.0  # seconds a remote proposal waits for the user (then 488)
REOFFER_WAIT = 60.0  # seconds a changed line of ours waits for a re-INVITE to be possible


@dataclass
class Proposal:
    """A remote re-INVITE adding streams, waiting for the user."""

    id: str
    leg: LegDriver
    offer: SessionDescription
    added: dict[int, StreamKind]  # the lines it adds that we could take, by m-line
    declined: set[int] = field(default_factory=set)  # lines it adds that we cannot take
    removed: set[int] = field(default_factory=set)  # our streams it removes (port 0)
    updated: set[int] = field(default_factory=set)  # our streams it changes (a new a=path)
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)


@dataclass
class _OwnChange:
    """Our re-INVITE adding (`stream` new), removing or updating a stream's line, until its
    outcome."""

    index: int
    stream: Stream
    line: MediaDescription
    what: str  # add | remove | update


class StreamChanges:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: Proposal | None = None
        self._own: _OwnChange | None = None

    # -- views ---------------------------------------------------------------------------------
    def view(self) -> dict[str, Any] | None:
        """The remote's proposal waiting for the user (sessions.get), or None."""
        proposal = self.pending
        if proposal is None:
            return None
        return {"id": proposal.id, "streams": [kind.name for kind in proposal.added.values()]}

    def _publish_streams(self, change: str, stream: str, by: str,
                         reason: str | None = None, code: int | None = None) -> None:
        """session.streams: a stream added, removed, or refused (ours, by the remote)."""
        session = self.session
        data: dict[str, Any] = {"id": session.id, "streams": list(session.streams),
                                "change": change, "stream": stream, "by": by}
        if reason is not None:
            data["reason"] = reason
        if code is not None:
            data["code"] = code
        session.context.publish("session.streams", data)

    def _has_worker(self) -> bool:
        registry = self.session.context.streams
        return any(registry.get(name).uses_media_worker for name in self.session.streams)

    def _local(self, leg: LegDriver) -> SessionDescription:
        return sdp.parse(leg.session.local_sdp)

    def _send(self, description: SessionDescription) -> bytes:
        return bytes(self.session.versions.stamp(description))

    # -- the remote's re-INVITEs ---------------------------------------------------------------
    def offer_from(self, leg: LegDriver, body: bytes | None) -> bool:
        """A re-INVITE offer on the outside leg: True when it adds or removes streams (and
        nothing else) and is handled here."""
        if body is None or leg.session.remote_sdp is None or self.pending is not None:
            return False
        try:
            offer, before = sdp.parse(body), sdp.parse(leg.session.remote_sdp)
        except sdp.SdpMismatch:
            return False
        added: dict[int, StreamKind] = {}
        declined: set[int] = set()
        removed: set[int] = set()
        updated: set[int] = set()
        context = self.session.stream_context()
        for index in changed_media(before, offer):
            line = offer.media[index]
            was = before.media[index] if index < len(before.media) else None
            if (was is None or was.is_rejected) and not line.is_rejected:
                kind = self.session.context.streams.kind_for(line)
                if kind is None or kind.uses_media_worker \
                        or kind.refusal(offer, line, context) is not None \
                        or kind.name in self.session.streams or \
                        kind in added.values():
                    declined.add(index)
                else:
                    added[index] = kind
            elif line.is_rejected and index in self.session.lines:
                removed.add(index)
            elif index in self.session.lines and self.session.lines[index].takes_update(line):
                updated.add(index)  # its path changed (a new relay): our line stays
            elif self._has_worker():
                return False  # a change of a stream we keep: the usual way
            else:  # nobody else to ask: no worker to pass it to
                leg.feed(leg.session.reject_reinvite(488, leg.now(), headers=[(
                    "Warning", warning_value(f"m-line {index}: this change of the "
                                             f"{line.type} stream cannot be taken"))]))
                return True
        if not (added or declined or removed or updated):
            return False  # a refresh: the usual way answers it with what we have
        proposal = Proposal(secrets.token_hex(4), leg, offer, added, declined, removed, updated)
        if not added:
            self._answer(proposal, {})
            return True
        self.pending = proposal
        log.info("session %s: the remote party proposes %s", self.session.id,
                 ", ".join(kind.name for kind in added.values()))
        self.session.context.publish("session.proposal", {
            "id": self.session.id, "proposal": proposal.id, "state": "pending",
            "streams": [kind.name for kind in added.values()]})
        self.session.start_soon(self._expire, proposal)
        if self.session.account.auto_accept_chat and \
                all(kind.name == "chat" for kind in added.values()):
            self.session.start_soon(self._accept_by_itself, proposal)
        return True

    async def _accept_by_itself(self, proposal: Proposal) -> None:
        """The account accepts chat by itself (auto_accept_chat)."""
        if self.pending is proposal:
            try:
                await self.accept(proposal.id)
            except (SessionStateError, InvalidSessionParam) as exc:
                log.info("session %s: the proposal went: %s", self.session.id, exc)

    async def _expire(self, proposal: Proposal) -> None:
        with proposal.cancel:
            await trio.sleep(PROPOSAL_TIMEOUT)
            if self.pending is proposal:
                self._reject(proposal, "expired", "not answered in time")

    def _check_pending(self, proposal_id: str | None) -> Proposal:
        proposal = self.pending
        if proposal is None:
            raise SessionStateError(f"session {self.session.id} has no proposal to answer")
        if proposal_id is not None and proposal_id != proposal.id:
            raise InvalidSessionParam("proposal", f"the pending proposal is {proposal.id}, "
                                                  f"not {proposal_id}")
        if proposal.leg.session.terminated:
            self.pending = None
            raise SessionStateError(f"session {self.session.id} is over")
        return proposal

    async def accept(self, proposal_id: str | None = None) -> dict[str, Any]:
        proposal = self._check_pending(proposal_id)
        self.pending = None
        proposal.cancel.cancel()
        context = self.session.stream_context()
        answers: dict[int, tuple[Stream, MediaDescription]] = {}
        for index, kind in proposal.added.items():
            stream = kind.new_stream(context, index)
            try:
                answers[index] = (stream, await stream.answer(proposal.offer,
                                                              proposal.offer.media[index]))
            except StreamRefused as exc:
                log.info("session %s: proposed %s refused: %s", self.session.id, kind.name,
                         exc)
                proposal.declined.add(index)
        self._answer(proposal, answers)
        self._publish_outcome(proposal, "accepted")
        return {"id": self.session.id, "proposal": proposal.id,
                "streams": list(self.session.streams)}

    def reject(self, proposal_id: str | None = None) -> dict[str, Any]:
        proposal = self._check_pending(proposal_id)
        self._reject(proposal, "rejected", "declined by the user")
        return {"id": self.session.id, "proposal": proposal.id}

    def _reject(self, proposal: Proposal, state: str, why: str) -> None:
        self.pending = None
        proposal.cancel.cancel()
        leg = proposal.leg
        if not leg.closed and not leg.session.terminated:
            leg.feed(leg.session.reject_reinvite(488, leg.now(),
                                                 headers=[("Warning", warning_value(why))]))
        self._publish_outcome(proposal, state)

    def _publish_outcome(self, proposal: Proposal, state: str) -> None:
        self.session.context.publish("session.proposal", {
            "id": self.session.id, "proposal": proposal.id, "state": state,
            "streams": [kind.name for kind in proposal.added.values()]})

    def _answer(self, proposal: Proposal,
                answers: dict[int, tuple[Stream, MediaDescription]]) -> None:
        """Our answer: our description as it was, with the new streams' lines (port 0 for
        those declined) and port 0 for the removed ones; the new streams start at once (the
        offerer has all it needs once our 200 is out)."""
        session, leg = self.session, proposal.leg
        if leg.closed or leg.session.terminated:
            return
        local = self._local(leg)
        media: list[MediaDescription] = []
        for index, offered in enumerate(proposal.offer.media):
            if index in answers:
                media.append(answers[index][1])
            elif index in proposal.removed or index in proposal.declined \
                    or index >= len(local.media):
                media.append(offered.rejected())
            else:
                media.append(local.media[index])
        local.media = media
        leg.feed(leg.session.answer_reinvite(self._send(local), leg.now()))
        for index in proposal.removed:
            name = self._forget(index, "removed by the remote party")
            if name is not None:
                self._publish_streams("removed", name, "remote")
        for index, (stream, line) in answers.items():
            self._adopt(index, stream, line, proposal.offer.media[index])
            self._publish_streams("added", stream.kind.name, "remote")
        for index in proposal.updated:
            kept = session.lines.get(index)
            if kept is not None and index < len(local.media):
                session.start_soon(kept.update, local.media[index], proposal.offer.media[index])

    # -- ours ----------------------------------------------------------------------------------
    def _ready_leg(self) -> LegDriver:
        session = self.session
        session.check_established("changed")
        leg = session.outside
        assert leg is not None
        if self._own is not None or self.pending is not None or not leg.session.can_reinvite:
            raise SessionStateError(f"session {session.id} is changing already; try again "
                                    f"once that is over")
        return leg

    async def add(self, name: str) -> dict[str, Any]:
        session = self.session
        try:
            kind = session.context.streams.get(name)
        except UnknownStreamKind as exc:
            raise InvalidSessionParam("stream", str(exc)) from None
        if kind.uses_media_worker:
            raise InvalidSessionParam("stream", f"{name} cannot be added to a session once it "
                                                f"is up (start the session with it)")
        if name in session.streams:
            raise SessionStateError(f"session {session.id} carries {name} already")
        problem = kind.unavailable(session.context.resources)
        if problem is not None:
            raise SessionStateError(f"no {name} stream: {problem}")
        leg = self._ready_leg()
        local = self._local(leg)
        index = len(local.media)
        stream = kind.new_stream(session.stream_context(), index)
        try:
            line = await stream.offer()
        except StreamRefused as exc:
            raise SessionStateError(f"no {name} stream: {exc}") from None
        leg = self._ready_leg()  # still, after the wait
        local = self._local(leg)
        if index != len(local.media):
            await stream.end("the session changed meanwhile")
            raise SessionStateError(f"session {session.id} changed meanwhile; try again")
        local.media = [*local.media, line]
        self._own = _OwnChange(index, stream, line, "add")
        leg.feed(leg.session.reinvite(self._send(local), leg.now()))
        return {"id": session.id, "stream": name, "index": index}

    def remove(self, name: str) -> dict[str, Any]:
        session = self.session
        found = [(i, s) for i, s in session.lines.items() if s.kind.name == name]
        if not found:
            raise SessionStateError(f"session {session.id} has no {name} stream to remove "
                                    f"(its streams: {', '.join(session.streams) or 'none'})")
        index, stream = found[0]
        if len(session.streams) == 1:
            raise SessionStateError(f"{name} is the only stream of session {session.id}; end "
                                    f"the session instead")
        self._remove_line(self._ready_leg(), index, stream)
        return {"id": session.id, "stream": name, "index": index}

    def _remove_line(self, leg: LegDriver, index: int, stream: Stream) -> None:
        local = self._local(leg)
        line = local.media[index].rejected()
        local.media = [line if i == index else m for i, m in enumerate(local.media)]
        self._own = _OwnChange(index, stream, line, "remove")
        leg.feed(leg.session.reinvite(self._send(local), leg.now()))

    def leave(self, index: int, reason: str) -> None:
        """A stream whose work is over leaves the session (sipd.sessions.streams.base,
        StreamContext.leave): its line is removed as soon as a re-INVITE may go."""
        if index in self.session.lines:
            self.session.start_soon(self._remove_when_ready, index, reason)

    async def _remove_when_ready(self, index: int, reason: str) -> None:
        session = self.session
        with trio.move_on_after(REOFFER_WAIT):
            while True:
                leg, stream = session.outside, session.lines.get(index)
                if leg is None or leg.session.terminated or stream is None \
                        or stream.state is StreamState.ENDED:
                    return
                if self._own is None and self.pending is None and leg.session.can_reinvite:
                    break
                await session.settled(limit=1.0)
                await trio.sleep(0.1)
            log.info("session %s: the %s stream leaves it: %s", session.id, stream.kind.name,
                     reason)
            self._remove_line(leg, index, stream)
            return
        log.warning("session %s: the stream at line %d could not be removed within %g s; "
                    "the session ends", session.id, index, REOFFER_WAIT)
        session.end(reason)

    def completed(self, leg: LegDriver, action: ReinviteCompleted) -> bool:
        """The outcome of a re-INVITE on the outside leg: True when it was ours (here)."""
        own = self._own
        if own is None or leg is not self.session.outside:
            return False
        self._own = None
        session = self.session
        name = own.stream.kind.name
        if own.what == "update":
            if not action.accepted:
                log.warning("session %s: the remote party refused our new %s line: %s %s",
                            session.id, name, action.code, action.reason)
            return True
        if own.what == "remove":
            if action.accepted:
                self._forget(own.index, "removed")
                self._publish_streams("removed", name, "local")
            return True
        remote = None
        if action.accepted:
            try:
                media = sdp.parse(leg.session.remote_sdp).media
                remote = media[own.index] if own.index < len(media) else None
            except sdp.SdpMismatch:
                remote = None
        if remote is None or remote.is_rejected:
            why = action.reason if not action.accepted else "refused by the remote party"
            log.info("session %s: adding %s failed: %s", session.id, name, why)
            session.start_soon(own.stream.end, why)
            self._publish_streams("refused", name, "local", why,
                                  action.code if not action.accepted else None)
            return True
        self._adopt(own.index, own.stream, own.line, remote)
        self._publish_streams("added", name, "local")
        return True

    def line_changed(self, index: int, line: MediaDescription) -> None:
        """A stream's own line changed (its relay gave it a new a=path): offered to the
        remote party as soon as a re-INVITE may go."""
        session = self.session
        if index not in session.lines:
            return
        session.local_lines[index] = line
        session.start_soon(self._reoffer, index)

    async def _reoffer(self, index: int) -> None:
        session = self.session
        with trio.move_on_after(REOFFER_WAIT):
            while True:
                leg, stream = session.outside, session.lines.get(index)
                if leg is None or leg.session.terminated or stream is None:
                    return
                if self._own is None and self.pending is None and leg.session.can_reinvite:
                    break
                await session.settled(limit=1.0)
                await trio.sleep(0.1)
            local = self._local(leg)
            line = session.local_lines.get(index)
            if line is None or index >= len(local.media):
                return
            local.media = [line if i == index else m for i, m in enumerate(local.media)]
            self._own = _OwnChange(index, stream, line, "update")
            leg.feed(leg.session.reinvite(self._send(local), leg.now()))
            return
        log.warning("session %s: our new %s line could not be offered within %g s",
                    session.id, session.lines[index].kind.name if index in session.lines
                    else "stream", REOFFER_WAIT)

    # -- the session's lists -------------------------------------------------------------------
    def _adopt(self, index: int, stream: Stream, line: MediaDescription,
               remote: MediaDescription) -> None:
        session = self.session
        session.lines[index] = stream
        session.local_lines[index] = line
        session.streams.append(stream.kind.name)
        stream.state = StreamState.NEGOTIATING
        session.start_soon(stream.start, line, remote)

    def _forget(self, index: int, why: str) -> str | None:
        """The stream at `index` is gone from the session: its kind's name (None: none)."""
        session = self.session
        stream = session.lines.pop(index, None)
        session.local_lines.pop(index, None)
        if stream is None:
            return None
        if stream.kind.name in session.streams:
            session.streams.remove(stream.kind.name)
        if stream.state is not StreamState.ENDED:
            stream.state = StreamState.ENDED
            session.start_soon(stream.end, why)
        return stream.kind.name
