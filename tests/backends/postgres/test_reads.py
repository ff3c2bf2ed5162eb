"""Reading whole histories from PostgreSQL: in chunks of rows, each row checked before it is
trusted, on a real server.

``CHUNK`` is made tiny here so that a dozen events cross several chunk boundaries; what is read
is compared with what a Journal that wrote the session holds (its cache never read the rows).
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from journal import CorruptLogError, Journal, MessageAdded
from journal.backends.postgres import rows
from journal.backends.postgres.storage import PgStorage

JOIN_TIMEOUT = 60.0  # only turns a hang into a failure


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(rows, "CHUNK", 3)
    return 3


def written(url: str, count: int) -> Journal:
    """A Journal that wrote session "s" (``count`` messages, no snapshot) and still caches it."""
    journal = Journal.from_url(url, snapshot_every=0, snapshot_bytes=0)
    journal.create("s")
    for n in range(count):
        journal.add_message("s", "user", f"m{n}", metadata={"n": n, "tags": ["a", n]})
    return journal


def sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def test_a_history_read_in_many_chunks_is_the_whole_history(pg_url: str, small_chunks: int) -> None:
    with written(pg_url, 11) as writer, Journal.from_url(pg_url) as reader:
        assert reader.get("s") == writer.get("s")
        assert list(reader.events("s")) == list(writer.events("s"))
        assert reader.verify("s").ok
        # A cold load ends where the writer's appends did: the next append chains on.
        assert reader.add_message("s", "user", "after").seq == 13
    with Journal.from_url(pg_url) as fresh:
        assert [m.content for m in fresh.get("s").messages][-2:] == ["m10", "after"]


def test_rows_after_a_gap_longer_than_a_chunk_are_still_read_and_reported(
    pg_url: str, small_chunks: int
) -> None:
    # Seqs 5..9 are gone: more than a chunk of seqs with no row. The rows after the gap must
    # still be read (and refused where they fail to chain), not taken for the end of the log.
    with written(pg_url, 11):
        pass
    sql(pg_url, "DELETE FROM journal_events WHERE session_id = 's' AND seq BETWEEN 5 AND 9")
    with Journal.from_url(pg_url) as reader:
        with pytest.raises(CorruptLogError) as caught:
            reader.get("s")
        assert caught.value.line == 10
        assert "seq 10 where 5 was expected" in str(caught.value)
        assert [p.kind for p in reader.verify("s").problems] == ["gap"]


def test_a_row_stored_under_another_seq_is_damage(pg_url: str, small_chunks: int) -> None:
    # The line of seq 12 moved to the key 20: every line still chains, but the head a reader
    # would take from the key is not the line's.
    with written(pg_url, 11):
        pass
    sql(pg_url, "UPDATE journal_events SET seq = 20 WHERE session_id = 's' AND seq = 12")
    with Journal.from_url(pg_url) as reader:
        with pytest.raises(CorruptLogError) as caught:
            reader.get("s")
        assert "the row of seq 20 holds the line of seq 12" in str(caught.value)
        # verify agrees with reads, and repair keeps what reads can trust.
        problems = reader.verify("s").problems
        assert [(p.kind, p.line) for p in problems] == [("reordered", 20)]
        assert reader.repair("s").kept == 11
        assert reader.get("s").version == 11
        assert reader.add_message("s", "user", "again").seq == 12
        assert reader.verify("s").ok


def test_a_damaged_row_in_a_later_chunk_stops_the_read_there(pg_url: str, small_chunks: int) -> None:
    with written(pg_url, 11):
        pass
    # One byte of the sealed part of seq 8's line changed: its hash no longer matches.
    sql(
        pg_url,
        "UPDATE journal_events SET line = overlay(line placing 'X'::bytea from 20 for 1)"
        " WHERE session_id = 's' AND seq = 8",
    )
    with Journal.from_url(pg_url) as reader:
        with pytest.raises(CorruptLogError) as caught:
            reader.get("s")
        assert caught.value.line == 8
        # Streamed (the seam's history, as ``events`` reads it): every record before the damage.
        records = reader.storage.reader("s").history()[2]
        assert [next(records).event.seq for _ in range(7)] == list(range(1, 8))
        with pytest.raises(CorruptLogError):
            next(records)


def test_a_slow_reader_of_a_history_holds_no_connection_between_chunks(
    pg_url: str, small_chunks: int
) -> None:
    # One pooled connection: if iterating a history held it, the other thread's read would wait
    # for the pool until it gave up. Chunk by chunk, each read takes its turn.
    with written(pg_url, 11):
        pass
    with Journal(storage=PgStorage(pg_url, pool_size=1)) as journal:
        events = journal.events("s")
        first = [next(events) for _ in range(5)]  # two chunks read, the third not yet
        seen: list[int] = []
        other = threading.Thread(target=lambda: seen.append(journal.get("s").version))
        other.start()
        other.join(JOIN_TIMEOUT)
        assert seen == [12]
        rest = list(events)
    contents = [e.content for e in first + rest if isinstance(e, MessageAdded)]
    assert contents == [f"m{n}" for n in range(11)]
