"""What the ``journal`` command prints for people: event lines, tables, progress, errors.

Human output shows times in the local zone with their offset; JSON output keeps UTC RFC 3339
strings, as stored. Plain text and ``argparse`` only: the command starts fast and the library
needs nothing more.
"""

from __future__ import annotations

import re
import sys
import time
import unicodedata
from typing import Any, TextIO

import msgspec

from journal.backends.postgres.url import shown_url
from journal.copying import Copied
from journal.core import events as ev
from journal.core.state import Session
from journal.documents import local, one_line, to_json, visible

__all__ = [
    "Progress",
    "UsageError",
    "copied_doc",
    "copied_line",
    "copy_status",
    "counted",
    "cut",
    "display_width",
    "event_line",
    "pad",
    "safe_message",
]


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit code 2."""


def counted(n: int, noun: str) -> str:
    """``1 problem``, ``2 problems``: a count and its noun, in the number it needs."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def event_line(e: ev.Event, session_id: str | None = None) -> str:
    """One event for people: seq, local time, type, actor, and what it did."""
    who = f" by {one_line(e.actor, 10**6)}" if e.actor else ""
    where = f"{one_line(session_id, 10**6)} " if session_id is not None else ""
    head = f"{where}#{e.seq} {local(e.at)} {e.type}{who}"
    if isinstance(e, ev.MessageAdded):
        where = f" (before {visible(e.before[:8])})" if e.before else ""
        return f"{head}: {one_line(e.role, 10**6)}{where}: {_text(e.content, e.redacted_by)}"
    if isinstance(e, ev.MessageEdited):
        return f"{head}: message {visible(e.message_id[:8])}: {_text(e.content, e.redacted_by)}"
    if isinstance(e, ev.MessageRemoved):
        return f"{head}: message {visible(e.message_id[:8])} left the conversation"
    if isinstance(e, ev.MessageRedacted):
        return f"{head}: message {visible(e.message_id[:8])} erased: {one_line(e.reason)}"
    if isinstance(e, ev.SettingsChanged):
        parts = [f"{visible(k)}={visible(to_json(v))}" for k, v in e.changes.items()]
        parts += [f"-{visible(k)}" for k in e.removed]
        return f"{head}: {' '.join(parts)}"
    if isinstance(e, ev.Cleared):
        return f"{head}: the visible conversation was emptied"
    return head


def _text(content: str, redacted_by: int | None) -> str:
    return one_line(content) if redacted_by is None else f"[content erased by #{redacted_by}]"


def display_width(text: str) -> int:
    """How many terminal columns ``text`` takes: East Asian wide and fullwidth characters
    (CJK, most emoji) two, combining marks and other invisible format characters (zero
    width joiner, variation selectors) none, every other character one. Measure text after
    ``visible``: a control character has no width of its own to measure.

    An approximation of what terminals do, as ``wcwidth`` is: an emoji sequence joined by
    zero width joiners counts each of its emoji."""
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns: whole if it fits, else as much of its start as
    fits before a closing ``…`` (combining marks stay with the character they mark)."""
    if display_width(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + "…"


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` columns (by ``display_width``)."""
    return text + " " * max(0, width - display_width(text))


def copy_status(c: Copied) -> str:
    """``copied``, ``skipped`` or ``failed`` (copied, but the copy does not match the source)."""
    if c.skipped is not None:
        return "skipped"
    return "failed" if c.problems else "copied"


def copied_doc(c: Copied) -> dict[str, Any]:
    return {
        "session_id": c.session_id,
        "status": copy_status(c),
        "events": c.events,
        "head": None if c.head is None else msgspec.to_builtins(c.head),
        "skipped": c.skipped,
        "problems": [msgspec.to_builtins(p) for p in c.problems],
    }


def copied_line(c: Copied) -> str:
    """One session's outcome for people, then one indented line per problem of the copy."""
    sid = one_line(c.session_id, 10**6)
    if c.skipped is not None:
        return f"{sid}: skipped: {c.skipped}"
    line = f"{sid}: copied {c.events} events"
    if c.head is not None:
        line += f", verified at seq {c.head.seq} hash {c.head.hash}"
    if not c.problems:
        return line
    problems = "".join(f"\n  {p}" for p in c.problems)
    return f"{sid}: copied {c.events} events, but the copy differs from the source:{problems}"


# Any URL in a message (an argparse complaint quoting an argument, say) is shown without its
# passwords (user:pass@, password=, sslpassword=: see pgurl), since messages end up in logs.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def safe_message(text: str) -> str:
    """An error message on one line (driver messages span several) and without passwords."""
    flat = re.sub(r"\s*[\r\n]+\s*", " ", text.strip())
    return visible(_URL.sub(lambda url: shown_url(url.group(0)), flat))


def print_session(s: Session, out: TextIO, last: int | None = None) -> None:
    """The session for people; with ``last``, only its newest ``last`` messages."""
    print(f"session {one_line(s.id, 10**6)}  version {s.version}", file=out)
    print(f"created {local(s.created_at)}  updated {local(s.updated_at)}", file=out)
    if s.settings:
        print(f"settings {visible(to_json(s.settings))}", file=out)
    total = len(s.messages_view)
    shown = s.messages_view if last is None or last >= total else s.messages_view[-last:]
    newest = f", the newest {len(shown)} shown" if len(shown) < total else ""
    print(f"{counted(total, 'message')}{newest}", file=out)
    for m in shown:
        who = f" ({one_line(m.actor, 10**6)})" if m.actor else ""
        edited = f" (edited {local(m.edited_at)})" if m.edited_at is not None else ""
        print(f"\n[#{m.seq} {local(m.at)}] {one_line(m.role, 10**6)}{who}{edited}:", file=out)
        lines = ["[content erased]"] if m.redacted else m.content.splitlines() or [""]
        for line in lines:
            print(f"  {visible(line)}", file=out)


class Progress:
    """A progress bar on stderr when it is a terminal; silent otherwise (pipes, files, CI)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._last = 0.0
        self._drawn = 0

    def __call__(self, done: int, total: int, item: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.05:
            return  # at most 20 redraws a second
        self._last = now
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "." * (width - filled)
        text = f"\r{self.label} [{bar}] {done}/{total} {one_line(item, 30):<30}"
        self.stream.write(text)
        self._drawn = len(text)
        if done >= total:
            self.stream.write("\n")
            self._drawn = 0
        self.stream.flush()

    def clear(self) -> None:
        """Blank an unfinished bar, so a line printed next on the same terminal starts clean."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0
