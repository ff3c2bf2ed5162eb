"""What users would pick instead of journal, driven the way a chat app would drive them."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder().decode


def rewrite_whole_file(path: Path, messages: list[dict[str, Any]]) -> None:
    """What chat apps do today after every change: write the whole session as one JSON file."""
    data = json.dumps({"messages": messages, "settings": {}}).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class SQLiteStore:
    """One table of messages; every append is its own transaction, as in a web request."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " session TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,"
            " PRIMARY KEY (session, seq))"
        )

    def append(self, session: str, seq: int, message: dict[str, Any]) -> None:
        with self.db:  # BEGIN ... COMMIT
            self.db.execute("INSERT INTO messages VALUES (?, ?, ?)", (session, seq, _ENCODE(message)))

    def load(self, session: str) -> list[Any]:
        rows = self.db.execute("SELECT body FROM messages WHERE session = ? ORDER BY seq", (session,))
        return [_DECODE(body) for (body,) in rows]

    def close(self) -> None:
        self.db.close()


def file_chat_history(path: Path, prefill: int = 0) -> Any | None:
    """LangChain's FileChatMessageHistory holding ``prefill`` messages, or None if not installed.

    The history file is written in one go in LangChain's own format: filling it through
    ``add_message`` would rewrite it once per message (quadratic), which is the very cost the
    append benchmark measures.
    """
    try:
        from langchain_community.chat_message_histories import FileChatMessageHistory
        from langchain_core.messages import messages_to_dict
    except ImportError:
        return None
    history = FileChatMessageHistory(str(path))
    if prefill:
        path.write_text(json.dumps(messages_to_dict([human_message("x" * 300)] * prefill)))
    return history


def human_message(content: str) -> Any:
    from langchain_core.messages import HumanMessage

    return HumanMessage(content=content)
