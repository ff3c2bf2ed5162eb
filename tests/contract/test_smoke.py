"""One contract, every backend: the smallest round trip (the full suite is beside it)."""

from __future__ import annotations

from journal import Journal


def test_a_session_round_trips_on_every_backend(store_url: str) -> None:
    with Journal.from_url(store_url) as journal:
        journal.create("s")
        journal.add_message("s", "user", "hello")
        with Journal.from_url(store_url) as other:
            assert [m.content for m in other.get("s").messages] == ["hello"]
            assert other.verify().ok
