"""What a backend holds, read and damaged around the library: the contract suite's oracle.

The contract tests drive every backend through the public API only; whether something was
written, erased or kept is then checked on the storage itself, the way an operator (or an
attacker) would see it: the files under the root (gzip archives searched decompressed), the
rows of the PostgreSQL tables read with psycopg, or the lists of a memory store. Nothing here
goes through ``journal``'s own readers, so a reader bug cannot hide a storage bug.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from journal.backends import MEMORY_SCHEME, POSTGRES_SCHEMES
from journal.backends.files.layout import Layout
from journal.backends.memory import named_store
from journal.core.head import Head
from journal.core.snapshot import encode_snapshot

__all__ = ["Stored", "backend_of", "stored_at"]

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


def backend_of(url: str) -> str:
    """The name of the backend a ``store_url`` names (``Journal.backend``'s answer)."""
    if url.startswith(POSTGRES_SCHEMES):
        return "postgres"
    return "memory" if url.startswith(MEMORY_SCHEME) else "files"


def stored_at(url: str) -> Stored:
    """Raw access to the storage a ``store_url`` names (a folder, a PostgreSQL URL, or a
    named memory store)."""
    if url.startswith(POSTGRES_SCHEMES):
        return PgStored(url)
    if url.startswith(MEMORY_SCHEME):
        return MemoryStored(url)
    return FilesStored(url)


class Stored:
    """What every backend's raw view answers (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def dump(self) -> dict[str, bytes]:
        """Everything stored, by file path or ``table:key``: equal dumps mean nothing was written."""
        raise NotImplementedError

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
        raise NotImplementedError

    def drop_snapshots(self, session_id: str) -> None:
        """Delete the session's snapshots, as an operator may (they are only a cache)."""
        raise NotImplementedError

    def active_events(self, session_id: str) -> int:
        """How many events the active log holds (not archived, not folded into a base)."""
        raise NotImplementedError

    def tamper(self, session_id: str, old: bytes, new: bytes) -> None:
        """Replace ``old`` (found in exactly one stored event line of the session) with ``new``."""
        raise NotImplementedError

    def cut_events(self, session_id: str, keep: int) -> None:
        """Lose every stored event after seq ``keep``, as a restored backup or a truncation would."""
        raise NotImplementedError

    def line_holding(self, session_id: str, needle: bytes) -> bytes:
        """The one stored event line of the session holding ``needle``, as stored."""
        raise NotImplementedError

    def plant_quarantine(self, session_id: str, line: bytes) -> None:
        """Put ``line`` into the session's quarantine, as a repair interrupted mid-erasure (or an
        operator restoring a copy) could leave it."""
        raise NotImplementedError

    def forge_base(self, session_id: str, state: Any, seq: int, digest: str) -> None:
        """Replace the session's history up to ``seq`` with a retention base holding ``state``
        and the real chain hash ``digest`` of seq ``seq``, as someone able to write the
        storage could: the lines (or rows) up to it go, the base comes."""
        raise NotImplementedError

    def event_line(self, session_id: str, seq: int) -> bytes:
        """The stored line of event ``seq`` (without its newline), from the active log."""
        raise NotImplementedError

    def rewrite_event(self, session_id: str, seq: int, line: bytes, digest: str) -> None:
        """Store ``line`` (whose hash is ``digest``) in place of event ``seq``'s line, as an
        attacker with write access would."""
        raise NotImplementedError


def _base_bytes(state: Any, seq: int, digest: str) -> bytes:
    return encode_snapshot(state, Head(seq, digest, 0, (-1, -1)), kind="base")


def _seq_of(line: bytes) -> int:
    seq: int = msgspec.json.decode(line)["seq"]
    return seq


class PgStored(Stored):
    """The rows of the PostgreSQL tables, read and written with psycopg."""

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            yield conn

    def dump(self) -> dict[str, bytes]:
        return dict(self._rows())

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

    def snapshot_seqs(self, session_id: str) -> list[int]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT seq FROM journal_snapshots WHERE session_id = %s ORDER BY seq", [session_id]
            ).fetchall()
        return [int(row[0]) for row in rows]

    def drop_snapshots(self, session_id: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [session_id])

    def active_events(self, session_id: str) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT count(*) FROM journal_events_active WHERE session_id = %s", [session_id]
            ).fetchone()
        return int(row[0])

    def tamper(self, session_id: str, old: bytes, new: bytes) -> None:
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

    def cut_events(self, session_id: str, keep: int) -> None:
        # The rows deleted and the session row moved back.
        with self._conn() as conn:
            conn.execute("DELETE FROM journal_events WHERE session_id = %s AND seq > %s", [session_id, keep])
            conn.execute("UPDATE journal_sessions SET last_seq = %s WHERE id = %s", [keep, session_id])

    def line_holding(self, session_id: str, needle: bytes) -> bytes:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT line FROM journal_events WHERE session_id = %s AND position(%s in line) > 0",
                [session_id, needle],
            ).fetchall()
        (line,) = (bytes(row[0]) for row in rows)
        return line

    def plant_quarantine(self, session_id: str, line: bytes) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO journal_quarantine (session_id, seq, line, reason)"
                " VALUES (%s, 0, %s, 'planted')",
                [session_id, line],
            )

    def forge_base(self, session_id: str, state: Any, seq: int, digest: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM journal_events WHERE session_id = %s AND seq <= %s", [session_id, seq])
            conn.execute(
                "INSERT INTO journal_bases (session_id, seq, data) VALUES (%s, %s, %s)"
                " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                [session_id, seq, _base_bytes(state, seq, digest)],
            )
            conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [session_id])

    def event_line(self, session_id: str, seq: int) -> bytes:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT line FROM journal_events WHERE session_id = %s AND seq = %s", [session_id, seq]
            ).fetchone()
        assert row is not None, f"no stored event {seq} of {session_id!r}"
        return bytes(row[0])

    def rewrite_event(self, session_id: str, seq: int, line: bytes, digest: str) -> None:
        # In the row, with its hash column.
        with self._conn() as conn:
            updated = conn.execute(
                "UPDATE journal_events SET line = %s, hash = %s WHERE session_id = %s AND seq = %s",
                [line.rstrip(b"\n"), digest, session_id, seq],
            ).rowcount
        assert updated == 1, f"no stored event {seq} of {session_id!r}"


