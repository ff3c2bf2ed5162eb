"""Hypothesis strategies for what the public API accepts, and for hostile inputs.

Use them in your own property tests: every value drawn from ``texts``, ``json_values``,
``metadata``, ``settings`` and ``session_ids`` is accepted by ``Journal`` and comes back
unchanged; ``invalid_session_ids`` are refused with ``InvalidSessionIdError``;
``event_sequences`` are valid histories (``replay`` accepts them); ``damaged_logs`` are real
log bytes with one kind of damage, which every read must reject.

Importing this module imports Hypothesis (the ``testing`` extra); ``import journal`` never does.
"""

from __future__ import annotations

import operator
import random
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from hypothesis import strategies as st

from journal.core.codec import GENESIS, encode
from journal.core.events import Cleared, Created, Event, MessageAdded, SettingsChanged, freeze

__all__ = [
    "HOSTILE_SESSION_IDS",
    "LINE_BREAKS",
    "Damage",
    "actors",
    "contents",
    "damaged_logs",
    "encode_log",
    "event_sequences",
    "invalid_session_ids",
    "json_objects",
    "json_values",
    "keys",
    "metadata",
    "roles",
    "session_ids",
    "settings",
    "short_texts",
    "texts",
]

HOSTILE_SESSION_IDS = (
    "chat",
    "Chat",  # the same slug as "chat": only the hash part of the folder name differs
    "CON",  # a reserved name on Windows
    "..",
    "../up",
    "a/b\\c",
    "/etc/passwd",
    "日本語",
    "🙂",
    "x" * 1024,  # the longest id allowed
    "line\u2028sep\n",
    "\x01ctl",
    " ",
    ".hidden",
    "~tilde~",
)
"""Ids that are valid but hostile to file systems and to naive path handling."""


# Every character some tool treats as a line break; the journal must treat them as plain text.
LINE_BREAKS = ("\n", "\r", "\r\n", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e")
# Characters with a meaning in JSON or in the line envelope, emoji, and the edges of Unicode.
AWKWARD = (
    "",
    '"',
    "\\",
    "}",
    "{",
    '","hash":"',
    '"}',
    "\x00",
    "\x1f",
    "\x7f",
    "\ufeff",
    "é",
    "🙂",
    "👩‍👩‍👧",
    "\U0010ffff",
)

short_texts = st.one_of(
    st.lists(st.sampled_from(LINE_BREAKS + AWKWARD) | st.text(max_size=6), max_size=5).map("".join),
    st.text(max_size=20),
)
"""Short strings mixing line breaks, JSON-significant characters, emoji and arbitrary text."""

texts = st.one_of(
    short_texts,
    st.text(),
    # Long: a short piece repeated into kilobytes.
    st.builds(operator.mul, st.text(min_size=1, max_size=4), st.integers(300, 3000)),
)
"""Message contents: short awkward strings, arbitrary text, and long texts."""

keys = short_texts
"""Mapping keys (any str, the empty one included)."""

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what JSON readers and MessagePack hold exactly
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
"""Values that survive JSON: nested dicts and lists of str, 64-bit int, finite float, bool, None."""

json_objects = st.dictionaries(keys, json_values, max_size=4)
"""JSON objects with str keys (metadata, settings changes)."""

actors = st.none() | st.sampled_from(["alice", "", "bob\u2028"]) | short_texts
"""Who made a change: None or any str."""

contents = texts
"""Message contents (an alias of ``texts``): empty, awkward, Unicode line separators, long."""

metadata = json_objects
"""Message metadata: JSON objects."""

settings = json_objects
"""Settings changes: JSON objects."""

roles = st.sampled_from(["user", "assistant", "system", "tool"]) | st.text(min_size=1, max_size=12)
"""Message roles: the usual four, and any non-empty str."""


def session_ids(*, hostile: bool = True) -> st.SearchStrategy[str]:
    """Valid session ids: ordinary ones, and with ``hostile`` also ``HOSTILE_SESSION_IDS`` and any text."""
    ordinary = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)
    if not hostile:
        return ordinary
    anything = st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=64
    )
    return ordinary | st.sampled_from(HOSTILE_SESSION_IDS) | anything


