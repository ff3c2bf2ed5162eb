"""LangGraph checkpointing: one step's put + put_writes, JournalSaver against SqliteSaver.

Both savers are driven the way LangGraph's loop drives them in a chat: each step stores a
checkpoint whose ``messages`` channel has grown by one exchange, then a task's pending writes
(the model's reply and a counter). JournalSaver runs on the files backend with its default
durability (``fsync="always"``); SqliteSaver on its own default (WAL, ``synchronous=FULL``,
a commit per call). The row is skipped with a note when either package is missing (extras
``dev`` or ``langgraph`` with ``langgraph-checkpoint-sqlite``).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import CONTENT, Row


def _cycles(saver: Any, steps: int) -> list[float]:
    """Seconds per step: put a checkpoint, then one task's writes against it."""
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.base.id import uuid6

    messages: list[Any] = []
    config: dict[str, Any] = {"configurable": {"thread_id": "bench", "checkpoint_ns": ""}}
    samples = []
    for step in range(steps):
        messages = [*messages, HumanMessage(CONTENT, id=f"h{step}"), AIMessage(CONTENT, id=f"a{step}")]
        checkpoint = {
            "v": 1,
            "id": str(uuid6(clock_seq=step)),
            "ts": datetime.now(timezone.utc).isoformat(),
            "channel_values": {"messages": messages, "step": step},
            "channel_versions": {"messages": step + 1, "step": step + 1},
            "versions_seen": {"chat": {"messages": step}},
            "updated_channels": ["messages", "step"],
        }
        metadata = {"source": "loop", "step": step, "parents": {}}
        start = time.perf_counter()
        stored = saver.put(config, checkpoint, metadata, {"messages": step + 1, "step": step + 1})
        saver.put_writes(
            stored,
            [("messages", [AIMessage(CONTENT, id=f"r{step}")]), ("step", step + 1)],
            task_id=f"task-{step}",
            task_path="chat",
        )
        samples.append(time.perf_counter() - start)
        config = stored
    return samples


def langgraph(tmp: Path, steps: int) -> list[Row]:
    """The LangGraph row, or none (with a note) when a package is missing."""
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver

        from journal import Journal
        from journal.integrations.langgraph import JournalSaver
    except ImportError as exc:
        print(f"note: LangGraph row skipped: {exc.name} is not installed (extra 'dev')")
        return []
    with Journal(tmp / "langgraph-journal") as journal:
        ours = _cycles(JournalSaver(journal), steps)
    conn = sqlite3.connect(tmp / "langgraph.sqlite", check_same_thread=False)
    try:
        theirs = _cycles(SqliteSaver(conn), steps)
    finally:
        conn.close()
    return [Row(f"LangGraph step (put + put_writes), {steps} steps", ours, "SqliteSaver", theirs)]
