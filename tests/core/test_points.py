"""``journal.parse_point``: the words people use for a point in a session's history.

The oracles are independent of the parser: ``datetime``'s own arithmetic and ``isoformat``
for the properties, and hand-written values for the examples. Every refusal must be an
``InvalidValueError`` (a ``ValueError``) whose reason quotes the input, never another error.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import journal
from journal import InvalidValueError, parse_point
from journal.core.points import UNITS

NOW = datetime(2026, 11, 29, 14, 2, 0, 500_000, tzinfo=timezone.utc)
UNIT_ARGS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def test_exported_from_the_package() -> None:
    assert journal.parse_point is parse_point
    assert "parse_point" in journal.__all__


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("12", 12),
        (" 12\n", 12),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
    ],
)
def test_digits_are_a_seq(text: str, expected: int) -> None:
    point = parse_point(text, NOW)
    assert type(point) is int
    assert point == expected


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("-30s", timedelta(seconds=30)),
        ("-10m", timedelta(minutes=10)),
        ("-10M", timedelta(minutes=10)),  # no months: M is minutes
        ("-2h", timedelta(hours=2)),
        ("-2H", timedelta(hours=2)),
        ("-1.5h", timedelta(minutes=90)),
        ("-.5d", timedelta(hours=12)),
        ("-0.25D", timedelta(hours=6)),
        ("-1w", timedelta(days=7)),
        ("-1W", timedelta(days=7)),
        ("-1y", timedelta(days=365)),
        ("-2Y", timedelta(days=730)),
        ("-0.1s", timedelta(milliseconds=100)),
        ("-0.0000004s", timedelta(0)),  # rounded to the microsecond
        ("-0.0000006s", timedelta(microseconds=1)),
        ("-0h", timedelta(0)),  # no time ago: now
        ("  -2h ", timedelta(hours=2)),
    ],
)
def test_an_amount_ago_counts_back_from_now(text: str, ago: timedelta) -> None:
    assert parse_point(text, NOW) == NOW - ago


def test_an_amount_ago_keeps_the_zone_of_now() -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    now = NOW.astimezone(kolkata)
    point = parse_point("-2h", now)
    assert point == NOW - timedelta(hours=2)
    assert isinstance(point, datetime)
    assert point.utcoffset() == timedelta(hours=5, minutes=30)


def test_now_defaults_to_the_current_utc_time() -> None:
    before = datetime.now(timezone.utc)
    point = parse_point("-1h")
    after = datetime.now(timezone.utc)
    assert isinstance(point, datetime)
    assert before - timedelta(hours=1) <= point <= after - timedelta(hours=1)
    assert point.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T14:02:00+01:00", datetime(2026, 11, 29, 13, 2, tzinfo=timezone.utc)),
        ("2026-11-29T14:02:00Z", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),
        ("2026-11-29t14:02:00z", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),
        ("2026-11-29 14:02:00-05:00", datetime(2026, 11, 29, 19, 2, tzinfo=timezone.utc)),
        ("2026-11-29T14:02Z", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),
        ("2026-11-29T14:02:03.25+00:00", datetime(2026, 11, 29, 14, 2, 3, 250_000, tzinfo=timezone.utc)),
        # Beyond microseconds: cut, not rounded up into the next microsecond.
        ("2026-11-29T14:02:03.1234569Z", datetime(2026, 11, 29, 14, 2, 3, 123_456, tzinfo=timezone.utc)),
        ("2026-11-29T14:02:00-00:00", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),
    ],
)
def test_rfc3339_times_name_their_moment(text: str, expected: datetime) -> None:
    point = parse_point(text, NOW)
    assert isinstance(point, datetime)
    assert point == expected
    assert point.utcoffset() is not None


def test_a_time_keeps_the_offset_it_was_written_with() -> None:
    point = parse_point("2026-11-29T14:02:00+05:30", NOW)
    assert isinstance(point, datetime)
    assert point.utcoffset() == timedelta(hours=5, minutes=30)
    assert (point.hour, point.minute) == (14, 2)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-h", "no amount"),
        ("-", "no amount"),
        ("-2x", "unknown unit 'x'"),
        ("-2min", "unknown unit 'min'"),
        ("-2", "no unit"),
        ("2h", "starts with '-'"),
        ("+2h", "starts with '-'"),
        ("-1.h", "not a number"),
        ("-.h", "not a number"),
        ("3.5", "whole number"),
        ("1e9", "is not a seq"),
        ("-1e9", "is not a seq"),
        ("yesterday", "is not a seq"),
        ("now", "is not a seq"),
        ("\uff11\uff12", "is not a seq"),  # fullwidth digits: not ASCII
        ("²", "is not a seq"),
        ("12 13", "is not a seq"),
        ("9" * 25, "out of range"),
        ("9223372036854775808", "out of range"),
        ("-99999999d", "out of range"),
        ("-10000y", "out of range"),
        ("-" + "9" * 5000 + "s", "out of range"),
        ("-" + "9" * 40 + ".5h", "out of range"),
        ("2026-11-29T14:02:00", "no offset"),
        ("2026-11-29 14:02", "no offset"),
        ("2026-11-29", "is a date"),
        ("2026-13-01T10:00:00Z", "month must be in 1..12"),
        ("2026-02-30T10:00:00Z", "day is out of range"),
        ("2026-01-01T24:00:00Z", "hour must be in 0..23"),
        ("2026-12-31T23:59:60Z", "second must be in 0..59"),
        ("0000-01-01T00:00:00Z", "year 0 is out of range"),
        ("2026-01-01T10:00:00+24:00", "offset +24:00 is out of range"),
        ("2026-01-01T10:00:00+0100", "is not a seq"),
        ("2026-W48-1T10:00:00Z", "is not a seq"),
    ],
)
def test_what_names_no_point_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_point(text, NOW)
    assert caught.value.field == "point"
    assert says in caught.value.reason, caught.value.reason
    assert isinstance(caught.value, ValueError)
    assert len(str(caught.value)) < 400  # a long input is shortened in the message
    if text.strip() and len(text) < 50:
        assert repr(text.strip()) in caught.value.reason


def test_the_message_names_every_accepted_form() -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_point("later", NOW)
    for form in ("seq", "RFC 3339", "-2h", "-1y", "Z"):
        assert form in str(caught.value), str(caught.value)


@pytest.mark.parametrize("value", [None, 12, 1.5, b"12", NOW])
def test_a_value_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidValueError, match="must be a str"):
        parse_point(value, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("now", [datetime(2026, 11, 29, 14, 2), "2026-11-29T14:02:00Z"])
def test_now_must_be_an_aware_datetime(now: object) -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_point("-2h", now)  # type: ignore[arg-type]
    assert caught.value.field == "now"


def test_units_are_exactly_the_documented_ones() -> None:
    assert dict(UNITS) == {
        "s": timedelta(seconds=1),
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
        "w": timedelta(days=7),
        "y": timedelta(days=365),
    }


# --- properties ---------------------------------------------------------------------------------

any_now = st.datetimes(timezones=st.just(timezone.utc))
# Late enough that 2,000 years ago is still a datetime.
late_now = st.datetimes(
    min_value=datetime(3000, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(timezone.utc)
)
units = st.sampled_from(["s", "m", "h", "d", "w", "y"])


def unit_step(unit: str) -> timedelta:
    return timedelta(days=365) if unit == "y" else timedelta(**{UNIT_ARGS[unit]: 1})


@given(n=st.integers(0, 10**6), unit=units, upper=st.booleans(), now=any_now)
def test_a_whole_amount_ago_is_now_minus_that_many_units(
    n: int, unit: str, upper: bool, now: datetime
) -> None:
    text = f"-{n}{unit.upper() if upper else unit}"
    try:
        expected = now - n * unit_step(unit)
    except OverflowError:  # before the year 1: refused, and said so
        with pytest.raises(InvalidValueError, match="out of range"):
            parse_point(text, now)
    else:
        assert parse_point(text, now) == expected


@given(
    whole=st.integers(0, 2000),
    fraction=st.text("0123456789", min_size=1, max_size=6),
    unit=units,
    now=late_now,
)
def test_a_decimal_amount_ago_agrees_with_float_arithmetic(
    whole: int, fraction: str, unit: str, now: datetime
) -> None:
    amount = f"{whole}.{fraction}"
    # The float product is off by its rounding error (one part in 2**52, plus timedelta's
    # rounding to the microsecond); the parser computes the exact product.
    ago = float(amount) * unit_step(unit)
    expected = now - ago
    point = parse_point(f"-{amount}{unit}", now)
    assert isinstance(point, datetime)
    assert abs(point - expected) <= timedelta(microseconds=1) + ago * 2**-50


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_isoformat_of_any_aware_time_reads_back_as_that_moment(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    point = parse_point(aware.isoformat(), NOW)
    assert point == aware
    assert isinstance(point, datetime)
    assert point.utcoffset() == aware.utcoffset()


@given(moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_a_utc_time_written_with_z_reads_back(moment: datetime) -> None:
    text = moment.isoformat() + "Z"
    assert parse_point(text, NOW) == moment.replace(tzinfo=timezone.utc)


@given(st.integers(0, 2**63 - 1))
def test_any_seq_reads_back(seq: int) -> None:
    assert parse_point(str(seq), NOW) == seq


@given(st.text(max_size=40))
def test_any_text_is_a_point_or_an_invalid_value_error(text: str) -> None:
    try:
        point = parse_point(text, NOW)
    except InvalidValueError as exc:
        refused = exc
    else:
        assert isinstance(point, (int, datetime))
        assert not isinstance(point, datetime) or point.utcoffset() is not None
        return
    assert refused.field == "point"
    assert refused.reason


@given(st.from_regex(r"\A[+-]?[0-9.]{0,8}[a-zA-Z]{0,3}\Z"))
def test_near_misses_of_an_amount_ago_are_a_point_or_an_invalid_value_error(text: str) -> None:
    try:
        point = parse_point(text, NOW)
    except InvalidValueError as exc:
        refused = exc
    else:
        assert isinstance(point, (int, datetime))
        return
    assert refused.field == "point"
