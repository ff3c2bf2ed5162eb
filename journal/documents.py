"""Sessions, messages and events as the documents people and tools read.

The JSON documents (``--json`` output, the viewer's API), the exports (``md``, ``json``,
``jsonl``), and the escaping that makes hostile text safe to show. The ``journal`` command and
the viewer both give these, so a download from the viewer and an export are the same bytes:
the one module of the outer ring that both import (the viewer imports nothing of the command).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import msgspec

from journal.core import events as ev
from journal.core.state import Message, Session
from journal.engine.journal import Journal
from journal.errors import SessionNotFoundError, VersionNotFoundError

__all__ = [
    "EXPORT_FORMATS",
    "event_doc",
    "export_text",
    "local",
    "markdown",
    "message_doc",
    "one_line",
    "printable",
    "session_doc",
    "to_json",
    "utc",
    "version_at",
    "visible",
]

EXPORT_FORMATS = ("md", "json", "jsonl")

_ENCODER = msgspec.json.Encoder()


def to_json(value: Any) -> str:
    """One JSON document (read-only mappings and tuples as objects and arrays). Text that is
    not Unicode (a stored name's bytes that were not UTF-8) comes out as ``printable`` shows
    it."""
    try:
        return _ENCODER.encode(value).decode("utf-8")
    except UnicodeEncodeError:
        return _ENCODER.encode(_printable(msgspec.to_builtins(value))).decode("utf-8")


def printable(text: str) -> str:
    """``text`` as valid Unicode: bytes a file name held that were not UTF-8 (which Python
    keeps as lone surrogates, and no page or JSON can carry) as backslash escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(k) if isinstance(k, str) else k: _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


def utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def local(at: datetime) -> str:
    """A time in the local zone, with its offset, to the second."""
    return at.astimezone().isoformat(timespec="seconds")


def message_doc(m: Message) -> dict[str, Any]:
    """The message as JSON: its own ``to_dict()``, the one plain form of a message."""
    return m.to_dict()


def session_doc(s: Session, last: int | None = None) -> dict[str, Any]:
    """The session as JSON; with ``last``, only its newest ``last`` messages, and how many it
    holds in all (``message_count``)."""
    messages = s.messages_view if last is None else s.messages_view[-last:]
    doc = {
        "id": s.id,
        "version": s.version,
        "created_at": utc(s.created_at),
        "updated_at": utc(s.updated_at),
        "settings": s.settings,
        "messages": [message_doc(m) for m in messages],
    }
    return doc if last is None else doc | {"message_count": len(s.messages_view)}


def event_doc(e: ev.Event) -> dict[str, Any]:
    """Every field of the event, under its own name, after its seq, type, time and actor."""
    doc: dict[str, Any] = {"seq": e.seq, "type": e.type, "at": utc(e.at), "actor": e.actor}
    for name, value in msgspec.structs.asdict(e).items():
        doc.setdefault(name, value)
    return doc


def one_line(text: str, width: int = 200) -> str:
    """Text on one line (line breaks shown as ⏎), shortened to ``width`` characters, with
    every other control character shown (``visible``)."""
    flat = visible(re.sub(r"\r\n|[\n\r\u2028\u2029\u0085\x0b\x0c]", " ⏎ ", text))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# What a terminal acts on instead of showing: C0 controls but tab and line feed (escape
# sequences start with ESC; CR rewrites a line), DEL, C1 controls, and the bidirectional
# overrides and isolates that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` safe to print on a terminal: each control character that would act on the
    screen (clear it, recolour it, move the cursor, reorder text) is shown as its escape
    (``\\x1b``, ``\\u202e``) instead. Chat content, roles, actors and ids are hostile input:
    every human output goes through this; ``--json`` output is exact (JSON escapes them)."""
    return _CONTROL.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def markdown(s: Session) -> str:
    """The session as ``journal export --format md`` writes it: a transcript for people."""
    lines = [f"# Session {one_line(s.id, 10**6)}", ""]
    lines.append(f"- version {s.version}, created {local(s.created_at)}, updated {local(s.updated_at)}")
    if s.settings:
        lines.append(f"- settings: `{visible(to_json(s.settings))}`")
    for m in s.messages_view:
        who = f" ({one_line(m.actor, 10**6)})" if m.actor else ""
        text = "*[content erased]*" if m.redacted else visible(m.content)
        lines += ["", f"## {one_line(m.role, 10**6)}{who} · #{m.seq} · {local(m.at)}", "", text]
    return "\n".join(lines) + "\n"


def export_text(journal: Journal, session_id: str, fmt: str) -> str:
    """The session as ``journal export ID --format fmt`` gives it: ``jsonl`` every event,
    ``json`` the current state, ``md`` the transcript (``markdown``).

    Raises:
        ValueError: ``fmt`` is not one of ``EXPORT_FORMATS``.
        SessionNotFoundError: no such session.
    """
    if fmt == "jsonl":
        return "".join(to_json(event_doc(e)) + "\n" for e in journal.events(session_id))
    if fmt == "json":
        return to_json(session_doc(journal.get(session_id))) + "\n"
    if fmt == "md":
        return markdown(journal.get(session_id))
    raise ValueError(f"unknown export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")


def version_at(j: Journal, sid: str, point: int | datetime) -> int:
    """The session's version at ``point`` (0: before it existed); a seq past its end raises
    VersionNotFoundError. For ``journal diff`` and the viewer's diff."""
    if isinstance(point, int):
        version = j.get(sid).version
        if point > version:
            raise VersionNotFoundError(sid, point, version)
        return point
    try:
        return j.replay(sid, at=point).version
    except SessionNotFoundError:
        return 0  # before the session existed
