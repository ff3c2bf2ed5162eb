"""Multi-file changes of a session folder: one commit point, finished by the next writer.

A change that touches several files (``delete``, the archive case of ``repair``, erasing a
redacted message) first writes ``intent.json`` into the session folder, atomically (temporary
file, fsync, rename, folder fsync): from then on the change is decided, and whichever writer
next opens the session's log under its lock (or ``repair``, or ``verify``) carries it out
again from the start before doing anything else. Every step is idempotent, so a change
interrupted at any point, even twice, ends the same way. The intent is removed last.

* ``delete``: the commit point is the unlink of the active log, not the intent. The intent
  only says what a missing log means: with the log still there the delete never happened
  (the intent is dropped); without it the delete is finished (the folder goes).
* ``moves``: renames inside the folder, prepared files first (see ``repair``): each step
  is done if its source exists and skipped if only its destination does.
* ``erase``: the redaction event is already in the log; the erasure is run again.

An intent names files only inside its own folder: a path that would leave it (absolute,
``..``, anything but plain names) makes the intent unreadable, which reads as damage.
"""

from __future__ import annotations

import os
import re

import msgspec

from journal.backends.files.fsio import Folder
from journal.backends.files.layout import LOG_NAME
from journal.errors import CorruptLogError

__all__ = ["INTENT_NAME", "Delete", "Erase", "Intent", "Move", "Moves", "clear", "read", "run_moves", "write"]

INTENT_NAME = "intent.json"
_NAME = re.compile(r"^[A-Za-z0-9._~+-]+$")


class Move(msgspec.Struct, array_like=True, frozen=True):
    """Rename ``source`` to ``target`` (both relative to the session folder)."""

    source: str
    target: str


class Delete(msgspec.Struct, tag="delete", frozen=True):
    """The session is being deleted (decided once its log is unlinked)."""


class Moves(msgspec.Struct, tag="moves", frozen=True):
    """Renames, in order, then the active log cut at byte ``cut`` (``repair``'s switch)."""

    moves: tuple[Move, ...]
    cut: int | None = None


class Erase(msgspec.Struct, tag="erase", frozen=True):
    """Erase ``message_id``'s content from every line before seq ``by`` (its redaction)."""

    message_id: str
    by: int


Intent = Delete | Moves | Erase
_DECODER = msgspec.json.Decoder(Intent)


def write(folder: Folder, intent: Intent) -> None:
    """Record ``intent`` durably: after this returns, the change is decided."""
    folder.write_atomic(INTENT_NAME, msgspec.json.encode(intent) + b"\n")


def read(folder: Folder) -> Intent | None:
    """The pending intent of ``folder``, or None.

    Raises:
        CorruptLogError: the intent file exists but cannot be read (a symlink in its place
            included), or names a path outside its folder.
    """
    path = folder.path / INTENT_NAME
    try:
        data = folder.read(INTENT_NAME)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptLogError(str(path), 0, -1, f"pending change unreadable: {exc}") from None
    try:
        intent = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise CorruptLogError(str(path), 0, -1, f"pending change unreadable: {exc}") from None
    if isinstance(intent, Moves):
        for move in intent.moves:
            for name in (move.source, move.target):
                if not all(_NAME.match(part) and part not in (".", "..") for part in name.split("/")):
                    raise CorruptLogError(
                        str(path), 0, -1, f"pending change names {name!r}: not in its folder"
                    )
    return intent


def clear(folder: Folder) -> None:
    """Remove the intent once the change is complete (durably)."""
    try:
        folder.unlink(INTENT_NAME)
    except FileNotFoundError:
        return
    folder.fsync()


def run_moves(folder: Folder, switch: Moves) -> None:
    """Carry out ``switch``: moves already done (only the target exists) are skipped, and the
    cut shortens the log only if it is longer.

    Raises:
        CorruptLogError: neither the source nor the target of a move exists: something
            outside journal removed a file the change needs.
    """
    touched: dict[str, Folder] = {}
    for move in switch.moves:
        source, target = folder.resolve(move.source), folder.resolve(move.target)
        if source is not None and source[0].exists(source[1]):
            if target is None:
                raise CorruptLogError(
                    str(folder.path / INTENT_NAME),
                    0,
                    -1,
                    f"pending change: the folder of {move.target} is missing",
                )
            source[0].rename(source[1], target[0], target[1])
            touched.update({str(source[0].path): source[0], str(target[0].path): target[0]})
        elif target is None or not target[0].exists(target[1]):
            raise CorruptLogError(
                str(folder.path / INTENT_NAME),
                0,
                -1,
                f"pending change: neither {move.source} nor {move.target} exists",
            )
    for place in sorted(touched):
        touched[place].fsync()
    if switch.cut is not None:
        fd = folder.open(LOG_NAME, os.O_WRONLY)
        try:
            if os.fstat(fd).st_size > switch.cut:
                os.ftruncate(fd, switch.cut)
                os.fsync(fd)
        finally:
            os.close(fd)
