"""Choosing a backend by URL, and copying sessions between backends byte for byte."""

from __future__ import annotations

import gzip
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from journal import InvalidSessionIdError, Journal, SessionNotFoundError
from journal.copying import copy_sessions
from tests.helpers_verify import clean_but_the_base


def test_from_url_takes_a_path_or_a_file_url(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a"), (tmp_path / "b").as_uri(), f"file://localhost{tmp_path / 'c'}"):
        with Journal.from_url(url) as journal:
            journal.create("s")
            assert journal.backend == "files"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("s3://bucket/x", "no backend serves s3://"),
        ("http://example.com/j", "no backend serves http://"),
        ("file://otherhost/x", "cannot name another host"),
    ],
)
def test_from_url_refuses_what_no_backend_serves(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Journal.from_url(url)


def test_a_postgres_url_never_shows_its_password(pg_url: str) -> None:
    with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    with Journal(with_password) as journal:
        assert journal.backend == "postgres"
        assert "s3cret" not in repr(journal)
        assert "s3cret" not in journal.root


def _populate(journal: Journal) -> None:
    for sid in ("a", "b"):
        journal.create(sid)
        first = journal.add_message(sid, "user", f"{sid} private")
        for i in range(6):
            journal.add_message(sid, "assistant", f"{sid} {i}")
        journal.edit_message(sid, first.id, f"{sid} private, edited")
        journal.redact_message(sid, first.id, reason="asked")
        journal.update_settings(sid, {"k": sid})


def _files_bytes(root: Path) -> bytes:
    return b"".join(
        gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".jsonl", ".gz")
    )


def test_copy_files_to_postgres_and_back_keeps_every_session_byte_for_byte(
    tmp_path: Path, pg_url: str
) -> None:
    source_root, back_root = tmp_path / "source", tmp_path / "back"
    with (
        Journal(source_root, archive_after=4, retention=timedelta(microseconds=1)) as source,
        Journal.from_url(pg_url) as middle,
        Journal(back_root) as back,
    ):
        _populate(source)
        there = copy_sessions(source, middle)
        assert [(c.session_id, c.skipped, c.problems) for c in there] == [("a", None, ()), ("b", None, ())]
        home = copy_sessions(middle, back)
        assert [c.head for c in home] == [c.head for c in there]
        for sid in ("a", "b"):
            assert source.get(sid) == middle.get(sid) == back.get(sid)
            assert list(source.events(sid)) == list(middle.events(sid)) == list(back.events(sid))
            assert back.head(sid) == source.head(sid)
            # The lines themselves, and the retention base, byte for byte.
            exported = source.export_session(sid)
            assert back.export_session(sid) == middle.export_session(sid) == exported
        assert middle.verify().ok
        # Every session was pruned into a retention base: an exported head cannot vouch for it.
        assert clean_but_the_base(back.verify(anchors=[source.head("a"), source.head("b")]))
        assert b"private" not in _files_bytes(back_root)
        again = copy_sessions(source, back)
        assert [(c.skipped, c.events) for c in again] == [("exists in the target", 0)] * 2
        with pytest.raises(SessionNotFoundError):
            copy_sessions(source, back, ["missing"])
        with pytest.raises(InvalidSessionIdError):
            copy_sessions(source, back, [""])


def test_export_walks_an_overlapping_leftover_segment_as_reads_do(tmp_path: Path) -> None:
    # Oracle: the export of a clean layout. An interrupted compaction can leave a segment that
    # overlaps the one before it; reads skip the lines it shares, and so must the export.
    root = tmp_path / "j"
    with Journal(root) as journal:
        journal.create("s")
        for i in range(3):
            journal.add_message("s", "user", f"m{i}")
        journal.compact("s", prune=True)  # segment 1-3, active log from 4
        for i in range(3, 7):
            journal.add_message("s", "user", f"m{i}")
        journal.compact("s", prune=True)  # segment 4-7, active log from 8
        clean = journal.export_session("s")
    archive = next(root.rglob("archive"))
    lines = b"".join(line + b"\n" for line in clean[1][1:7])  # seqs 2..7
    (archive / "00000000000000000002-00000000000000000007.jsonl.gz").write_bytes(gzip.compress(lines))
    with Journal(root) as journal:
        assert [e.seq for e in journal.events("s")] == list(range(1, 9))
        assert journal.export_session("s") == clean


def test_the_schema_is_made_once_even_by_processes_starting_together(pg_url: str) -> None:
    # Oracle: journal_schema records each version once; every table exists; concurrent first
    # uses (each its own connection, like separate processes) neither fail nor repeat a step.
    import psycopg

    from journal.backends.postgres.schema import SCHEMA_VERSION, migrate

    def first_use() -> int:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return migrate(conn)

    threads = [threading.Thread(target=lambda: results.append(first_use())) for _ in range(4)]
    results: list[int] = []
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [SCHEMA_VERSION] * 4
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM journal_schema").fetchall() == [(SCHEMA_VERSION,)]
        tables = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        }
    assert {
        "journal_sessions",
        "journal_events",
        "journal_snapshots",
        "journal_bases",
        "journal_quarantine",
    } <= tables
    with Journal(pg_url) as journal:  # and a Journal's own first use finds it made
        journal.create("s")
        assert journal.get("s").version == 1


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str) -> None:
    import psycopg

    from journal import StorageError
    from journal.backends.postgres.schema import SCHEMA_VERSION, migrate

    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("INSERT INTO journal_schema (version) VALUES (%s)", [SCHEMA_VERSION + 1])
    with Journal(pg_url) as journal, pytest.raises(StorageError, match="upgrade journal"):
        journal.create("s")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM journal_sessions").fetchone() == (0,)
