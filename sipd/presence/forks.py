"""What a subscriber holds per SUBSCRIBE it sent: the attempt (one out-of-dialog SUBSCRIBE,
its dialog key, Timer N) and its forks (one dialog per notifier that answered or notified,
RFC 6665 §4.5.2), each with its own expiry and refresh time. Plain state with the small
rules that belong to it; sipd.presence.subscriber decides what to do with them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sipd.sip.dialog import Dialog, DialogState
from sipd.sip.header_values import Address
from sipd.sip.message import Request
from sipd.sip.uri import SipUri

from .actions import DialogKey
from .timing import (
    REFRESH_SPREAD,
    SHARED_RNG,
    RandomSource,
    refresh_delay,
    spread_refresh_delay,
)

__all__ = ["Attempt", "Fork"]


@dataclass
class Fork:
    """One dialog of the subscription: one notifier."""
    dialog: Dialog
    state: str | None = None     # active / pending, from its last NOTIFY
    notified: bool = False
    granted: int | None = None
    expires_at: float | None = None
    refresh_at: float | None = None
    refreshing: str | None = None  # the key of the refresh in flight
    unsubscribing: bool = False
    active_since: float | None = None

    def grant(self, seconds: int, now: float, rng: RandomSource = SHARED_RNG) -> None:
        """A 2xx granted `seconds`: the subscription runs from now (its refresh spread by
        `rng`)."""
        self.granted = seconds
        self.expires_at = now + seconds
        self.refresh_at = (now + spread_refresh_delay(seconds, rng, REFRESH_SPREAD)
                           if seconds > 0 else None)

    def remaining(self, seconds: int, now: float) -> None:
        """A NOTIFY says `seconds` are left (authoritative, RFC 6665 §4.1.2.4). Servers count
        down in every NOTIFY: recomputing the refresh from each would push it ever closer to
        the expiry, so a NOTIFY may bring the refresh forward, never put it off."""
        self.expires_at = now + seconds
        due = now + refresh_delay(seconds) if seconds > 0 else now
        if self.refreshing is None:
            self.refresh_at = due if self.refresh_at is None else min(self.refresh_at, due)
        if self.granted is None:
            self.granted = seconds


@dataclass
class Attempt:
    """One out-of-dialog SUBSCRIBE and the dialogs it made."""
    key: DialogKey
    request: Request             # as last sent (after a challenge: the authorised copy)
    forks: dict[str, Fork] = field(default_factory=dict)
    in_flight: str | None = None  # the key of the out-of-dialog SUBSCRIBE still unanswered
    timer_n: float | None = None

    def dialog_from_notify(self, notify: Request, contact: Address) -> Dialog:
        """A dialog made by a NOTIFY that came first (RFC 6665 §4.1.2.4): we are its UAC, but
        its route set and remote target come from the NOTIFY, as a UAS takes them."""
        sent = self.request
        remote = notify.from_
        local = sent.from_
        to = sent.to
        cseq = sent.cseq
        assert remote is not None and local is not None and to is not None and cseq is not None
        contacts = notify.contacts
        return Dialog(
            call_id=self.key.call_id, local_tag=self.key.local_tag,
            remote_tag=remote.tag or "", local_uri=local, remote_uri=to,
            remote_target=contacts[0].uri if contacts else sent.uri,
            route_set=notify.record_routes, local_seq=cseq.number,
            secure=isinstance(sent.uri, SipUri) and sent.uri.secure,
            local_contact=contact, state=DialogState.CONFIRMED, is_uac=True)
