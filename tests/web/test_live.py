"""The sessions page's live updates, and the viewer on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from journal import Journal
from journal.web import create_app
from tests.pg import fresh_schema, need_server
from tests.web.helpers import CHAT, DAMAGED, populate


def _changes(client: TestClient, query: str, write: object) -> list[dict[str, object]]:
    """The change events one stream of ``query`` delivers while ``write`` runs beside it."""
    events: list[dict[str, object]] = []
    later = threading.Timer(0.8, write)  # type: ignore[arg-type]
    later.start()
    try:
        with client.stream("GET", f"/api/changes?{query}") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
    finally:
        later.join()
    return events


def test_a_folder_journal_reports_appends_to_watched_sessions(client: TestClient, store: Journal) -> None:
    # Oracle: the append made while the stream is open is reported, naming its session.
    other = Journal(store.root)
    try:
        events = _changes(
            client,
            f"watch={quote(CHAT, safe='')}&timeout=2",
            lambda: other.add_message(CHAT, "user", "new!"),
        )
    finally:
        other.close()
    assert {"sessions": [CHAT]} in events


def test_a_folder_journal_reports_new_sessions(client: TestClient, store: Journal) -> None:
    other = Journal(store.root)
    try:
        events = _changes(client, "timeout=2", lambda: other.create("brand-new"))
    finally:
        other.close()
    assert {"sessions": None} in events


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema(need_server()) as schema:
        with Journal.from_url(schema) as j:
            populate(j)
        yield schema


def test_the_viewer_works_on_postgresql(pg_url: str) -> None:
    with Journal.from_url(pg_url) as pg_store:
        _check_postgres(pg_store, pg_url)


def _check_postgres(pg_store: Journal, url: str) -> None:
    sid = quote(CHAT, safe="")
    with TestClient(create_app(pg_store)) as c:
        listed = c.get("/api/sessions", params={"sort": "updated"}).json()
        assert listed["total"] >= 8
        assert all(row["error"] is None for row in listed["sessions"])
        assert "Found it" in c.get(f"/s/{sid}").text
        replayed = c.get(f"/api/sessions/{sid}", params={"at": "4"}).json()
        assert [m["content"] for m in replayed["messages"]] == [
            m.content for m in pg_store.replay(CHAT, at=4).messages
        ]
        assert c.get(f"/s/{sid}/diff", params={"from": "2", "to": "9"}).status_code == 200
        assert c.get(f"/api/sessions/{sid}/verify").json()["ok"]
        assert c.get("/verify").status_code == 200
        assert c.get(f"/api/sessions/{quote(DAMAGED, safe='')}/head").json()["seq"] == 3
        other = Journal.from_url(url)
        try:
            start = time.monotonic()
            events = _changes(c, "timeout=2", lambda: other.add_message(CHAT, "user", "hello pg"))
        finally:
            other.close()
        assert {"sessions": [CHAT]} in events
        assert time.monotonic() - start < 10
