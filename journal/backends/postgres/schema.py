"""The PostgreSQL backend's schema: created on first use, versioned, idempotent.

Tables (in the connection's schema, ``public`` unless the URL's ``options`` set a
``search_path``):

* ``journal_sessions``: one row per session: ``incarnation`` (new for every create after a
  delete, so a re-created session never matches an old cache), ``generation`` (bumped when
  compaction, redaction or repair change stored rows), ``last_seq``, and ``active_from``
  (the first seq not archived).
* ``journal_events``: one row per event, keyed by ``(session_id, seq)``: two writers racing for
  one seq cannot both win. ``line`` holds the event's JSONL line byte for byte (without its
  newline), so hashes, chain, redaction and export are the files backend's. Partitioned by
  ``archived``: ``compact(prune=True)`` moves rows into ``journal_events_archive``.
* ``journal_snapshots`` (caches) and ``journal_bases`` (retention bases: history).
* ``journal_quarantine``: rows ``repair`` moved out of the history, never deleted.

``migrate`` runs every step not yet recorded in ``journal_schema``, under an advisory lock, so
any number of processes may start at once.
"""

from __future__ import annotations

from typing import Any

from journal.errors import NewerSchemaError

__all__ = ["SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 1

_MIGRATION_LOCK = 0x6A6F75726E616C  # "journal": one lock id for every migrating process

_STEPS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS journal_sessions (
            id text PRIMARY KEY,
            incarnation uuid NOT NULL,
            generation bigint NOT NULL DEFAULT 0,
            last_seq bigint NOT NULL DEFAULT 0,
            active_from bigint NOT NULL DEFAULT 1
        )""",
        """CREATE TABLE IF NOT EXISTS journal_events (
            session_id text NOT NULL,
            seq bigint NOT NULL CHECK (seq >= 1),
            hash text NOT NULL,
            type text NOT NULL,
            line bytea NOT NULL,
            archived boolean NOT NULL DEFAULT false,
            PRIMARY KEY (session_id, seq, archived)
        ) PARTITION BY LIST (archived)""",
        """CREATE TABLE IF NOT EXISTS journal_events_active
            PARTITION OF journal_events FOR VALUES IN (false)""",
        """CREATE TABLE IF NOT EXISTS journal_events_archive
            PARTITION OF journal_events FOR VALUES IN (true)""",
        # The partition key must be part of the primary key, so (session, seq) alone is unique
        # per partition: here, in the active one, where every append lands. Rows reach the
        # archive only from the active partition, below the seqs still appended to.
        """CREATE UNIQUE INDEX IF NOT EXISTS journal_events_active_seq
            ON journal_events_active (session_id, seq)""",
        """CREATE TABLE IF NOT EXISTS journal_snapshots (
            session_id text NOT NULL,
            seq bigint NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""",
        """CREATE TABLE IF NOT EXISTS journal_bases (
            session_id text PRIMARY KEY,
            seq bigint NOT NULL,
            data bytea NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS journal_quarantine (
            session_id text NOT NULL,
            moved_at timestamptz NOT NULL DEFAULT now(),
            seq bigint NOT NULL,
            line bytea NOT NULL,
            reason text NOT NULL
        )""",
    ],
}


def migrate(conn: Any) -> int:
    """Bring the schema on ``conn`` (autocommit) up to ``SCHEMA_VERSION``; returns it.

    Raises:
        NewerSchemaError: the database holds a newer schema than this library knows (nothing
            is changed: an older library must not write into it).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
        conn.execute("CREATE TABLE IF NOT EXISTS journal_schema (version integer PRIMARY KEY)")
        row = conn.execute("SELECT max(version) FROM journal_schema").fetchone()
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"the database holds journal schema {current}; this library knows {SCHEMA_VERSION}:"
                " upgrade journal"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _STEPS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO journal_schema (version) VALUES (%s)", [version])
    return SCHEMA_VERSION
