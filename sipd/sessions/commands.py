"""The commands on one established session (play, record, DTMF, transfer, hold): what they
check before anything reaches the call or its media worker, so that a bad path, digit or
target gets an error that names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from sipd.media.process import MediaWorkerError
from sipd.sip.uri import target_uri

from .b2bua import Call
from .streams.audio.files import MediaFileError, check_playable, check_recordable
from .b2bua_transfer import attended_target
from .errors import InvalidSessionParam, SessionStateError
from .invite.events import InviteSessionError

DTMF_DIGITS = frozenset("0123456789*#ABCD")
# pjmedia queues at most 32 digits per call (its tx_dtmf_buf) and refuses a request that
# would fill it with PJ_ETOOMANY.
MAX_DTMF_DIGITS = 31


class SessionCommands:
    """The part of the SessionManager (sipd.sessions.manager) that carries out commands."""

    def get(self, session_id: str) -> Call:  # pragma: no cover - the manager's
        raise NotImplementedError

    async def play(self, session_id: str, path: str, loop: bool) -> None:
        call = self.get(session_id)
        file = _absolute(path)
        _checked(check_playable, file)
        await call.command("play", file=file, loop=loop)

    async def record(self, session_id: str, path: str) -> None:
        call = self.get(session_id)
        file = _absolute(path)
        _checked(check_recordable, file)
        await call.command("record", file=file)
        call.recording = file

    async def send_dtmf(self, session_id: str, digits: str) -> None:
        call = self.get(session_id)
        if not digits or not set(digits) <= DTMF_DIGITS:
            raise InvalidSessionParam("digits", f"DTMF digits are 0-9, *, # and A-D, not "
                                                f"{digits!r}")
        if len(digits) > MAX_DTMF_DIGITS:
            raise InvalidSessionParam("digits", f"at most {MAX_DTMF_DIGITS} DTMF digits at a "
                                                f"time, not {len(digits)}")
        try:
            await call.command("dtmf", digits=digits)
        except MediaWorkerError as exc:
            if "ETOOMANY" not in str(exc):
                raise
            raise SessionStateError(f"the digits sent before are still going out (at most "
                                    f"{MAX_DTMF_DIGITS} wait at a time); send these once they "
                                    f"have gone") from None

    async def transfer(self, session_id: str, to: str | None = None,
                       replaces: str | None = None) -> dict[str, Any]:
        """Transfers the remote party of an established call: to `to` (blind), or to the
        remote party of our call `replaces` (attended: it is replaced by the new call).
        Progress comes as session.transfer events."""
        call = self.get(session_id)
        if (to is None) == (replaces is None):
            raise InvalidSessionParam("to", "give either to (blind transfer) or replaces "
                                            "(attended transfer), not both or neither")
        _check_established(call, "transferred")
        if call.transfers.busy:
            raise SessionStateError("a transfer of this call is already in progress")
        if replaces is not None:
            if replaces == session_id:
                raise InvalidSessionParam("replaces", "replaces must name another session "
                                                      "than the one transferred")
            other = self.get(replaces)
            _check_established(other, "the target of an attended transfer")
            attended = attended_target(other)
            if attended is None:
                raise SessionStateError(f"session {other.id}'s remote party has no sip: URI "
                                        f"to transfer to")
            uri, named = attended
        else:
            try:
                uri, named = target_uri(to or ""), None
            except ValueError as exc:
                raise InvalidSessionParam("to", str(exc)) from None
        try:
            return call.transfers.start(uri, named, replaces)
        except InviteSessionError as exc:
            raise SessionStateError(f"session {call.id} cannot be transferred now: {exc}") \
                from None

    async def hold(self, session_id: str, held: bool) -> None:
        call = self.get(session_id)
        if call.state != "established":
            raise SessionStateError(f"the call is {call.state}; only an established call can "
                                    f"be put on hold or taken off it")
        await call.settled()
        await call.command("hold" if held else "unhold")


def _check_established(call: Call, what: str) -> None:
    leg = call.outside
    if call.state != "established" or leg is None or leg.session.dialog is None:
        raise SessionStateError(f"session {call.id} is {call.state}; only an established call "
                                f"can be {what}")


def _checked(check: Callable[[str], None], path: str) -> None:
    try:
        check(path)
    except MediaFileError as exc:
        raise InvalidSessionParam("path", str(exc)) from None


def _absolute(path: str) -> str:
    if not path or not Path(path).is_absolute():
        raise InvalidSessionParam("path", f"{path!r} is not an absolute path (the daemon's "
                                          f"working directory means nothing to a client)")
    return path
