"""The PostgreSQL backend's write transaction: one statement per append, a lock only when held.

``PgTransaction`` is ``storage.Transaction`` for this backend. An append is one statement (see
``APPEND``): it moves the session row on only if the stored log still ends at the expected head,
inserts the event rows and notifies, so an uncontended append is one round trip and takes no
lock beyond the session row's, for the moment of its commit. A transaction made by ``appender``
holds nothing until it reads; one made by ``writer`` (or an appender that had to read: a cold
or contended write) *holds* the session: its advisory lock (excluding every other holder; the
server releases it if the connection dies) and, until the next write commits, the session
row's lock ``FOR UPDATE`` (excluding appenders that hold nothing). A write whose commit was cut
off is settled by seq and hash, never applied twice. The transaction also prunes, applies
retention, erases redacted content, and checks and repairs the stored rows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import msgspec

from journal.backends.postgres.pool import Pool
from journal.backends.postgres.rows import (
    SEP,
    checked,
    head_at,
    line_seq,
    line_type,
    load_base,
    lock_key,
    newest_snapshot,
    psycopg_modules,
    read_rows,
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

__all__ = ["APPEND", "CREATE", "PgTransaction"]

log = logging.getLogger("journal")

# The events of one append, inserted only if the session row moved (one statement is atomic:
# a head that moved meanwhile stores nothing and returns no row). The row update comes first
# (the insert reads its RETURNING), so concurrent appenders of a session queue on its row lock
# and the loser sees the winner's last_seq. A seq taken by a row the head check cannot see
# fails on the unique key instead. Every row goes through the unique index of the active
# partition, so two appends never store one seq twice.
_EVENTS = """, added AS (
    INSERT INTO journal_events (session_id, seq, hash, type, line)
    SELECT %(sid)s, u.seq, u.hash, u.type, u.line FROM moved,
        unnest(%(seqs)s::bigint[], %(hashes)s::text[], %(types)s::text[], %(lines)s::bytea[])
        AS u(seq, hash, type, line)
)
SELECT incarnation, generation, last_seq, active_from,
    pg_notify('journal', current_schema() || %(sep)s || %(sid)s) FROM moved"""

_AFTER_HEAD = """WITH moved AS (
    UPDATE journal_sessions SET last_seq = %(last)s
    WHERE id = %(sid)s AND last_seq = %(start)s AND (
        EXISTS (SELECT FROM journal_events
                WHERE session_id = %(sid)s AND seq = %(start)s AND hash = %(prev)s)
        OR EXISTS (SELECT FROM journal_bases WHERE session_id = %(sid)s AND seq = %(start)s))
    RETURNING incarnation, generation, last_seq, active_from
)"""
APPEND = _AFTER_HEAD + _EVENTS
"""An append after seq ``start`` (whose row holds hash ``prev``, or a retention base ends)."""

_FIRST = """WITH moved AS (
    INSERT INTO journal_sessions AS s (id, incarnation, last_seq)
    VALUES (%(sid)s, %(incarnation)s, %(last)s)
    ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,
        generation = s.generation + 1, last_seq = excluded.last_seq
    WHERE s.last_seq = 0
    RETURNING incarnation, generation, last_seq, active_from
)"""
CREATE = _FIRST + _EVENTS
"""The first append of a session (a new incarnation, also after a delete)."""


class PgTransaction:
    """One session's transaction (``storage.Transaction``); see the module docstring.

    Args:
        hold: hold the session from the start (``writer``); otherwise from the first read.
    """

    def __init__(self, pool: Pool, session_id: str, *, hold: bool = True) -> None:
        self.pool = pool
        self.sid = session_id
        self.where = pool.location(session_id)
        self.conn: Any = None
        self._cm: Any = None
        self._hold_at_start = hold
        self._locked = False  # the advisory lock is held
        self._open: Any = None  # the transaction holding the session row FOR UPDATE

    def __enter__(self) -> PgTransaction:
        self._cm = self.pool.connection("write")
        self.conn = self._cm.__enter__()
        if self._hold_at_start:
            try:
                self._hold()
            except BaseException as exc:
                self._release(exc)
                raise
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        psycopg, _ = psycopg_modules()
        if isinstance(exc, psycopg.OperationalError):
            # The connection failed while holding (the server released the locks with it).
            self._release(exc)
            raise StorageError("write", self.where, self.pool.said(exc)) from None
        try:
            self._end(exc)
        except psycopg.OperationalError as again:
            self._release(again)
            raise StorageError("write", self.where, self.pool.said(again)) from None
        self._release()

    def _hold(self) -> None:
        """Hold the session (see the module docstring); nothing to do when held already."""
        if self._open is not None:
            return
        psycopg, _ = psycopg_modules()
        timeout = self.pool.lock_timeout
        try:
            if not self._locked:
                if timeout == 0:  # "do not wait" (to the server, a lock_timeout of 0 waits forever)
                    took = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(self.sid)])
                    if not took.fetchone()[0]:
                        raise psycopg.errors.LockNotAvailable()
                else:
                    self.conn.execute("SELECT pg_advisory_lock(%s)", [lock_key(self.sid)])
                self._locked = True
            opened = self.conn.transaction()
            opened.__enter__()
            self._open = opened
            self.conn.execute("SELECT FROM journal_sessions WHERE id = %s FOR UPDATE", [self.sid])
        except psycopg.errors.LockNotAvailable:
            self._end(LockTimeoutError(self.where, timeout))
            raise LockTimeoutError(self.where, timeout) from None
        except psycopg.OperationalError as exc:
            raise StorageError("lock", self.where, self.pool.said(exc)) from None

    def _end(self, exc: BaseException | None = None) -> None:
        """Commit the transaction holding the session row (roll it back after ``exc``)."""
        opened, self._open = self._open, None
        if opened is not None:
            opened.__exit__(None if exc is None else type(exc), exc, None)

    @contextmanager
    def _held(self) -> Iterator[None]:
        """One transaction of writes, holding the session throughout, committed at the end."""
        self._hold()
        try:
            yield
        except BaseException as exc:
            self._end(exc)
            raise
        self._end()

    def _release(self, exc: BaseException | None = None) -> None:
        cm, self._cm = self._cm, None
        if cm is None:
            return
        psycopg, _ = psycopg_modules()
        try:
            if exc is None and self._locked and not self.conn.closed:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(self.sid)])
        except psycopg.Error:
            pass  # the connection is gone, and the server released the lock with it
        finally:
            self._open = None
            self._locked = False
            self.conn = None
            cm.__exit__(None, None, None)

    def _reconnect(self) -> None:
        """After a dropped connection: a new one, holding the lock again if it was held."""
        held = self._locked
        self._release(ConnectionError())
        self._cm = self.pool.connection("write")
        self.conn = self._cm.__enter__()
        if held:
            self._hold()
            self._end()  # the advisory lock only: the retried append checks the head itself

    # -- reads -----------------------------------------------------------------------------

    def read(self, after: Head | None) -> Batch:
        self._hold()
        batch = read_rows(self.conn, self.where, self.sid, after)
        return (
            batch
            if batch.stamp is not None or batch.damage is not None
            else msgspec.structs.replace(batch, stamp=self._stamp())
        )

    def snapshot(self) -> tuple[Session, Head] | None:
        self._hold()
        return newest_snapshot(self.conn, self.where, self.sid)

    def history(self, resume: Head | None = None) -> History:
        # On this connection: another one from the pool could wait on writers holding the rest.
        self._hold()
        base = load_base(self.conn, self.where, self.sid)
        batch = read_rows(
            self.conn, self.where, self.sid, None if base is None else base[1], check_after=False
        )
        return (None if base is None else base[0], None if base is None else base[1], batch.checked())

    def save_snapshot(self, state: Session, head: Head) -> None:
        """See ``Transaction.save_snapshot``: only while the event at ``head`` is stored with its
        hash and no redaction followed it."""
        with self._held():
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
        row: tuple[Any, ...] | None
        try:
            row = self._write(after, lines)
        except psycopg.OperationalError as exc:
            # The commit's fate is unknown: settle it by the rows' seqs and hashes.
            log.warning(
                "%s: connection lost during an append (%s); checking what landed",
                self.where,
                self.pool.said(exc),
            )
            row = self._settle(after, lines)
        last = lines[-1]
        if row is None:
            # A stamp that matches nothing: the next read checks the store again.
            return head_at(last.seq, last.hash, 1), (-1,)
        return head_at(last.seq, last.hash, int(row[3])), stamp_of(row)

    def _write(self, after: Head | None, lines: Sequence[Line]) -> tuple[Any, ...]:
        """The append statement (in the held transaction, which it commits, if there is one);
        the session row after it. StaleHeadError if the log no longer ends at ``after``."""
        psycopg, _ = psycopg_modules()
        params: dict[str, Any] = {
            "sid": self.sid,
            "last": lines[-1].seq,
            "seqs": [line.seq for line in lines],
            "hashes": [line.hash for line in lines],
            "types": [line_type(line.data) for line in lines],
            "lines": [line.data[:-1] for line in lines],
            "sep": SEP,
        }
        if after is None:
            statement, params["incarnation"] = CREATE, uuid.uuid4()
        else:
            statement, params["start"], params["prev"] = APPEND, after.seq, after.hash
        try:
            row = self.conn.execute(statement, params).fetchone()
        except psycopg.errors.UniqueViolation:
            self._end(StaleHeadError())
            raise StaleHeadError() from None
        except psycopg.errors.LockNotAvailable:
            # Waited past lock_timeout for the session row: another writer holds the session.
            self._end(StaleHeadError())
            raise LockTimeoutError(self.where, self.pool.lock_timeout) from None
        if row is None:
            self._end(StaleHeadError())
            raise StaleHeadError()
        self._end()
        return tuple(row[:4])

    def _settle(self, after: Head | None, lines: Sequence[Line]) -> tuple[Any, ...] | None:
        """After a dropped append: the session row if the lines are stored (None: stored, the
        row unknown), else the append made once more; StorageError if neither can be told."""
        psycopg, _ = psycopg_modules()
        try:
            self._reconnect()
            found = self._landed(lines)
            if found is not None:
                return found
            try:
                return self._write(after, lines)
            except StaleHeadError:
                # The first attempt may have committed since (its statement outlived the
                # connection): stored, it succeeded; otherwise another writer got there first.
                found = self._landed(lines)
                if found is None:
                    raise
                return found
        except psycopg.Error as again:
            if self._stored(lines):
                return None  # stored: the append succeeded; only the stamp is unknown
            raise StorageError("append", self.where, self.pool.said(again)) from None
        except LockTimeoutError:
            # The dropped connection's server process may still hold the session (the server
            # has not noticed yet) with the append uncommitted: its fate is what the rows say,
            # never "nothing written", which a caller would retry into a second append.
            if self._stored(lines):
                return None
            raise StorageError(
                "append",
                self.where,
                "the connection dropped during the append and its outcome could not be told",
            ) from None

    def _last_seq(self) -> int:
        row = self._row()
        return 0 if row is None else int(row[2])

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

    def _landed(self, lines: Sequence[Line]) -> tuple[Any, ...] | None:
        """If the lines are stored (by seq and hash): the session row, when it ends at them
        (anything later would give a stamp that hides it), else (-1,)-stamped. None if the
        lines are not stored; StorageError if only some are."""
        rows = self.conn.execute(
            "SELECT seq, hash FROM journal_events WHERE session_id = %s AND seq = ANY(%s)",
            [self.sid, [line.seq for line in lines]],
        ).fetchall()
        want = {line.seq: line.hash for line in lines}
        landed = sum(1 for seq, digest in rows if want.get(seq) == digest)
        if landed == 0:
            return None
        if landed < len(lines):
            raise StorageError("append", self.where, "connection lost; another writer appended since: retry")
        row = self._row()
        if row is None or row[2] != lines[-1].seq:
            return (uuid.UUID(int=0), -1, -1, 1)
        return row

    def export(self) -> Exported:
        """See ``Transaction.export``."""
        self._hold()
        base = load_base(self.conn, self.where, self.sid)
        after = None if base is None else base[1]
        data = self.conn.execute(
            "SELECT data FROM journal_bases WHERE session_id = %s", [self.sid], binary=True
        ).fetchone()
        rows = self.conn.execute(
            "SELECT seq, line FROM journal_events WHERE session_id = %s ORDER BY seq", [self.sid], binary=True
        ).fetchall()
        for _ in checked(rows, after, self.where, 1):
            pass
        return Exported(None if data is None else data[0], [line for _, line in rows])

    def restore(self, exported: Exported) -> None:
        """See ``Transaction.restore``: one transaction, so a failed import leaves nothing."""
        with self._held():
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
        with self._held():
            row = self._row()
            for table in ("journal_events", "journal_snapshots", "journal_bases", "journal_quarantine"):
                self.conn.execute(f"DELETE FROM {table} WHERE session_id = %s", [self.sid])  # noqa: S608
            self.conn.execute("DELETE FROM journal_sessions WHERE id = %s", [self.sid])
        return row is not None and row[2] > 0

    def prune(self, state: Session, head: Head) -> Pruned:
        with self._held():
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
            stamp = self._stamp()  # inside: an append after the pruning is not in it
        return Pruned(moved, head, stamp)

    def retain(self, before: datetime) -> int:
        self._hold()
        base = load_base(self.conn, self.where, self.sid)
        state, head = (None, None) if base is None else base
        floor = 0 if head is None else head.seq
        rows = self.conn.execute(
            "SELECT seq, line FROM journal_events"
            " WHERE session_id = %s AND archived AND seq > %s ORDER BY seq",
            [self.sid, floor],
            binary=True,
        ).fetchall()
        fold = Fold(self.where, state, head)
        for record in checked(rows, head, self.where, 1):
            if record.event.at >= before:
                break
            fold.add(record)
        state, head = fold.state, fold.head
        if head is None or head.seq == floor:
            return 0
        assert state is not None
        with self._held():
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
        self._hold()
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
        with self._held():
            self.conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [self.sid])
            base = load_base(self.conn, self.where, self.sid)
            texts = set()
            if base is not None:
                index = base[0].messages_view.index_of(message_id)
                if index >= 0:
                    texts.add(base[0].messages_view[index].content)
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
                binary=True,
            ).fetchall()
            for seq, line in rows:
                text = content_of(line, message_id, by)
                if text is not None:
                    texts.add(text)
                    self.conn.execute(
                        "UPDATE journal_events SET line = %s WHERE session_id = %s AND seq = %s",
                        [erase_body(line, by), self.sid, seq],
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
            row = self._row()
        # The stamp of the log ending at ``head``; one that matches nothing if an append came
        # in between (a stamp must never vouch for events its view does not hold).
        return stamp_of(row) if row is not None and row[2] == head.seq else (-1,)

    # -- integrity -------------------------------------------------------------------------

    def check(self, anchor: Anchor | None) -> ChainCheck:
        """Every stored row of the session, the base and the snapshots, classified."""
        self._hold()
        base = load_base(self.conn, self.where, self.sid)
        snapshots = self.conn.execute(
            "SELECT seq, data FROM journal_snapshots WHERE session_id = %s", [self.sid], binary=True
        ).fetchall()
        start = None if base is None else (base[1].seq, base[1].hash)
        check = ChainCheck(self.sid, start, None if base is None else base[0], [s for s, _ in snapshots])
        if base is not None:
            check.retention_base(base[0], f"{self.where} (base)")
        self._rows_seen: list[tuple[int, bytes]] = []
        for seq, line in self.conn.execute(
            "SELECT seq, line FROM journal_events WHERE session_id = %s ORDER BY seq", [self.sid], binary=True
        ):
            self._rows_seen.append((seq, line))
            stated = line_seq(line)
            if stated is not None and stated != seq and stated == check.seq + 1:
                # In order by its line, but stored under another key: reads refuse it (the
                # head would not be the session row's), so the intact prefix ends before it.
                check.problem(
                    "reordered", self.where, seq, 0, f"the row of seq {seq} holds the line of seq {stated}"
                )
                check.broken(None, self.where, seq, 0)
            check.line(None, self.where, seq, 0, line)
        check.finish()
        if check.redacted:
            for seq, line in self.conn.execute(
                "SELECT seq, line FROM journal_quarantine WHERE session_id = %s ORDER BY moved_at, seq",
                [self.sid],
            ):
                check.check_quarantined(f"{self.where} (quarantine)", seq, 0, bytes(line))
        for seq, data in snapshots:
            check.stored_snapshot(f"{self.where} (snapshot {seq})", data)
        if anchor is not None:
            check.check_anchor(anchor, self.where)
        return check

    def repair(self, dry_run: bool) -> RepairReport:
        check = self.check(None)
        kept = check.intact_seq
        cut = [(seq, line) for seq, line in self._rows_seen if seq > kept]
        if not dry_run and (cut or check.problems):
            with self._held():
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