class FilesStored(Stored):
    """The files under the root."""

    def dump(self) -> dict[str, bytes]:
        root = Path(self.url)
        if not root.exists():
            return {}
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            # Lock files are empty and made on demand; they hold no data.
            if path.is_file() and "locks" not in path.relative_to(root).parts
        }

    def _folder(self, session_id: str) -> Path:
        return Layout(self.url).session_dir(session_id)

    def _log(self, session_id: str) -> Path:
        return Layout(self.url).log_path(session_id)

    def snapshot_seqs(self, session_id: str) -> list[int]:
        folder = self._folder(session_id)
        names = [
            m for n in (folder.iterdir() if folder.exists() else []) if (m := _SNAPSHOT_NAME.match(n.name))
        ]
        return sorted(int(m[1]) for m in names)

    def drop_snapshots(self, session_id: str) -> None:
        for path in self._folder(session_id).iterdir():
            if _SNAPSHOT_NAME.match(path.name):
                path.unlink()

    def active_events(self, session_id: str) -> int:
        return self._log(session_id).read_bytes().count(b"\n")

    def tamper(self, session_id: str, old: bytes, new: bytes) -> None:
        log = self._log(session_id)
        data = log.read_bytes()
        assert data.count(old) == 1, f"{old!r} is in the log {data.count(old)} times, not once"
        log.write_bytes(data.replace(old, new))

    def cut_events(self, session_id: str, keep: int) -> None:
        # The log file cut at a line end.
        log = self._log(session_id)
        lines = log.read_bytes().split(b"\n")[:-1]
        log.write_bytes(b"".join(line + b"\n" for line in lines[:keep]))

    def line_holding(self, session_id: str, needle: bytes) -> bytes:
        data = self._log(session_id).read_bytes()
        (line,) = (line for line in data.split(b"\n") if needle in line)
        return line

    def plant_quarantine(self, session_id: str, line: bytes) -> None:
        folder = self._folder(session_id) / "quarantine" / "20260101T000000.000000Z"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "events.jsonl.from-byte-0").write_bytes(line + b"\n")

    def forge_base(self, session_id: str, state: Any, seq: int, digest: str) -> None:
        folder = self._folder(session_id)
        (folder / "archive").mkdir(exist_ok=True)
        (folder / "archive" / "base.snap").write_bytes(_base_bytes(state, seq, digest))
        self.drop_snapshots(session_id)
        for path in (folder / "archive").glob("*.jsonl.gz"):
            path.unlink()
        log = folder / "events.jsonl"
        lines = log.read_bytes().split(b"\n")[:-1]
        log.write_bytes(b"".join(line + b"\n" for line in lines if _seq_of(line) > seq))

    def event_line(self, session_id: str, seq: int) -> bytes:
        lines = self._log(session_id).read_bytes().splitlines()
        (line,) = [line for line in lines if _seq_of(line) == seq]
        return line

    def rewrite_event(self, session_id: str, seq: int, line: bytes, digest: str) -> None:
        log = self._log(session_id)
        data = log.read_bytes()
        old = self.event_line(session_id, seq)
        assert data.count(old) == 1
        log.write_bytes(data.replace(old, line.rstrip(b"\n")))


