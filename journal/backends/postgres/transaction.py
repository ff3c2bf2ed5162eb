"""The PostgreSQL backend's write transaction: one session held through an advisory lock.

``PgTransaction`` is ``storage.Transaction`` for ``pgstore``: a pooled connection holding the
session's session-level advisory lock (released by the server if the connection dies), which
reads what others appended, appends in one transaction, retries an append whose commit was
cut off (by seq and hash, never twice), prunes, applies retention, erases redacted content,
and checks and repairs the stored rows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from journal.backends.postgres.pool import Pool
from journal.backends.postgres.rows import (
    SEP,
    head_at,
    line_type,
    load_base,
    lock_key,
    newest_snapshot,
    psycopg_modules,
    read_rows,
    record_of,
    stamp_of,
    write_snapshot,
)
from journal.core.chain import ChainCheck, Fold, History
from journal.core.codec import decode, erase_body
from journal.core.head import Head, Line
from journal.core.redaction import content_of, erased_state, line_needles, scrub_line
from journal.core.reports import Anchor, RepairReport
from journal.core.snapshot import decode_snapshot, encode_snapshot
from journal.core.state import Session
from journal.engine.storage import Batch, Exported, Pruned, Stamp
from journal.errors import LockTimeoutError, SessionExistsError, StaleHeadError, StorageError

__all__ = ["PgTransaction"]

log = logging.getLogger("journal")


class PgTransaction:
    """One session held exclusively (``storage.Transaction``): a pooled connection holding the
    session's advisory lock."""

    def __init__(self, pool: Pool, session_id: str) -> None:
        self.pool = pool
        self.sid = session_id
        self.where = pool.location(session_id)
        self.conn: Any = None
        self._cm: Any = None

    def __enter__(self) -> PgTransaction:
        self._acquire()
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        psycopg, _ = psycopg_modules()
        if isinstance(exc, psycopg.OperationalError):
            # The connection failed under the lock (which the server released with it).
            self._release(exc)
            raise StorageError("write", self.where, self.pool.said(exc)) from None
        self._release()

    def _acquire(self) -> None:
        psycopg, _ = psycopg_modules()
        self._cm = self.pool.connection("lock")
        self.conn = self._cm.__enter__()
        timeout = self.pool.lock_timeout
        try:
            if timeout == 0:  # PostgreSQL reads a lock_timeout of 0 as "wait forever"
                if not self.conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(self.sid)]).fetchone()[
                    0
                ]:
                    raise psycopg.errors.LockNotAvailable()
            else:
                # Negative waits forever (0 to the server); a positive wait is at least 1 ms.
                wait = 0 if timeout < 0 else max(1, int(timeout * 1000))
                self.conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{wait}ms"])
                self.conn.execute("SELECT pg_advisory_lock(%s)", [lock_key(self.sid)])
        except psycopg.errors.LockNotAvailable:
            self._release()
            raise LockTimeoutError(self.where, timeout) from None
        except psycopg.OperationalError as exc:
            self._release(exc)
            raise StorageError("lock", self.where, self.pool.said(exc)) from None
        except BaseException as exc:
            self._release(exc)
            raise

    def _release(self, exc: BaseException | None = None) -> None:
        cm, self._cm = self._cm, None
        if cm is None:
            return
        psycopg, _ = psycopg_modules()
        try:
            if exc is None and not self.conn.closed:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(self.sid)])
        except psycopg.Error:
            pass  # the connection is gone, and the server released the lock with it
        finally:
            self.conn = None
            cm.__exit__(None, None, None)

    def _reconnect(self) -> None:
        """After a dropped connection: a new one, holding the lock again."""
        self._release(ConnectionError())
        self._acquire()

    # -- reads -----------------------------------------------------------------------------

    def read(self, after: Head | None) -> Batch:
        batch = read_rows(self.conn, self.where, self.sid, after)
        return (
            batch
            if batch.stamp is not None or batch.damage is not None
            else msgspec.structs.replace(batch, stamp=self._stamp())
        )

    def snapshot(self) -> tuple[Session, Head] | None:
        return newest_snapshot(self.conn, self.where, self.sid)

    def history(self, resume: Head | None = None) -> History:
        # On this connection: another one from the pool could wait on writers holding the rest.
        base = load_base(self.conn, self.where, self.sid)
        batch = read_rows(
            self.conn, self.where, self.sid, None if base is None else base[1], check_after=False
        )
        return (None if base is None else base[0], None if base is None else base[1], batch.checked())

    def save_snapshot(self, state: Session, head: Head) -> None:
        """See ``Transaction.save_snapshot``: only while the event at ``head`` is stored with its
        hash and no redaction followed it."""
        agrees = self.conn.execute(
            "SELECT 1 FROM journal_events WHERE session_id = %s AND seq = %s AND hash = %s",
            [self.sid, head.seq, head.hash],
        ).fetchone()
        redacted = self.conn.execute(
            "SELECT 1 FROM journal_events WHERE session_id = %s AND seq > %s"
            " AND type = 'message_redacted' LIMIT 1",
            [self.sid, head.seq],
        ).fetchone()
        if agrees and not redacted:
            write_snapshot(self.conn, self.sid, head.seq, encode_snapshot(state, head))

    # -- writes ----------------------------------------------------------------------------

    def _row(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT incarnation, generation, last_seq, active_from FROM journal_sessions WHERE id = %s",
            [self.sid],
        ).fetchone()
        return row

    def _stamp(self) -> Stamp:
        row = self._row()
        return () if row is None else stamp_of(row)

    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        psycopg, _ = psycopg_modules()
        start = 0 if after is None else after.seq
        row: tuple[Any, ...] | None = None
        try:
            row = self._insert(start, lines)
        except psycopg.errors.UniqueViolation:
            raise StaleHeadError() from None
        except psycopg.OperationalError as exc:
            # The commit's fate is unknown: look for the rows under the lock, by seq and hash.
            log.warning(
                "%s: connection lost during an append (%s); checking what landed",
                self.where,
                self.pool.said(exc),
            )
            try:
                self._reconnect()
                landed = self._landed(lines)
                if landed == len(lines):
                    row = self._row()
                elif landed == 0 and self._last_seq() == start:
                    row = self._insert(start, lines)
                else:
                    raise StorageError(
                        "append", self.where, "connection lost; another writer appended since: retry"
                    )
            except psycopg.Error as again:
                if self._stored(lines):
                    row = None  # stored: the append succeeded; only the stamp is unknown
                else:
                    raise StorageError("append", self.where, self.pool.said(again)) from None
        last = lines[-1]
        if row is None:
            # A stamp that matches nothing: the next read checks the store again.
            return head_at(last.seq, last.hash, 1), (-1,)
        return head_at(last.seq, last.hash, int(row[3])), stamp_of(row)

    def _stored(self, lines: Sequence[Line]) -> bool:
        """Whether every line is stored, asked on a fresh connection (the last one failed)."""
        psycopg, _ = psycopg_modules()
        try:
            with self.pool.connection("append") as conn:
                rows = conn.execute(
                    "SELECT seq, hash FROM journal_events WHERE session_id = %s AND seq = ANY(%s)",
                    [self.sid, [line.seq for line in lines]],
                ).fetchall()
        except (StorageError, psycopg.Error):
            return False
        return {(seq, digest) for seq, digest in rows} == {(line.seq, line.hash) for line in lines}

    def _last_seq(self) -> int:
        row = self._row()
        return 0 if row is None else int(row[2])

    def _landed(self, lines: Sequence[Line]) -> int:
        rows = self.conn.execute(
            "SELECT seq, hash FROM journal_events WHERE session_id = %s AND seq = ANY(%s)",
            [self.sid, [line.seq for line in lines]],
        ).fetchall()
        want = {line.seq: line.hash for line in lines}
        return sum(1 for seq, digest in rows if want.get(seq) == digest)

    def _insert(self, start: int, lines: Sequence[Line]) -> tuple[Any, ...]:
        with self.conn.transaction():
            row = self._row()
            if (0 if row is None else row[2]) != start:
                raise StaleHeadError()
            if row is None or start == 0:
                # A new session (or one whose create crashed): a new incarnation.
                self.conn.execute(
                    "INSERT INTO journal_sessions (id, incarnation, last_seq) VALUES (%s, %s, 0)"
                    " ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,"
                    " generation = journal_sessions.generation + 1",
                    [self.sid, uuid.uuid4()],
                )
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO journal_events (session_id, seq, hash, type, line)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [(self.sid, line.seq, line.hash, line_type(line.data), line.data[:-1]) for line in lines],
                )
            row = self.conn.execute(
                "UPDATE journal_sessions SET last_seq = %s WHERE id = %s"
                " RETURNING incarnation, generation, last_seq, active_from",
                [lines[-1].seq, self.sid],
            ).fetchone()
            self.conn.execute("SELECT pg_notify('journal', current_schema() || %s || %s)", [SEP, self.sid])
        return tuple(row)

    def export(self) -> Exported:
        """See ``Transaction.export``."""
        base = load_base(self.conn, self.where, self.sid)
        after = None if base is None else base[1]
        data = self.conn.execute(
            "SELECT data FROM journal_bases WHERE session_id = %s", [self.sid]
        ).fetchone()
        lines = []
        for seq, line in self.conn.execute(
            "SELECT seq, line FROM journal_events WHERE session_id = %s ORDER BY seq", [self.sid]
        ).fetchall():
            after = record_of(bytes(line), after, self.where, seq).head
            lines.append(bytes(line))
        return Exported(None if data is None else bytes(data[0]), lines)

    def restore(self, exported: Exported) -> None:
        """See ``Transaction.restore``: one transaction, so a failed import leaves nothing."""
        with self.conn.transaction():
            row = self._row()
            if row is not None and row[2] > 0:
                raise SessionExistsError(self.sid, 0, int(row[2]))
            if exported.base is not None:
                _, head = decode_snapshot(exported.base, kind="base")
                self.conn.execute(
                    "INSERT INTO journal_bases (session_id, seq, data) VALUES (%s, %s, %s)"
                    " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                    [self.sid, head.seq, exported.base],
                )
            last = 0
            with self.conn.cursor() as cur:
                for line in exported.lines:
                    decoded = decode(line)
                    last = decoded.event.seq
                    cur.execute(
                        "INSERT INTO journal_events (session_id, seq, hash, type, line)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        [self.sid, last, decoded.hash, decoded.event.type, line],
                    )
            self.conn.execute(
                "INSERT INTO journal_sessions (id, incarnation, last_seq) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,"
                " last_seq = excluded.last_seq, generation = journal_sessions.generation + 1",
                [self.sid, uuid.uuid4(), last],
            )
            self.conn.execute("SELECT pg_notify('journal', current_schema() || %s || %s)", [SEP, self.sid])

    def _bump(self) -> None:
        self.conn.execute("UPDATE journal_sessions SET generation = generation + 1 WHERE id = %s", [self.sid])

    def delete(self) -> bool:
        with self.conn.transaction():
            row = self._row()
            for table in ("journal_events", "journal_snapshots", "journal_bases", "journal_quarantine"):
                self.conn.execute(f"DELETE FROM {table} WHERE session_id = %s", [self.sid])  # noqa: S608
            self.conn.execute("DELETE FROM journal_sessions WHERE id = %s", [self.sid])
        return row is not None and row[2] > 0

    def prune(self, state: Session, head: Head) -> Pruned:
        with self.conn.transaction():
            if self._last_seq() != head.seq:
                raise StaleHeadError()
            moved = self.conn.execute(
                "UPDATE journal_events SET archived = true"
                " WHERE session_id = %s AND seq < %s AND NOT archived",
                [self.sid, head.seq],
            ).rowcount
            self.conn.execute(
                "UPDATE journal_sessions SET active_from = %s WHERE id = %s", [head.seq, self.sid]
            )
            head = head_at(head.seq, head.hash, head.seq)
            write_snapshot(self.conn, self.sid, head.seq, encode_snapshot(state, head))
            self._bump()
        return Pruned(moved, head, self._stamp())

    def retain(self, before: datetime) -> int:
        base = load_base(self.conn, self.where, self.sid)
        state, head = (None, None) if base is None else base
        floor = 0 if head is None else head.seq
        rows = self.conn.execute(
            "SELECT seq, line FROM journal_events"
            " WHERE session_id = %s AND archived AND seq > %s ORDER BY seq",
            [self.sid, floor],
        ).fetchall()
        fold = Fold(self.where, state, head)
        for seq, line in rows:
            record = record_of(bytes(line), fold.head, self.where, seq)
            if record.event.at >= before:
                break
            fold.add(record)
        state, head = fold.state, fold.head
        if head is None or head.seq == floor:
            return 0
        assert state is not None
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO journal_bases (session_id, seq, data) VALUES (%s, %s, %s)"
                " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                [self.sid, head.seq, encode_snapshot(state, head, kind="base")],
            )
            self.conn.execute(
                "DELETE FROM journal_events WHERE session_id = %s AND archived AND seq <= %s",
                [self.sid, head.seq],
            )
            self._bump()
        return head.seq - floor

    def quarantined(self, message_id: str) -> bool:
        row = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM journal_quarantine"
            " WHERE session_id = %s AND position(%s in line) > 0)",
            [self.sid, line_needles(message_id, ())[0]],
        ).fetchone()
        return bool(row[0])

    def intend_erase(self, message_id: str, by: int) -> None:
        """Nothing to record: the event commits first, then the erasure in one transaction; a
        lost connection between leaves rows that ``verify`` reports and redacting again
        finishes."""

    def erase(self, message_id: str, by: int, head: Head) -> Stamp:
        """Erase a redacted message's content from every row, the base and the snapshots."""
        with self.conn.transaction():
            self.conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [self.sid])
            base = load_base(self.conn, self.where, self.sid)
            texts = set()
            if base is not None:
                index = base[0].messages.index_of(message_id)
                if index >= 0:
                    texts.add(base[0].messages[index].content)
                state = erased_state(base[0], message_id)
                if state is not None:
                    self.conn.execute(
                        "UPDATE journal_bases SET data = %s WHERE session_id = %s",
                        [encode_snapshot(state, base[1], kind="base"), self.sid],
                    )
            rows = self.conn.execute(
                "SELECT seq, line FROM journal_events WHERE session_id = %s AND seq < %s"
                " AND type IN ('message_added', 'message_edited')",
                [self.sid, by],
            ).fetchall()
            for seq, line in rows:
                text = content_of(bytes(line), message_id, by)
                if text is not None:
                    texts.add(text)
                    self.conn.execute(
                        "UPDATE journal_events SET line = %s WHERE session_id = %s AND seq = %s",
                        [erase_body(bytes(line), by), self.sid, seq],
                    )
            needles = line_needles(message_id, texts)
            for moved_at, seq, line in self.conn.execute(
                "SELECT moved_at, seq, line FROM journal_quarantine WHERE session_id = %s", [self.sid]
            ).fetchall():
                scrubbed = scrub_line(bytes(line), message_id, by, needles)
                if scrubbed == bytes(line):
                    continue
                if scrubbed is None:
                    self.conn.execute(
                        "DELETE FROM journal_quarantine WHERE session_id = %s AND moved_at = %s AND seq = %s",
                        [self.sid, moved_at, seq],
                    )
                else:
                    self.conn.execute(
                        "UPDATE journal_quarantine SET line = %s"
                        " WHERE session_id = %s AND moved_at = %s AND seq = %s",
                        [scrubbed, self.sid, moved_at, seq],
                    )
            self._bump()
        return self._stamp()

    # -- integrity -------------------------------------------------------------------------

    def check(self, anchor: Anchor | None) -> ChainCheck:
        """Every stored row of the session, the base and the snapshots, classified."""
        base = load_base(self.conn, self.where, self.sid)
        snapshots = self.conn.execute(
            "SELECT seq, data FROM journal_snapshots WHERE session_id = %s", [self.sid]
        ).fetchall()
        start = None if base is None else (base[1].seq, base[1].hash)
        check = ChainCheck(self.sid, start, None if base is None else base[0], [s for s, _ in snapshots])
        if base is not None:
            check.retention_base(base[0], f"{self.where} (base)")
        self._rows_seen: list[tuple[int, bytes]] = []
        for seq, line in self.conn.execute(
            "SELECT seq, line FROM journal_events WHERE session_id = %s ORDER BY seq", [self.sid]
        ):
            self._rows_seen.append((seq, bytes(line)))
            check.line(None, self.where, seq, 0, bytes(line))
        check.finish()
        if check.redacted:
            for seq, line in self.conn.execute(
                "SELECT seq, line FROM journal_quarantine WHERE session_id = %s ORDER BY moved_at, seq",
                [self.sid],
            ):
                check.check_quarantined(f"{self.where} (quarantine)", seq, 0, bytes(line))
        for seq, data in snapshots:
            check.stored_snapshot(f"{self.where} (snapshot {seq})", bytes(data))
        if anchor is not None:
            check.check_anchor(anchor, self.where)
        return check

    def repair(self, dry_run: bool) -> RepairReport:
        check = self.check(None)
        kept = check.intact_seq
        cut = [(seq, line) for seq, line in self._rows_seen if seq > kept]
        if not dry_run and (cut or check.problems):
            with self.conn.transaction():
                for seq, line in cut:
                    self.conn.execute(
                        "INSERT INTO journal_quarantine (session_id, seq, line, reason)"
                        " VALUES (%s, %s, %s, %s)",
                        [self.sid, seq, line, "after the intact prefix"],
                    )
                self.conn.execute(
                    "DELETE FROM journal_events WHERE session_id = %s AND seq > %s", [self.sid, kept]
                )
                self.conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [self.sid])
                self.conn.execute("UPDATE journal_sessions SET last_seq = %s WHERE id = %s", [kept, self.sid])
                self._bump()
        return check.cut_report(self.where, cut, "journal_quarantine", dry_run=dry_run)
