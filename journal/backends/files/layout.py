"""Session id -> names under the root: the one place an id becomes a file name.

Every name the journal touches is built here from a validated session id, so no id can name a
file outside the root: the folder name is a lowercase slug of the id (for people reading
``ls``) followed by a SHA-256 of the exact id (for uniqueness), which survives
case-insensitive file systems and reserved names such as ``CON``. The original id is stored in
the session's ``created`` event, which is how ids are mapped back.

This module does no I/O: files and folders are reached through ``fsio`` (held folder
descriptors, no symlink followed below the root, files 0600 and folders 0700 whatever the
umask). ``Layout``'s paths name things in messages and for people.

Layout under the root::

    sessions/<slug>~<hash>/events.jsonl           the active log: the session's only *.jsonl file
    sessions/<slug>~<hash>/snapshot-<seq>.snap    cached folded state (see ``snapshot``)
    sessions/<slug>~<hash>/archive/<a>-<b>.jsonl.gz  pruned events a..b, byte for byte
    sessions/<slug>~<hash>/archive/base.snap      state of events dropped by a retention policy
    locks/<hash>.lock                             the session's writer lock (empty, never deleted)
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from journal.core.validate import check_session_id

__all__ = [
    "LOCKS_DIR",
    "LOG_NAME",
    "SESSIONS_DIR",
    "Layout",
    "dirname_for",
    "lock_name",
]

_SLUG_LEN = 40
_HASH_HEX = 32
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
LOG_NAME = "events.jsonl"
SESSIONS_DIR = "sessions"
LOCKS_DIR = "locks"


def id_hash(session_id: str) -> str:
    """The hex digest that names a session on disk."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:_HASH_HEX]


def dirname_for(session_id: str) -> str:
    """The folder name of a session: ``<slug>~<hash>``, safe on every file system."""
    slug = _UNSAFE.sub("-", session_id.lower()).strip("-")[:_SLUG_LEN].strip("-") or "id"
    return f"{slug}~{id_hash(session_id)}"


def lock_name(session_id: str) -> str:
    """The file name of a session's lock in ``locks/``."""
    return f"{id_hash(check_session_id(session_id))}.lock"


class Layout:
    """Where everything lives under one root, as paths (for messages; no I/O)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.sessions = self.root / SESSIONS_DIR
        self.locks = self.root / LOCKS_DIR

    def session_dir(self, session_id: str) -> Path:
        return self.sessions / dirname_for(check_session_id(session_id))

    def log_path(self, session_id: str) -> Path:
        return self.session_dir(session_id) / LOG_NAME

    def lock_path(self, session_id: str) -> Path:
        return self.locks / lock_name(session_id)
