"""Redaction of stored data: which lines still hold a message's content, and erasing it.

Pure functions over stored bytes and states, shared by every backend: a redaction finds the
lines (and the retention base's state) that carry a message's content, and replaces each body
by ``{"redacted":N}`` of the same length (``codec.erase_body``), so the chain still verifies.
Quarantined copies failed a check and are matched loosely (``line_needles``, ``scrub_line``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from journal.core.codec import decode, erase_body
from journal.core.events import MessageAdded, MessageEdited
from journal.core.state import Session, evolve
from journal.errors import LineError

__all__ = ["MIN_NEEDLE", "content_of", "erased_state", "holds_content", "line_needles", "scrub_line"]


def erased_state(state: Session, message_id: str) -> Session | None:
    """``state`` with the visible message's content erased; None if it shows no such content."""
    index = state.messages_view.index_of(message_id)
    if index < 0 or state.messages_view[index].redacted:
        return None
    message = msgspec.structs.replace(state.messages_view[index], content="", redacted=True)
    return evolve(state, state.version, state.updated_at, state.messages_view.changed(index, message))


def _content_event(line: bytes, message_id: str, by: int) -> MessageAdded | MessageEdited | None:
    """The event of ``line`` if it still carries content of ``message_id`` from before ``by``."""
    if msgspec.json.encode(message_id) not in line:
        return None  # the cheap test first: almost every line is about another message
    try:
        event = decode(line).event
    except LineError:
        return None
    if (
        isinstance(event, (MessageAdded, MessageEdited))
        and event.message_id == message_id
        and event.redacted_by is None
        and event.seq < by
    ):
        return event
    return None


def holds_content(line: bytes, message_id: str, by: int) -> bool:
    """Whether ``line`` (a checked line) still carries content of ``message_id`` from before ``by``."""
    return _content_event(line, message_id, by) is not None


# Shorter contents match unrelated bytes: such a copy is only recognised by the message's id.
MIN_NEEDLE = 8


def line_needles(message_id: str, texts: Iterable[str]) -> list[bytes]:
    """What marks a stored line as the message's own: its id where a line states whose it is
    (other lines may name it, in a reply's metadata, an insertion or a removal), then each
    content (of at least ``MIN_NEEDLE`` characters), as JSON spells them."""
    own = b'"data":{"id":' + msgspec.json.encode(message_id)
    return [own, *(msgspec.json.encode(t)[1:-1] for t in texts if len(t) >= MIN_NEEDLE)]


def content_of(line: bytes, message_id: str, by: int) -> str | None:
    """The content ``line`` (a checked line) still carries of ``message_id`` from before ``by``."""
    event = _content_event(line, message_id, by)
    return None if event is None else event.content


def scrub_line(line: bytes, message_id: str, by: int, needles: Sequence[bytes]) -> bytes | None:
    """A quarantined line with the message's content erased; None to drop it (see above).

    ``needles``: from ``line_needles``, the message's own id first, then its contents.
    """
    if not any(n in line for n in needles):
        return line
    try:
        parsed = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None  # too damaged to tell whose it is or where its content is
    body = parsed.get("body") if isinstance(parsed, dict) else None
    if not isinstance(body, dict):
        # Its own line without a body (its removal) holds no content; a line holding the
        # content in a shape that has no body is dropped.
        return None if any(n in line for n in needles[1:]) else line
    if line.rfind(b',"hash":"') < 0:
        return None
    try:
        erased = erase_body(line, by)
    except ValueError:
        return None
    # The content may also sit outside the body (in damaged or forged sealed members).
    return None if any(n in erased for n in needles[1:]) else erased
