"""Points in a session's history as people write them: a seq, a time, or an amount ago.

``parse_point`` is the one reader of that syntax: the ``journal`` command uses it for
``replay --at`` and ``diff A B``, and a web form or JSON field that lets people name a point
calls it too, so both accept exactly the same words on every Python version (it never
relies on ``datetime.fromisoformat``, whose leniency changed in Python 3.11).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from types import MappingProxyType

from journal.errors import InvalidValueError

__all__ = ["UNITS", "parse_point"]

UNITS: Mapping[str, timedelta] = MappingProxyType(
    {
        "s": timedelta(seconds=1),
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
        "w": timedelta(weeks=1),
        "y": timedelta(days=365),
    }
)
"""What each unit of an amount ago stands for (the keys in lower case; either case is read)."""

_FORMS = (
    "a seq (12), an RFC 3339 time with an offset (2026-11-29T14:02:00+01:00, ...Z) "
    "or an amount ago (-30s, -10m, -2h, -1.5d, -1w, -1y)"
)
_SEQ = re.compile(r"[0-9]+")
_MAX_SEQ = 2**63 - 1
# Sign, amount, unit: loose on purpose, so that each wrong part gets its own message.
_AGO = re.compile(r"([+-]?)([0-9]*(?:\.[0-9]*)?)([^\W\d_]*)")
_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
# An amount with more digits than this is beyond any datetime (and kept well away from the
# interpreter's limit on converting long digit strings to numbers).
_MAX_AMOUNT_DIGITS = 30
_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
_MICROSECOND = timedelta(microseconds=1)


def parse_point(text: str, now: datetime | None = None) -> int | datetime:
    """The seq or the moment ``text`` names, in the syntax of ``journal replay --at``.

    The forms, surrounding whitespace ignored:

    - a seq: ASCII digits (``12``), up to 2**63 - 1;
    - a time: RFC 3339 with an offset (``2026-11-29T14:02:00+01:00``, ``...Z``; ``t``, ``z``
      and a space for ``T`` too; seconds may be left out; digits beyond microseconds are cut).
      A time without an offset is refused: it would not name one moment;
    - an amount ago: ``-``, a whole or decimal number, a unit: ``s`` (seconds), ``m``
      (minutes), ``h`` (hours), ``d`` (days of 24 hours), ``w`` (weeks) or ``y`` (years of
      365 days), in either case: ``-30s``, ``-10m``, ``-2H``, ``-1.5d``, ``-1w``, ``-1y``.
      ``-0s`` is ``now``. There is no month: ``M`` is minutes, as ``m`` is.

    Pure: no I/O, nothing read from a journal. A seq is not checked against any session
    (``Journal.replay`` does that), and a time may lie in the future.

    Args:
        text: what a person typed.
        now: the moment an amount ago counts back from (an aware datetime); by default the
            current UTC time.

    Returns:
        An ``int`` for a seq; an aware ``datetime`` for a time (with the offset as written;
        in ``now``'s zone for an amount ago).

    Raises:
        InvalidValueError: ``text`` names no point (empty, a time without an offset, an
            unknown unit, a moment before year 1 or after 9999, ...), or ``now`` is naive.
            The reason quotes the text and names the accepted forms.
    """
    if not isinstance(text, str):
        raise InvalidValueError("point", f"must be a str, not {type(text).__name__}")
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        raise InvalidValueError("now", f"must be an aware datetime, not {now!r}")
    word = text.strip()
    if not word:
        raise InvalidValueError("point", f"empty: give {_FORMS}")
    if _SEQ.fullmatch(word):
        return _seq(word)
    ago = _AGO.fullmatch(word)
    if ago and (ago[1] or (ago[2] and ago[3])):
        return _ago(word, ago[1], ago[2], ago[3], now)
    if ago and ago[2]:
        raise InvalidValueError("point", f"{_shown(word)}: a seq is a whole number; give {_FORMS}")
    moment = _TIME.fullmatch(word)
    if moment:
        return _time(word, moment)
    raise InvalidValueError("point", f"{_shown(word)} is not {_FORMS}")


def _seq(word: str) -> int:
    if len(word) > 19 or int(word) > _MAX_SEQ:
        raise InvalidValueError("point", f"seq {_shown(word)} is out of range (at most {_MAX_SEQ})")
    return int(word)


def _ago(word: str, sign: str, amount: str, unit: str, now: datetime | None) -> datetime:
    shown = _shown(word)
    if sign != "-":
        hint = f"-{amount}{unit}" if amount and unit else "-2h"
        raise InvalidValueError("point", f"{shown}: an amount ago starts with '-' (write {hint})")
    if not amount:
        raise InvalidValueError("point", f"{shown}: no amount before the unit (write -2{unit or 'h'})")
    if not _AMOUNT.fullmatch(amount):
        raise InvalidValueError("point", f"{shown}: {amount!r} is not a number (write -2h or -1.5h)")
    if not unit:
        raise InvalidValueError("point", f"{shown}: no unit; units are {_unit_names()}")
    step = UNITS.get(unit.lower())
    if step is None:
        raise InvalidValueError("point", f"{shown}: unknown unit {unit!r}; units are {_unit_names()}")
    base = now if now is not None else datetime.now(timezone.utc)
    out_of_range = InvalidValueError("point", f"{shown} is out of range (before the year 1)")
    if len(amount.lstrip("0")) > _MAX_AMOUNT_DIGITS:
        raise out_of_range
    # Exact arithmetic, then rounded once to the microsecond: -1.5h is 5400 s exactly, and
    # -0.1s is 100 ms, not the float nearest to it.
    micros = round(Fraction(amount) * (step // _MICROSECOND))
    try:
        return base - timedelta(microseconds=micros)
    except OverflowError:
        raise out_of_range from None


def _time(word: str, found: re.Match[str]) -> datetime:
    shown = _shown(word)
    if found["hour"] is None:
        raise InvalidValueError(
            "point", f"{shown} is a date: give a time and an offset too (2026-11-29T00:00:00Z)"
        )
    if found["offset"] is None:
        raise InvalidValueError(
            "point", f"{shown} has no offset: add one (Z, +01:00) so that it names one moment"
        )
    offset = found["offset"]
    if offset in ("Z", "z"):
        zone = timezone.utc
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise InvalidValueError("point", f"{shown}: offset {offset} is out of range (-23:59..+23:59)")
        delta = timedelta(hours=hours, minutes=minutes)
        zone = timezone.utc if not delta else timezone(delta if offset[0] == "+" else -delta)
    year, month, day = (int(part) for part in found["date"].split("-"))
    fraction = (found["fraction"] or "")[:6].ljust(6, "0")
    try:
        return datetime(
            year,
            month,
            day,
            int(found["hour"]),
            int(found["minute"]),
            int(found["second"] or 0),
            int(fraction),
            tzinfo=zone,
        )
    except ValueError as exc:
        # datetime says which field: "month must be in 1..12", "second must be in 0..59" (no
        # leap seconds), "day is out of range for month".
        raise InvalidValueError("point", f"{shown} is not a valid time: {exc}") from None


def _unit_names() -> str:
    return "s, m, h, d, w, y (seconds, minutes, hours, days, weeks, years of 365 days)"


def _shown(word: str) -> str:
    shown = repr(word)
    return shown if len(shown) <= 60 else shown[:56] + "...'"
