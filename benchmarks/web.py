"""The viewer's budget: the sessions page of 10,000 sessions and the page of a 50,000-event
session, each answered in under a second.

Each is timed through Starlette's test client (the whole app: routing, the library's reads,
the template) on a fresh app, so the first view pays every cold cost of the viewer's own
caches; the journal's files are in the page cache, as on a server that is in use. The
baseline is the budget itself (1 s): the ratio is the share of it used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmarks.common import CONTENT, METADATA, Row, timed
from journal import Journal, NewMessage

BUDGET = 1.0


def web(tmp: Path, sessions: int, events: int, repeats: int = 3) -> list[Row]:
    """The two pages, ``repeats`` times each on a fresh app; no rows without the web extra."""
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("httpx") is None:
        return []
    from starlette.testclient import TestClient

    from journal.web import create_app

    root = tmp / "web"
    with Journal(root, fsync="never") as j:
        for n in range(sessions):
            sid = f"session-{n:06d}"
            j.create(sid, actor="web")
            j.add_message(sid, "user", CONTENT, metadata=METADATA, actor="web")
        j.create("long", actor="web")
        batch = [NewMessage(role="user", content=CONTENT, metadata=METADATA)] * 1_000
        while j.get("long").version < events:
            left = events - j.get("long").version
            j.add_messages("long", batch[:left], actor="web")

    def first_view(path: str) -> list[float]:
        samples = []
        for _ in range(repeats):
            with Journal(root) as j, TestClient(create_app(j)) as client:

                def get() -> None:
                    answer = client.get(path)
                    assert answer.status_code == 200, answer.text[:200]

                samples += timed(get, 1)
        return samples

    return [
        Row(
            f"web: sessions page, {sessions:,} sessions", first_view("/"), "budget 1 s", [BUDGET], target=1.0
        ),
        Row(
            f"web: session page, {events:,} events", first_view("/s/long"), "budget 1 s", [BUDGET], target=1.0
        ),
    ]
