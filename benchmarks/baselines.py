"""What users would pick instead of journal, driven the way a chat app would drive them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder().decode


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


def file_chat_history(path: Path) -> Any | None:
    """LangChain's FileChatMessageHistory, or None when langchain-community is not installed."""
    try:
        from langchain_community.chat_message_histories import FileChatMessageHistory
    except ImportError:
        return None
    return FileChatMessageHistory(str(path))


def human_message(content: str) -> Any:
    from langchain_core.messages import HumanMessage

    return HumanMessage(content=content)
