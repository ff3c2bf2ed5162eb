"""``journal tail``: follow new events as other processes append them.

A folder is polled; PostgreSQL wakes the tail through its change feed, with a timed read of
everything followed only to make up for a lost notification. With ``-n N`` the newest N events
already written are printed first (like ``tail -n``), read up to the same versions the
following starts from, so no event is printed twice or skipped between the two.
"""

from __future__ import annotations

import argparse
import heapq
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

from journal.cli.render import UsageError, event_line, safe_message
from journal.core.events import Event
from journal.documents import event_doc, one_line, to_json
from journal.engine.journal import Journal
from journal.engine.storage import ChangeFeed
from journal.errors import JournalError, SessionNotFoundError, StorageError

__all__ = ["FILES_INTERVAL", "PG_INTERVAL", "cmd_tail"]

FILES_INTERVAL = 0.2
# Notifications wake a PostgreSQL tail; its timed read only makes up for a lost one, and
# over every session it costs a query each, so it runs less often than file polling.
PG_INTERVAL = 1.0
_UNREAD = -1  # in ``seen``: a session that could not be read when the tail started


class _Interrupt:
    """Ctrl-C ends a tail between reads, never inside one.

    A KeyboardInterrupt raised at an arbitrary point of a read can land between a lock's
    acquire and the block that releases it; closing the journal then waits for that lock
    forever. So SIGINT only raises while the tail waits (``waiting``); during a read it is
    noted, and the next wait raises at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self.safe = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.safe:
            raise KeyboardInterrupt

    @contextmanager
    def waiting(self) -> Iterator[None]:
        if self.requested:
            raise KeyboardInterrupt
        self.safe = True
        try:
            yield
        finally:
            self.safe = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        # Signal handlers belong to the main thread (main() may run elsewhere, as in tests).
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def cmd_tail(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    interrupt = _Interrupt()
    with interrupt.installed():
        return _follow(j, args, out, interrupt)


def _follow(j: Journal, args: argparse.Namespace, out: TextIO, interrupt: _Interrupt) -> int:
    if args.all == (args.id is not None):
        raise UsageError("tail needs a session id or --all (not both)")
    postgres = j.backend == "postgres"
    interval = args.interval
    if interval is None:
        interval = PG_INTERVAL if postgres else FILES_INTERVAL
    if not math.isfinite(interval) or not 0 < interval <= 3600:
        raise UsageError("--interval must be a number of seconds between 0 and 3600")
    # Listening starts before the first read: an append between the two is then both read
    # and notified, never neither.
    feed = _listen(j) if postgres else None
    # With --all, a session that cannot be read is reported once and the others followed; the
    # exit status says so at the end, as ``ls`` does.
    damaged: set[str] = set()  # unreadable now: named once until it reads again
    met: set[str] = set()  # unreadable at some point: the exit status

    def report(sid: str, exc: JournalError) -> None:
        if not args.all:
            raise exc
        met.add(sid)
        if sid not in damaged:
            damaged.add(sid)
            print(
                f"journal: {one_line(sid, 10**6)}: {safe_message(str(exc))} (following the others)",
                file=sys.stderr,
            )

    try:
        seen: dict[str, int] = {}
        for sid in j.sessions() if args.all else [args.id]:
            try:
                seen[sid] = _version(j, sid)
            except JournalError as exc:
                report(sid, exc)
                seen[sid] = _UNREAD
        if not args.all and seen[args.id] == 0:
            raise SessionNotFoundError(args.id)
        for sid, event in _history(j, seen, args.lines, report):
            print(_render(sid, event, args.json), file=out, flush=True)
        printed = 0
        due = time.monotonic() + interval  # the next read of everything followed
        woken: set[str] = set()
        while True:
            if time.monotonic() >= due or feed is None:
                if postgres and feed is None:
                    feed = _listen(j, required=False)  # lost earlier: listen again, then read
                due = time.monotonic() + interval
                sids = list(j.sessions()) if args.all else [args.id]
            else:
                # Woken (or timed out early, which costs one cheap read): the sessions named.
                sids = sorted(woken) if args.all else [args.id]
            for sid in sids:
                try:
                    for line in _new_lines(j, sid, seen, args.json):
                        print(line, file=out, flush=True)
                        printed += 1
                        if args.count and printed >= args.count:
                            return 1 if met else 0
                except JournalError as exc:
                    report(sid, exc)
                else:
                    damaged.discard(sid)  # readable again (repaired): report it if it breaks again
            if feed is None:
                if not postgres:
                    with interrupt.waiting():
                        time.sleep(interval)
                continue
            try:
                with interrupt.waiting():
                    woken = feed.wait(max(0.0, due - time.monotonic())) or set()
            except StorageError as exc:
                # The listening connection dropped: read on a timer until it is back.
                print(f"journal: {safe_message(str(exc))} (listening again)", file=sys.stderr)
                feed.close()
                feed = None
                with interrupt.waiting():
                    time.sleep(interval)
    except KeyboardInterrupt:
        return 1 if met else 0  # the usual way to stop following
    finally:
        if feed is not None:
            feed.close()


def _listen(j: Journal, *, required: bool = True) -> ChangeFeed | None:
    """The journal's change feed (None when it fails and is not ``required``)."""
    try:
        return j.storage.changes()
    except StorageError:
        if required:
            raise
        return None


def _history(
    j: Journal, seen: dict[str, int], lines: int, report: Callable[[str, JournalError], None]
) -> list[tuple[str, Event]]:
    """The newest ``lines`` events of the sessions in ``seen``, up to the version seen of each,
    oldest first. Across sessions they are merged by time; each session's keep their seq order
    (times of one session need not rise with its seqs: clocks of writers differ)."""
    if lines <= 0:
        return []
    kept: list[tuple[str, Event]] = []
    for sid, version in sorted(seen.items()):
        if version <= 0:
            continue  # absent, or unreadable when the tail started
        try:
            newest = [(sid, e) for e in j.events(sid, after=max(0, version - lines)) if e.seq <= version]
        except JournalError as exc:
            report(sid, exc)
            continue
        # Merged one session at a time, so that thousands of sessions hold only ``lines`` events.
        kept = list(heapq.merge(kept, newest, key=lambda item: item[1].at))[-lines:]
    return kept


def _render(sid: str, event: Event, as_json: bool) -> str:
    return to_json({"session_id": sid} | event_doc(event)) if as_json else event_line(event, sid)


def _new_lines(j: Journal, sid: str, seen: dict[str, int], as_json: bool) -> Iterator[str]:
    """The events of ``sid`` after the last one printed, rendered; ``seen`` moves along."""
    version = _version(j, sid)
    last = seen.get(sid, 0)
    if last == _UNREAD:  # unreadable when the tail started: follow from where it is now
        seen[sid] = version
        return
    if version < last:
        last = 0  # deleted and created again: a new history
    if version <= last:
        return
    for event in j.events(sid, after=last):
        seen[sid] = event.seq
        yield _render(sid, event, as_json)


def _version(j: Journal, sid: str) -> int:
    try:
        return j.get(sid).version
    except SessionNotFoundError:
        return 0
