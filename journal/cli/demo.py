"""The scripted tour behind ``journal demo`` (and ``make demo``)."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from journal.core.events import Cleared, MessageAdded
from journal.core.state import Session
from journal.engine.journal import Journal

__all__ = ["run_demo"]

SESSION = "support-chat-42"
WRITERS = 4
MESSAGES_EACH = 5


def _writer(root: str, worker: int, start: object) -> None:
    # Each worker process opens its own Journal, like one gunicorn worker of a chat app.
    assert hasattr(start, "wait")
    start.wait()
    with Journal(root) as journal:
        for n in range(MESSAGES_EACH):
            journal.add_message(SESSION, "user", f"worker {worker}, message {n}", actor=f"worker-{worker}")


def _show(out: Callable[[str], None], title: str, session: Session) -> None:
    count = len(session.messages)
    noun = "message" if count == 1 else "messages"
    out(f"  {title}: version {session.version}, {count} {noun}, settings {dict(session.settings)}")
    for message in session.messages:
        out(f"    #{message.seq:<3} {message.role:<9} {message.content}")


def run_demo(root: str | None = None, out: Callable[[str], None] = print) -> int:
    """Run the tour in ``root``, or in a temporary folder removed afterwards when None;
    return an exit code."""
    if root is not None:
        return _tour(root, out, kept=True)
    with tempfile.TemporaryDirectory(prefix="journal-demo-") as temporary:
        code = _tour(temporary, out, kept=False)
    out(f"(the temporary folder {temporary} is removed: keep the data with `journal demo --root DIR`)")
    return code


def _tour(root: str, out: Callable[[str], None], *, kept: bool) -> int:
    out(f"journal demo: data in {root}\n")

    with Journal(root) as journal:
        out("1. Get or create a session, as a Flask view would, and talk in it")
        journal.get_or_create(SESSION)
        journal.update_settings(SESSION, {"model": "small-llm", "temperature": 0.2}, actor="alice")
        journal.add_message(SESSION, "user", "Hi! My order has not arrived.", actor="alice")
        journal.add_message(SESSION, "assistant", "Sorry to hear that. What is the order number?")
        early = journal.get(SESSION)
        _show(out, "now", early)

        out(f"\n2. {WRITERS} writer processes append {MESSAGES_EACH} messages each, all at once")
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        procs = [ctx.Process(target=_writer, args=(root, w, start)) for w in range(WRITERS)]
        for proc in procs:
            proc.start()
        start.set()
        for proc in procs:
            proc.join()
        if any(proc.exitcode != 0 for proc in procs):
            out("  a writer process failed")
            return 1
        session = journal.get(SESSION)
        seqs = [m.seq for m in session.messages]
        contiguous = [e.seq for e in journal.events(SESSION)] == list(range(1, session.version + 1))
        out(f"  {len(session.messages)} messages, seqs {seqs[0]}..{seqs[-1]}")
        out(f"  every seq 1..{session.version} present exactly once: {contiguous}")
        for worker in range(WRITERS):
            mine = [
                m.content.rsplit(" ", 1)[-1]
                for m in session.messages
                if m.content.startswith(f"worker {worker},")
            ]
            out(f"    worker {worker} wrote messages {', '.join(mine)} (in its own order)")

        out(f"\n3. Replay: the conversation as it was at seq {early.version}")
        _show(out, f"at seq {early.version}", journal.replay(SESSION, at=early.version))

        out("\n4. Clear the conversation; the audit history keeps everything")
        cleared = journal.clear(SESSION, actor="alice")
        _show(out, "after clear", cleared)
        events = list(journal.events(SESSION))
        added = sum(isinstance(e, MessageAdded) for e in events)
        clears = [e for e in events if isinstance(e, Cleared)]
        last = clears[-1]
        out(f"  the log still holds {len(events)} events ({added} messages)")
        out(f"  cleared at seq {last.seq} by {last.actor}")
        for event in events[:4]:
            who = f" by {event.actor}" if event.actor else ""
            out(f"    seq {event.seq:<3} {event.at:%H:%M:%S.%f} {event.type}{who}")
        out("    ...")

        log_file = next(Path(root, "sessions").glob("*/events.jsonl"))
        out(f"\n5. The log is plain JSON Lines, one event per line, each hashed and chained: {log_file}")
        first = log_file.read_text(encoding="utf-8").splitlines()[0]
        out(f"    {first[:150]}...")
        mode = oct(os.stat(log_file).st_mode & 0o777)
        out(f"    file mode {mode}" + (f"; try: jq -c '{{seq, type, actor}}' {log_file}" if kept else ""))
    out("\ndemo finished")
    return 0
