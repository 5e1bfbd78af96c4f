"""RFC 3339 timestamps of CPIM DateTime and is-composing lastactive."""

from __future__ import annotations

import datetime

import pytest

from sipd.messages.timestamps import format_timestamp, parse_timestamp

UTC = datetime.UTC


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T10:00:00.000+00:00", datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("2024-01-01T10:00:00Z", datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("2024-01-01t10:00:00z", datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("2024-01-01 10:00:00+00:00", datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("2024-01-01T11:30:00+0130", datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("2000-12-13T13:40:00-08:00", datetime.datetime(2000, 12, 13, 21, 40, tzinfo=UTC)),
    ("2024-01-01T10:00:00.1234567891Z",
     datetime.datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2024-01-01T10:00:00.5Z", datetime.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", datetime.datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("  2024-01-01T10:00:00Z ", datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)),
])
def test_parse(text: str, expected: datetime.datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_offset_is_kept() -> None:
    parsed = parse_timestamp("2000-12-13T13:40:00-08:00")
    assert parsed.utcoffset() == datetime.timedelta(hours=-8)
    assert parsed.hour == 13


@pytest.mark.parametrize("text", [
    "2024-01-01T10:00:00",  # no time zone
    "2024-01-01",
    "2024-01-01T10:00Z",
    "2024-W01-1T10:00:00Z",  # ISO week dates are not RFC 3339
    "2024-02-30T10:00:00Z",
    "2024-01-01T25:00:00Z",
    "2024-01-01T10:00:00+24:00",
    "2024-01-01T10:00:00+00:60",
    "yesterday",
    "",
    "２０２４-01-01T10:00:00Z",  # non-ASCII digits
])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format() -> None:
    assert format_timestamp(datetime.datetime(2024, 1, 1, 10, tzinfo=UTC)) == (
        "2024-01-01T10:00:00.000+00:00")
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    assert format_timestamp(datetime.datetime(2024, 1, 1, 10, 0, 0, 987654, tzinfo=tz)) == (
        "2024-01-01T10:00:00.987+05:30")
    odd = datetime.timezone(datetime.timedelta(hours=1, seconds=7))  # not expressible
    assert format_timestamp(datetime.datetime(2024, 1, 1, 10, tzinfo=odd)) == (
        "2024-01-01T08:59:53.000+00:00")
    with pytest.raises(ValueError):
        format_timestamp(datetime.datetime(2024, 1, 1))
