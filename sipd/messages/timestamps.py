"""RFC 3339 timestamps, as CPIM's DateTime (RFC 3862) and is-composing's lastactive
(an xs:dateTime, RFC 3994) carry them.

Reading is tolerant of what real clients send — any number of fraction digits, `Z` or `z`,
an offset with or without its colon, a leap second — but a timestamp must say its time zone:
without one, the instant it names is unknown.
"""

from __future__ import annotations

import datetime
import re

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)


def parse_timestamp(text: str) -> datetime.datetime:
    """An aware datetime; ValueError (saying what is wrong) for anything else."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zulu, sign, off_hours, off_minutes = match.group(7, 8, 9, 10, 11)
    if not zulu and not sign:
        raise ValueError(f"date-time has no time zone: {text!r}")
    if zulu:
        tz = datetime.UTC
    else:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            raise ValueError(f"time zone offset out of range: {text!r}")
        offset = datetime.timedelta(hours=int(off_hours), minutes=int(off_minutes))
        tz = datetime.timezone(-offset if sign == "-" else offset)
    second = min(second, 59)  # a leap second (:60) is shown as :59; datetime has no :60
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        raise ValueError(f"date-time out of range: {text!r}") from None


def format_timestamp(moment: datetime.datetime) -> str:
    """`2024-01-01T10:00:00.000+00:00`: milliseconds and a numeric offset, as Blink, sipsimple
    and linphone read it. `moment` must be aware."""
    offset = moment.utcoffset()
    if moment.tzinfo is None or offset is None:
        raise ValueError("timestamp must be timezone-aware")
    if offset % datetime.timedelta(minutes=1):
        moment = moment.astimezone(datetime.UTC)  # RFC 3339 offsets have no seconds
    return moment.isoformat(timespec="milliseconds")
