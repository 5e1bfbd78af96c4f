"""RFC 5322 dates for a=file-date, without email.utils (which imports socket: a core does no
I/O and brings none in).

    format_date(datetime(2008, 11, 10, 10, tzinfo=UTC))  # 'Mon, 10 Nov 2008 10:00:00 +0000'
    parse_date("10 Nov 2008 11:00 +0100")                 # aware datetime; ValueError if bad

Liberal as RFC 5322 §4.3 asks: the day name is optional, seconds too, two- and three-digit
years, the obsolete zone names (UT, GMT, EST, EDT, CST, CDT, MST, MDT, PST, PDT) and folding
white space between the parts.
"""

from __future__ import annotations

import datetime
import re

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZONES = {"UT": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7,
          "MDT": -6, "PST": -8, "PDT": -7}
_DATE = re.compile(
    r"\s*(?:(?P<dayname>[A-Za-z]{3})\s*,\s*)?(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3})\s+"
    r"(?P<year>\d{2,4})\s+(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*"
    r"(?P<zone>[+-]\d{4}|[A-Za-z]{1,3})?\s*")


def format_date(when: datetime.datetime) -> str:
    """`when` (naive means UTC) as an RFC 5322 date-time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    offset = when.utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return (f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
            f"{sign}{minutes // 60:02d}{minutes % 60:02d}")


def parse_date(text: str) -> datetime.datetime:
    """An aware datetime; ValueError saying why when `text` is no RFC 5322 date-time."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 5322 date-time")
    month = match.group("month").capitalize()
    if month not in _MONTHS:
        raise ValueError(f"unknown month {match.group('month')!r}")
    year = int(match.group("year"))
    if len(match.group("year")) < 4:  # obsolete years (RFC 5322 §4.3)
        year += 2000 if year < 50 else 1900
    zone = (match.group("zone") or "+0000").upper()
    if zone[0] in "+-":
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        offset = datetime.timedelta(minutes=minutes if zone[0] == "+" else -minutes)
    elif zone in _ZONES:
        offset = datetime.timedelta(hours=_ZONES[zone])
    else:
        offset = datetime.timedelta()  # military and unknown zones: -0000, "unknown" (§4.3)
    return datetime.datetime(year, _MONTHS.index(month) + 1, int(match.group("day")),
                             int(match.group("hour")), int(match.group("minute")),
                             int(match.group("second") or 0),
                             tzinfo=datetime.timezone(offset))