class MemoryStored(Stored):
    """The lists of the process's memory store that the URL names."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.store = named_store(url[len(MEMORY_SCHEME) :])

    def _session(self, session_id: str) -> Any:
        stored = self.store.sessions.get(session_id)
        assert stored is not None, f"no stored session {session_id!r}"
        return stored

    def dump(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for sid, stored in self.store.sessions.items():
            found[f"{sid}:where"] = repr((stored.incarnation, stored.first, stored.active)).encode()
            for seq, line in enumerate(stored.lines, stored.first):
                found[f"{sid}:line:{seq}"] = line
            if stored.base is not None:
                found[f"{sid}:base"] = stored.base
            for seq, data in stored.snapshots.items():
                found[f"{sid}:snapshot:{seq}"] = data
            for number, line in enumerate(stored.quarantine):
                found[f"{sid}:quarantine:{number}"] = line
        return found

    def snapshot_seqs(self, session_id: str) -> list[int]:
        stored = self.store.sessions.get(session_id)
        return [] if stored is None else sorted(stored.snapshots)

    def drop_snapshots(self, session_id: str) -> None:
        stored = self._session(session_id)
        stored.snapshots = {}
        stored.changed()

    def active_events(self, session_id: str) -> int:
        stored = self._session(session_id)
        return int(len(stored.lines) - (stored.active - stored.first))

    def _index_holding(self, session_id: str, needle: bytes) -> int:
        lines = self._session(session_id).lines
        (index,) = (i for i, line in enumerate(lines) if needle in line)
        return index

    def tamper(self, session_id: str, old: bytes, new: bytes) -> None:
        stored = self._session(session_id)
        index = self._index_holding(session_id, old)
        assert stored.lines[index].count(old) == 1
        stored.lines[index] = stored.lines[index].replace(old, new)
        stored.changed()  # as a changed file's stamp does

    def cut_events(self, session_id: str, keep: int) -> None:
        stored = self._session(session_id)
        del stored.lines[keep - stored.first + 1 :]
        stored.changed()

    def line_holding(self, session_id: str, needle: bytes) -> bytes:
        return bytes(self._session(session_id).lines[self._index_holding(session_id, needle)])

    def plant_quarantine(self, session_id: str, line: bytes) -> None:
        stored = self._session(session_id)
        stored.quarantine.append(line)
        stored.changed()

    def forge_base(self, session_id: str, state: Any, seq: int, digest: str) -> None:
        stored = self._session(session_id)
        stored.base = _base_bytes(state, seq, digest)
        stored.snapshots = {}
        stored.lines = [line for line in stored.lines if _seq_of(line) > seq]
        stored.first = seq + 1
        stored.active = max(stored.active, stored.first)
        stored.changed()

    def event_line(self, session_id: str, seq: int) -> bytes:
        stored = self._session(session_id)
        return bytes(stored.lines[seq - stored.first])

    def rewrite_event(self, session_id: str, seq: int, line: bytes, digest: str) -> None:
        stored = self._session(session_id)
        stored.lines[seq - stored.first] = line.rstrip(b"\n")
        stored.changed()