invalid_session_ids: st.SearchStrategy[Any] = st.sampled_from(
    ["", "a\x00b", "x" * 1025, "\ud800", 7, b"bytes"]
)
"""Values that are not session ids: every call refuses them with ``InvalidSessionIdError``."""

_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@st.composite
def event_sequences(draw: st.DrawFn, session_id: str | None = None, *, max_size: int = 30) -> list[Event]:
    """A valid history of one session: ``created`` first, seqs 1..n, times never going back."""
    sid = session_id if session_id is not None else draw(session_ids())
    at = _EPOCH + timedelta(seconds=draw(st.integers(0, 10**8)))
    events: list[Event] = [Created(seq=1, at=at, actor=draw(actors), session_id=sid)]
    for seq in range(2, draw(st.integers(1, max_size)) + 1):
        at += timedelta(microseconds=draw(st.integers(0, 10**7)))
        actor = draw(actors)
        kind = draw(st.sampled_from(["message", "message", "message", "settings", "cleared"]))
        if kind == "message":
            events.append(
                MessageAdded(
                    seq=seq,
                    at=at,
                    actor=actor,
                    message_id=f"m{seq}",
                    role=draw(roles),
                    content=draw(contents),
                    metadata=freeze(draw(metadata)),
                    references=freeze(draw(st.lists(json_values, max_size=2))),
                )
            )
        elif kind == "settings":
            changes = draw(settings)
            removed = tuple(draw(st.lists(keys, max_size=2)))
            events.append(
                SettingsChanged(seq=seq, at=at, actor=actor, changes=freeze(changes), removed=removed)
            )
        else:
            events.append(Cleared(seq=seq, at=at, actor=actor))
    return events


def encode_log(events: list[Event]) -> bytes:
    """The bytes of a log holding ``events`` (chained as a journal writes them)."""
    prev, lines = GENESIS, []
    for event in events:
        line, prev, _ = encode(event, prev)
        lines.append(line)
    return b"".join(lines)


class Damage(NamedTuple):
    """A log and one damage done to it.

    Attributes:
        events: the history the intact log holds.
        original: the intact log's bytes.
        damaged: the bytes after the damage.
        kind: ``flip`` (a byte changed), ``delete``, ``duplicate``, ``swap`` (lines), ``garbage``
            (a line replaced by junk).
        line: the 1-based line the damage is at (the first, for a swap).
    """

    events: list[Event]
    original: bytes
    damaged: bytes
    kind: str
    line: int


@st.composite
def damaged_logs(draw: st.DrawFn, session_id: str | None = None) -> Damage:
    """A valid log (of 3..20 events) with exactly one kind of damage that reads must reject.

    Every damage here is detectable from the log alone. Cuts are not: a cut at a line
    boundary leaves a shorter valid log, and a cut inside a line looks like a torn write;
    only an exported head or a snapshot tells them from a shorter history.
    """
    events = draw(event_sequences(session_id, max_size=20).filter(lambda e: len(e) >= 3))
    original = encode_log(events)
    lines = original.splitlines(keepends=True)
    kind = draw(st.sampled_from(["flip", "delete", "duplicate", "swap", "garbage"]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    # Damage before the last line: the last one's deletion or cut is a shorter, valid log.
    at = rng.randrange(len(lines) - 1)
    out = list(lines)
    if kind == "flip":
        line = bytearray(out[at])
        pos = rng.randrange(len(line) - 1)
        line[pos] ^= 1 << rng.randrange(8)
        out[at] = bytes(line)
    elif kind == "delete":
        del out[at]
    elif kind == "duplicate":
        out.insert(at + 1, out[at])
        at += 1
    elif kind == "swap":
        out[at], out[at + 1] = out[at + 1], out[at]
    elif kind == "garbage":
        out[at] = draw(st.binary(min_size=1, max_size=80)).replace(b"\n", b" ") + b"\n"
    return Damage(events, original, b"".join(out), kind, at + 1)
