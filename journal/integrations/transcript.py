"""How an adapter stores a framework's message: readable text in the content, its form in metadata.

The journal's audit tools (``journal show``, ``journal log``, ``journal export --format md``)
print a message's role and content, and ``Journal.redact_message`` erases the content and
nothing else: the metadata is sealed in the hash chain and can never be erased. So an adapter
stores a framework message as one journal message with

- ``role``: the standard role, ``user``, ``assistant``, ``system`` or ``tool``
  (``standard_role``);
- ``content``: the message as a person reads it. Every value in it that the user or the model
  said sits there: the text, tool-call arguments (``[tool call: name(args)]``), tool output,
  reasoning, images and files (``[type: json]``), any other field carrying words
  (``[field: value]``);
- ``metadata[key]``: ``{"payload": ..., "spans": [...]}``: the framework's own form of the
  message with each of those values blanked, and where each one sits in the content. A span
  is ``[path, start, end, kind]``: the value at ``path`` in the payload is ``content[start:end]``
  as it stands (``kind`` "text") or parsed as JSON (``kind`` "json"). What the payload keeps is
  the shape of the message and its bookkeeping: its type, ids, tool names, status, token
  counts, the model's name.

Reading fills the spans back in and renders the result again: only if that gives the stored
content exactly is the result the message that was stored. A content that
``Journal.edit_message`` replaced, or that a redaction erased, does not, and the adapter reads
the payload as blanked (``blank``) with the new text instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import msgspec

from journal.core.events import thaw

__all__ = [
    "Key",
    "Transcript",
    "blank",
    "call",
    "fill",
    "marker_of",
    "parts",
    "rest",
    "restored",
    "silent",
    "standard_role",
]

Key: TypeAlias = "str | int"
"""One step of a path into a payload: a mapping's key or a list's index."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "chatbot": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
_TAGS = ("type", "block_type")  # the key naming a content part's kind, by framework
# Bookkeeping a text part may carry beside its text (a provider's id, a stream's index).
_PART_KEEP = frozenset({*_TAGS, "id", "index"})


def standard_role(name: object) -> str | None:
    """The standard role a framework's role or message type names; None if none fits."""
    return _ROLES.get(name.lower()) if isinstance(name, str) else None


