"""PostgreSQL for the tests: the server to use, and a fresh schema per test.

The server is ``JOURNAL_TEST_POSTGRES_URL``, or the local one (127.0.0.1:5432, user
``postgres``) when it answers. Without one, PostgreSQL tests skip with the reason; where
``JOURNAL_REQUIRE_POSTGRES`` or ``CI`` is set (``.ci/run`` sets the first), they fail instead,
so CI never passes by skipping them.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from tests.requirements import required

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@functools.cache
def server_url() -> tuple[str | None, str]:
    """(the server's URL, or None and why not)."""
    url = os.environ.get("JOURNAL_TEST_POSTGRES_URL", DEFAULT_URL)
    try:
        import psycopg
    except ImportError:
        return None, 'psycopg is not installed (pip install "chat-journal[postgres]")'
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return None, f"no PostgreSQL server answers at {url}: {str(exc).strip().splitlines()[0]}"
    return url, ""


def need_server() -> str:
    """The server's URL, or skip (fail where PostgreSQL is required) with the reason."""
    url, why = server_url()
    if url is None:
        if required():
            pytest.fail(f"PostgreSQL tests must run here: {why}")
        pytest.skip(why)
    return url


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema, dropped afterwards."""
    import psycopg

    name = f"jt_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={name}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")
