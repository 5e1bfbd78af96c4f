"""The screen-sharing m-line (python-sipsimple's and Blink's screen-sharing stream):

    m=application 2855 TCP/TLS/MSRP *
    a=accept-types:application/x-rfb
    a=rfbsetup:passive          (the side that shares its screen: the RFB server)

    ours = rfbsetup_for(ScreenRole.SHARE)                 # Rfbsetup.PASSIVE
    role = answer_role(parse_rfbsetup(their_value))       # what we do when they offer
    ("rfbsetup", str(ours))                               # the attribute, as a (name, value) pair

`a=rfbsetup:passive` says "I am the RFB server" (I share my screen, the peer's viewer talks
to me); `active` says "I am the viewer". An offer without a=rfbsetup is taken as `active`,
as python-sipsimple takes it: the offerer wants to see, so the answerer shares. Each side
sends what its RFB end writes as MSRP messages of Content-Type application/x-rfb, with
Success-Report no and Failure-Report partial; what arrives is handed on chunk by chunk, in
order, whatever message it belongs to (RFB is one byte stream each way). The MSRP connection
itself (a=setup) is independent of these roles.
"""

from __future__ import annotations

import enum

CONTENT_TYPE = "application/x-rfb"
ACCEPT_TYPES = (CONTENT_TYPE,)
MEDIA = "application"
FAILURE_REPORT = "partial"  # errors only: RFB has its own flow, a 200 per chunk is noise


class ScreenSetupError(ValueError):
    """An a=rfbsetup we cannot use; the message says why (for a 488 Warning)."""


class Rfbsetup(enum.StrEnum):
    ACTIVE = "active"  # the RFB viewer
    PASSIVE = "passive"  # the RFB server: the side whose screen is shown


class ScreenRole(enum.StrEnum):
    SHARE = "share"  # our screen is shown: we bridge to a local VNC server
    VIEW = "view"  # we see theirs: a local viewer connects to us


def parse_rfbsetup(value: str | None) -> Rfbsetup:
    """The value of a=rfbsetup; a missing one is `active` (see the module documentation)."""
    if value is None or not value.strip():
        return Rfbsetup.ACTIVE
    try:
        return Rfbsetup(value.strip().lower())
    except ValueError:
        raise ScreenSetupError(f"bad a=rfbsetup {value.strip()!r} (active or passive)") \
            from None


def rfbsetup_for(role: ScreenRole) -> Rfbsetup:
    """Our a=rfbsetup for what we want to do."""
    return Rfbsetup.PASSIVE if role == ScreenRole.SHARE else Rfbsetup.ACTIVE


def role_of(setup: Rfbsetup) -> ScreenRole:
    """What a side that says `setup` does."""
    return ScreenRole.SHARE if setup == Rfbsetup.PASSIVE else ScreenRole.VIEW


def answer_role(offered: Rfbsetup) -> ScreenRole:
    """What we do when the offer says `offered`: the other half."""
    return ScreenRole.VIEW if offered == Rfbsetup.PASSIVE else ScreenRole.SHARE


def check_answer(ours: Rfbsetup, answered: Rfbsetup | None) -> None:
    """An answer must take the other role; ScreenSetupError when both want the same."""
    answered = Rfbsetup.ACTIVE if answered is None else answered
    if answered == ours:
        what = "share their screen" if ours == Rfbsetup.PASSIVE else "view"
        raise ScreenSetupError(f"both sides want to {what} (a=rfbsetup:{ours} on both)")


def attributes(role: ScreenRole) -> list[tuple[str, str | None]]:
    """Our screen-sharing attribute as a (name, value) pair (accept-types is MsrpMedia's)."""
    return [("rfbsetup", str(rfbsetup_for(role)))]