def silent(value: object) -> bool:
    """Whether ``value`` says nothing: None, a bool, or empty, all the way down.

    Such a value stays in the payload. Numbers are not silent: a tool's arguments or a
    framework's extra fields may hold a user's numbers.
    """
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, Mapping):
        return all(silent(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(silent(v) for v in value)
    return isinstance(value, str) and not value


def _empty_like(value: object) -> Any:
    if isinstance(value, Mapping):
        return {}
    if isinstance(value, (list, tuple)):
        return []
    return "" if isinstance(value, str) else None


class Transcript:
    """The readable text of one payload, written piece by piece, and where its values sit."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self.spans: list[list[Any]] = []
        self._blanks: list[tuple[list[Key], Any]] = []

    @property
    def content(self) -> str:
        """The text written so far."""
        return "".join(self._parts)

    def write(self, text: str) -> None:
        """Write ``text``, which is no value of the payload (punctuation, a tool's name)."""
        self._parts.append(text)
        self._size += len(text)

    def line(self) -> None:
        """Start a new line, unless nothing is written yet."""
        if self._size:
            self.write("\n")

    def value(self, path: Sequence[Key], value: Any, blank: Any = None) -> None:
        """Write the payload's ``value`` at ``path``: a str as it stands, anything else as JSON.

        ``blank`` replaces it in the stored payload (default: an empty value of its type).

        Raises:
            TypeError, ValueError: ``value`` has no JSON form (nothing is written then).
        """
        if isinstance(value, str):
            text, kind = value, "text"
        else:
            text, kind = _encode(value).decode(), "json"
        start = self._size
        self.write(text)
        self.spans.append([list(path), start, self._size, kind])
        self._blanks.append((list(path), _empty_like(value) if blank is None else blank))

    def field(self, path: Sequence[Key], name: str, value: Any) -> None:
        """``[name: value]`` on a line of its own."""
        self.line()
        self.write(f"[{name}: ")
        self.value(path, value)
        self.write("]")

    def marker(self, payload: Any) -> dict[str, Any]:
        """What goes into the metadata: the payload with every written value blanked, and the
        spans."""
        skeleton = thaw(payload)
        for path, empty in self._blanks:
            _put(skeleton, path, empty)
        return {"payload": skeleton, "spans": self.spans}


def parts(t: Transcript, path: Sequence[Key], items: Sequence[Any], *, empty: Any) -> None:
    """Content parts, one per line: a text part as its text, any other as ``[type: ...]``.

    A text part is a str, or a mapping with a str ``text`` whose other members are its type tag,
    its id or index, or say nothing. Another part blanks to ``empty`` (an empty text part of the
    framework), so a redacted message is still a valid one.
    """
    for index, part in enumerate(items):
        t.line()
        here = [*path, index]
        if isinstance(part, str):
            t.value(here, part)
            continue
        if not isinstance(part, Mapping):
            t.write("[part: ")
            t.value(here, part, empty)
            t.write("]")
            continue
        tag = next((part[k] for k in _TAGS if isinstance(part.get(k), str)), "part")
        said = {k: v for k, v in part.items() if k not in _TAGS and not silent(v)}
        if isinstance(part.get("text"), str) and set(said) <= _PART_KEEP | {"text"}:
            t.value([*here, "text"], part["text"])
        elif len(said) == 1 and isinstance(next(iter(said.values())), str):
            # One string beside the tag ({"type": "refusal", "refusal": "..."}): as it stands.
            (name,) = said
            t.write(f"[{tag}: ")
            t.value([*here, name], said[name])
            t.write("]")
        else:
            t.write(f"[{tag}: ")
            t.value(here, part, empty)
            t.write("]")


def call(t: Transcript, path: Sequence[Key], name: object, args: object, *, blank: str = "") -> None:
    """A tool call, ``[tool call: name(args)]`` on a line of its own; ``path`` leads to ``args``.

    ``name`` is written as part of the text but stays in the payload (a tool's name is the
    application's, not something the user said); a str ``args`` is written as it stands and
    blanks to ``blank``.
    """
    t.line()
    t.write(f"[tool call: {name if isinstance(name, str) else ''}(")
    if isinstance(args, str):
        t.value(path, args, blank)
    elif args is not None:
        t.value(path, args)
    t.write(")]")


def rest(t: Transcript, path: Sequence[Key], members: Mapping[str, Any], keep: Iterable[str]) -> None:
    """Each member not in ``keep`` that says something, as ``[name: value]``."""
    kept = frozenset(keep)
    for name, value in members.items():
        if name not in kept and not silent(value):
            t.field([*path, name], str(name), value)


def _put(target: Any, path: Sequence[Any], value: Any) -> bool:
    """Set ``value`` at ``path`` (which must lead to an existing member); False if it does not."""
    if not path:
        return False
    try:
        for step in path[:-1]:
            target = target[step]
        last = path[-1]
        if isinstance(target, dict) and isinstance(last, str) and last in target:
            target[last] = value
            return True
        if isinstance(target, list) and type(last) is int and -len(target) <= last < len(target):
            target[last] = value
            return True
    except (LookupError, TypeError):
        pass
    return False


def marker_of(metadata: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The adapter's marker in ``metadata`` if it is this module's form (else None: an older
    form, or a message other code wrote)."""
    marker = metadata.get(key)
    if isinstance(marker, Mapping) and "payload" in marker and "spans" in marker:
        return marker
    return None


def fill(marker: Mapping[str, Any], content: str) -> Any | None:
    """The payload with each span's value taken from ``content``; None if a span does not fit."""
    payload = thaw(marker.get("payload"))
    spans = marker.get("spans")
    if not isinstance(spans, Sequence):
        return None
    for span in spans:
        if not isinstance(span, Sequence) or len(span) != 4:
            return None
        path, start, end, kind = span
        if not (type(start) is int and type(end) is int and 0 <= start <= end <= len(content)):
            return None
        piece = content[start:end]
        if kind == "json":
            try:
                value = _decode(piece)
            except msgspec.DecodeError:
                return None
        elif kind == "text":
            value = piece
        else:
            return None
        if not isinstance(path, Sequence) or not _put(payload, path, value):
            return None
    return payload


def restored(marker: Mapping[str, Any], content: str, render: Callable[[Any], Transcript]) -> Any | None:
    """The payload stored with ``content``, or None if ``content`` is not what it renders to
    (replaced by an edit, erased by a redaction)."""
    payload = fill(marker, content)
    if payload is None:
        return None
    again = render(payload)
    if again.content != content or again.spans != thaw(marker.get("spans")):
        return None
    return payload


def blank(marker: Mapping[str, Any]) -> Any:
    """The payload with every value the user or the model said blanked (a new copy)."""
    return thaw(marker.get("payload"))
