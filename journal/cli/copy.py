"""``journal copy``: copy sessions with their whole history into another journal.

The one command that opens two journals, so it takes the arguments rather than an open
journal. A session that is damaged or vanishes in the source is reported and the copy goes
on; the exit code is 1 unless every session was copied and verified.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from journal.cli.open import open_journal, root_location
from journal.cli.render import Progress, UsageError, copied_doc, copied_line, copy_status
from journal.copying import Copied, copy_sessions
from journal.documents import to_json
from journal.engine.journal import Journal
from journal.errors import CorruptLogError, SessionNotFoundError

__all__ = ["cmd_copy"]


def cmd_copy(args: argparse.Namespace, out: TextIO) -> int:
    """``copy``: opens two journals, so it is called with the arguments rather than one journal."""
    with (
        open_journal(args.source or root_location(args), option="--from") as source,
        open_journal(args.target, option="--to", create=True) as target,
    ):
        if _same_journal(source, target, args.source or root_location(args), args.target):
            raise UsageError(f"--from and --to are the same journal ({source.root})")
        # Every named session is checked before anything is written: a typo copies nothing.
        ids = list(dict.fromkeys(args.sessions))
        for sid in ids:
            if not source.exists(sid):
                raise SessionNotFoundError(sid)
        if not ids:
            ids = list(source.sessions())
        progress = Progress("copy")
        results: list[Copied] = []
        for done, sid in enumerate(ids, 1):
            result = _copy_one(source, target, sid)
            results.append(result)
            progress.clear()
            if not args.json:
                print(copied_line(result), file=out, flush=True)
            progress(done, len(ids), sid)
        statuses = [copy_status(r) for r in results]
        counts = {status: statuses.count(status) for status in ("copied", "skipped", "failed")}
        events = sum(r.events for r in results if r.skipped is None)
        ok = counts["copied"] == len(results)
        if args.json:
            doc = {"from": source.root, "to": target.root, "ok": ok, "events": events}
            print(to_json(doc | counts | {"sessions": [copied_doc(r) for r in results]}), file=out)
        else:
            extra = "".join(f", {counts[k]} {k}" for k in ("skipped", "failed") if counts[k])
            print(
                f"copied {counts['copied']} of {len(results)} sessions ({events} events)"
                f" from {source.root} to {target.root}{extra}",
                file=out,
            )
    return 0 if ok else 1


def _copy_one(source: Journal, target: Journal, sid: str) -> Copied:
    """One session's copy; a damaged or vanished source session is reported, not fatal."""
    try:
        return copy_sessions(source, target, [sid])[0]
    except SessionNotFoundError:
        return Copied(sid, 0, None, "deleted from the source while copying", ())
    except CorruptLogError as exc:  # one damaged session must not stop the others
        return Copied(sid, 0, None, f"damaged in the source (verify, repair): {exc}", ())


def _same_journal(a: Journal, b: Journal, a_location: str, b_location: str) -> bool:
    if a.backend != b.backend:
        return False
    if a.backend == "postgres":
        return a_location == b_location
    return Path(a.root).resolve() == Path(b.root).resolve()
