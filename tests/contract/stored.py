"""What a backend holds, read and damaged around the library: the contract suite's oracle.

The contract tests drive every backend through the public API only; whether something was
written, erased or kept is then checked on the storage itself, the way an operator (or an
attacker) would see it: the files under the root (gzip archives searched decompressed), or the
rows of the PostgreSQL tables read with psycopg. Nothing here goes through ``journal``'s own
readers, so a reader bug cannot hide a storage bug.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from journal.backends.files.layout import Layout
from journal.backends.postgres.storage import is_postgres_url

__all__ = ["Stored"]

_SNAPSHOT_NAME = re.compile(r"^snapshot-(\d{20})\.snap$")

# Every table the PostgreSQL backend stores a session's data in, with the columns that
# identify a row and the one holding its bytes (see journal/pgschema.py). The events are read
# through their partitions so that an archived row names the archive.
_PG_TABLES: dict[str, tuple[str, str]] = {
    "journal_events_active": ("session_id, seq", "line"),
    "journal_events_archive": ("session_id, seq", "line"),
    "journal_snapshots": ("session_id, seq", "data"),
    "journal_bases": ("session_id, seq", "data"),
    "journal_quarantine": ("session_id, seq, moved_at", "line"),
}


class Stored:
    """Raw access to the storage behind a ``store_url`` (a folder path or a PostgreSQL URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = is_postgres_url(url)

    # -- PostgreSQL ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            yield conn

    def _rows(self) -> Iterator[tuple[str, bytes]]:
        with self._conn() as conn:
            if conn.execute("SELECT to_regclass('journal_sessions')").fetchone()[0] is None:
                return  # nothing was ever written: the tables are made on first use
            for table, (key, column) in _PG_TABLES.items():
                for row in conn.execute(f"SELECT {key}, {column} FROM {table}").fetchall():  # noqa: S608
                    yield f"{table}:{'/'.join(map(str, row[:-1]))}", bytes(row[-1])
            # Not ``generation``: a counter that tells other processes' caches to reload, bumped
            # by some calls that store nothing new (a repeated redaction); not data.
            for row in conn.execute("SELECT id, incarnation, last_seq FROM journal_sessions"):
                yield f"journal_sessions:{row[0]}", repr(row[1:]).encode()

    # -- files -----------------------------------------------------------------------------

    def _files(self) -> Iterator[tuple[str, bytes]]:
        root = Path(self.url)
        if not root.exists():
            return
        for path in sorted(root.rglob("*")):
            # Lock files are empty and made on demand; they hold no data.
            if path.is_file() and "locks" not in path.relative_to(root).parts:
                yield str(path.relative_to(root)), path.read_bytes()

    # -- the oracle ------------------------------------------------------------------------

    def dump(self) -> dict[str, bytes]:
        """Everything stored, by file path or ``table:key``: equal dumps mean nothing was written."""
        return dict(self._rows() if self.postgres else self._files())

    def holders(self, needle: str) -> set[str]:
        """Every file or row whose bytes hold ``needle`` (gzip data also searched decompressed)."""
        wanted = needle.encode()
        found = set()
        for name, data in self.dump().items():
            texts = [data]
            if data[:2] == b"\x1f\x8b":
                with contextlib.suppress(zlib.error):
                    texts.append(zlib.decompressobj(wbits=31).decompress(data))
            if any(wanted in text for text in texts):
                found.add(name)
        return found

    def snapshot_seqs(self, session_id: str) -> list[int]:
        """The seqs of the session's stored snapshots, ascending."""
        if self.postgres:
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT seq FROM journal_snapshots WHERE session_id = %s ORDER BY seq", [session_id]
                ).fetchall()
            return [int(row[0]) for row in rows]
        folder = Layout(self.url).session_dir(session_id)
        names = [
            m for n in (folder.iterdir() if folder.exists() else []) if (m := _SNAPSHOT_NAME.match(n.name))
        ]
        return sorted(int(m[1]) for m in names)

    def drop_snapshots(self, session_id: str) -> None:
        """Delete the session's snapshots, as an operator may (they are only a cache)."""
        if self.postgres:
            with self._conn() as conn:
                conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [session_id])
            return
        folder = Layout(self.url).session_dir(session_id)
        for path in folder.iterdir():
            if _SNAPSHOT_NAME.match(path.name):
                path.unlink()

    def active_events(self, session_id: str) -> int:
        """How many events the active log holds (not archived, not folded into a base)."""
        if self.postgres:
            with self._conn() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM journal_events_active WHERE session_id = %s", [session_id]
                ).fetchone()
            return int(row[0])
        return Layout(self.url).log_path(session_id).read_bytes().count(b"\n")

    def tamper(self, session_id: str, old: bytes, new: bytes) -> None:
        """Replace ``old`` (found in exactly one stored event line of the session) with ``new``."""
        if self.postgres:
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT seq, line FROM journal_events WHERE session_id = %s AND position(%s in line) > 0",
                    [session_id, old],
                ).fetchall()
                assert len(rows) == 1, f"{old!r} is in {len(rows)} rows, not one"
                seq, line = rows[0]
                conn.execute(
                    "UPDATE journal_events SET line = %s WHERE session_id = %s AND seq = %s",
                    [bytes(line).replace(old, new), session_id, seq],
                )
            return
        log = Layout(self.url).log_path(session_id)
        data = log.read_bytes()
        assert data.count(old) == 1, f"{old!r} is in the log {data.count(old)} times, not once"
        log.write_bytes(data.replace(old, new))

    def cut_events(self, session_id: str, keep: int) -> None:
        """Lose every stored event after seq ``keep``, as a restored backup or a truncation
        would (the log file cut at a line end; the rows deleted and the session row moved back)."""
        if self.postgres:
            with self._conn() as conn:
                conn.execute(
                    "DELETE FROM journal_events WHERE session_id = %s AND seq > %s", [session_id, keep]
                )
                conn.execute("UPDATE journal_sessions SET last_seq = %s WHERE id = %s", [keep, session_id])
            return
        log = Layout(self.url).log_path(session_id)
        lines = log.read_bytes().split(b"\n")[:-1]
        log.write_bytes(b"".join(line + b"\n" for line in lines[:keep]))

    def line_holding(self, session_id: str, needle: bytes) -> bytes:
        """The one stored event line of the session holding ``needle``, as stored."""
        if self.postgres:
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT line FROM journal_events WHERE session_id = %s AND position(%s in line) > 0",
                    [session_id, needle],
                ).fetchall()
            (line,) = (bytes(row[0]) for row in rows)
            return line
        data = Layout(self.url).log_path(session_id).read_bytes()
        (line,) = (line for line in data.split(b"\n") if needle in line)
        return line

    def plant_quarantine(self, session_id: str, line: bytes) -> None:
        """Put ``line`` into the session's quarantine, as a repair interrupted mid-erasure (or an
        operator restoring a copy) could leave it."""
        if self.postgres:
            with self._conn() as conn:
                conn.execute(
                    "INSERT INTO journal_quarantine (session_id, seq, line, reason)"
                    " VALUES (%s, 0, %s, 'planted')",
                    [session_id, line],
                )
            return
        folder = Layout(self.url).session_dir(session_id) / "quarantine" / "20260101T000000.000000Z"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "events.jsonl.from-byte-0").write_bytes(line + b"\n")

    def forge_base(self, session_id: str, state: Any, seq: int, digest: str) -> None:
        """Replace the session's history up to ``seq`` with a retention base holding ``state``
        and the real chain hash ``digest`` of seq ``seq``, as someone able to write the
        storage could: the lines (or rows) up to it go, the base comes."""
        from journal.core.head import Head
        from journal.core.snapshot import encode_snapshot

        data = encode_snapshot(state, Head(seq, digest, -1, -1, 0), kind="base")
        if self.postgres:
            with self._conn() as conn:
                conn.execute(
                    "DELETE FROM journal_events WHERE session_id = %s AND seq <= %s", [session_id, seq]
                )
                conn.execute(
                    "INSERT INTO journal_bases (session_id, seq, data) VALUES (%s, %s, %s)"
                    " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                    [session_id, seq, data],
                )
                conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [session_id])
            return
        folder = Layout(self.url).session_dir(session_id)
        (folder / "archive").mkdir(exist_ok=True)
        (folder / "archive" / "base.snap").write_bytes(data)
        for path in folder.iterdir():
            if _SNAPSHOT_NAME.match(path.name):
                path.unlink()
        for path in (folder / "archive").glob("*.jsonl.gz"):
            path.unlink()
        log = folder / "events.jsonl"
        lines = log.read_bytes().split(b"\n")[:-1]
        kept = [line for line in lines if int(re.search(rb'"seq":(\d+)', line)[1]) > seq]  # type: ignore[index]
        log.write_bytes(b"".join(line + b"\n" for line in kept))

    def event_line(self, session_id: str, seq: int) -> bytes:
        """The stored line of event ``seq`` (without its newline), from the active log."""
        if self.postgres:
            with self._conn() as conn:
                row = conn.execute(
                    "SELECT line FROM journal_events WHERE session_id = %s AND seq = %s", [session_id, seq]
                ).fetchone()
            assert row is not None, f"no stored event {seq} of {session_id!r}"
            return bytes(row[0])
        lines = Layout(self.url).log_path(session_id).read_bytes().splitlines()
        (line,) = [line for line in lines if msgspec.json.decode(line)["seq"] == seq]
        return line

    def rewrite_event(self, session_id: str, seq: int, line: bytes, digest: str) -> None:
        """Store ``line`` (whose hash is ``digest``) in place of event ``seq``'s line, as an
        attacker with write access would: in the log file, or in the row with its hash column."""
        line = line.rstrip(b"\n")
        if self.postgres:
            with self._conn() as conn:
                updated = conn.execute(
                    "UPDATE journal_events SET line = %s, hash = %s WHERE session_id = %s AND seq = %s",
                    [line, digest, session_id, seq],
                ).rowcount
            assert updated == 1, f"no stored event {seq} of {session_id!r}"
            return
        log = Layout(self.url).log_path(session_id)
        data = log.read_bytes()
        old = self.event_line(session_id, seq)
        assert data.count(old) == 1
        log.write_bytes(data.replace(old, line))
