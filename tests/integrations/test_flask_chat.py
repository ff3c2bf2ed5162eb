"""The Flask chat example (``examples/flask_chat``): every route, and real multi-process serving.

The example is imported by name at run time (the repository root is put on ``sys.path``), not
statically: it is not part of the installed package, and mypy checks it on its own.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Skips without the framework; fails on CI, where the dev extra installs it (tests/conftest.py).
pytest.importorskip("flask", reason="flask is installed by the dev and flask extras")

from flask import Flask
from flask.testing import FlaskClient

from journal import Journal, Message, Session

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

chat: ModuleType = importlib.import_module("examples.flask_chat.app")
create_app: Callable[..., Flask] = chat.create_app
journal_for: Callable[[Flask], Journal] = chat.journal_for

CTX = multiprocessing.get_context("spawn")
TIMEOUT = 30.0  # only turns a hang into a failure


@pytest.fixture
def app(root: Path) -> Iterator[Flask]:
    app = create_app(root, fsync="never")
    yield app
    journal_for(app).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def url(sid: str) -> str:
    """A session id as one URL path part (the app reads the rest of the path as the id)."""
    return urllib.parse.quote(sid, safe="")


def make(client: FlaskClient, sid: str) -> dict[str, Any]:
    response = client.post("/api/sessions", json={"id": sid})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def say(client: FlaskClient, sid: str, text: str) -> dict[str, Any]:
    response = client.post(f"/api/sessions/{url(sid)}/messages", json={"content": text})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def events(client: FlaskClient, sid: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/sessions/{url(sid)}/events")
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.get_json()["events"]
    return rows


def text(response: Any) -> str:
    body: str = response.get_data(as_text=True)
    return body


# -- pages and API, one route at a time ---------------------------------------------------------


def test_creating_the_app_touches_no_file(root: Path) -> None:
    # What makes it safe to create the app before a server forks its workers.
    create_app(root)
    assert not root.exists()


def test_index_lists_every_session_with_its_counts(client: FlaskClient) -> None:
    assert "No sessions yet" in text(client.get("/"))
    make(client, "alpha")
    make(client, "beta")
    say(client, "beta", "hi")

    page = text(client.get("/"))
    assert 'href="/s/alpha"' in page
    assert 'href="/s/beta"' in page
    listed = {row["id"]: row for row in client.get("/api/sessions").get_json()["sessions"]}
    assert set(listed) == {"alpha", "beta"}
    assert (listed["alpha"]["messages"], listed["alpha"]["version"]) == (0, 1)
    assert (listed["beta"]["messages"], listed["beta"]["version"]) == (2, 3)  # the message and its reply
    assert client.get("/api/sessions").get_json()["sessions"][0]["id"] == "beta"  # newest first


def test_open_form_gets_or_creates_like_the_classic_helper(client: FlaskClient) -> None:
    first = client.post("/open", data={"name": " user-123 "})
    assert first.status_code == 303
    assert first.headers["Location"] == "/s/user-123"
    again = client.post("/open", data={"name": "user-123"})
    assert again.headers["Location"] == "/s/user-123"
    assert [e["type"] for e in events(client, "user-123")] == ["created"]  # opened, not created twice

    created = client.post("/api/sessions")  # no body: a random id, too
    assert (created.status_code, len(created.get_json()["id"])) == (201, 32)

    fresh = client.post("/open", data={"name": ""})
    assert fresh.status_code == 303
    new_id = fresh.headers["Location"].removeprefix("/s/")
    assert len(new_id) == 32
    assert client.get(f"/api/sessions/{new_id}").get_json()["version"] == 1


def test_posting_a_message_stores_it_and_the_reply_and_shows_both_escaped(client: FlaskClient) -> None:
    make(client, "s")
    response = client.post("/s/s/messages", data={"content": "<b>hello</b>"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/s/s"

    page = text(client.get("/s/s"))
    assert "&lt;b&gt;hello&lt;/b&gt;" in page
    assert "You said: &lt;b&gt;hello&lt;/b&gt;" in page
    assert "<b>hello</b>" not in page
    stored = client.get("/api/sessions/s").get_json()
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "<b>hello</b>"),
        ("assistant", "You said: <b>hello</b>"),
    ]
    user, assistant = stored["messages"]
    assert assistant["metadata"] == {"in_reply_to": user["id"]}
    assert (user["actor"], assistant["actor"]) == ("127.0.0.1", "assistant")


def test_api_post_returns_the_message_and_the_reply(client: FlaskClient) -> None:
    make(client, "s")
    body = say(client, "s", "ping")
    assert (body["message"]["role"], body["message"]["content"], body["message"]["seq"]) == (
        "user",
        "ping",
        2,
    )
    assert (body["reply"]["content"], body["reply"]["seq"]) == ("You said: ping", 3)
    assert datetime.fromisoformat(body["message"]["at"].replace("Z", "+00:00")).utcoffset() == timedelta(0)


def test_the_reply_is_pluggable(root: Path) -> None:
    seen: list[tuple[int, str]] = []

    def shout(session: Session, message: Message) -> str | None:
        seen.append((len(session.messages), message.content))
        return None if message.content == "quiet" else message.content.upper()

    app = create_app(root, reply=shout, fsync="never")
    client = app.test_client()
    make(client, "s")
    assert say(client, "s", "hey")["reply"]["content"] == "HEY"
    assert say(client, "s", "quiet")["reply"] is None
    # The reply sees the session with the user's message already in it.
    assert seen == [(1, "hey"), (3, "quiet")]
    assert [m["content"] for m in client.get("/api/sessions/s").get_json()["messages"]] == [
        "hey",
        "HEY",
        "quiet",
    ]
    journal_for(app).close()

    silent = create_app(root, reply=None, fsync="never")
    assert say(silent.test_client(), "s", "anyone?")["reply"] is None
    assert len(journal_for(silent).get("s").messages) == 4
    journal_for(silent).close()


def test_a_failing_reply_is_a_clean_500_and_the_message_stays(root: Path) -> None:
    def broken(session: Session, message: Message) -> str:
        raise RuntimeError("the model is down at /secret/path")

    app = create_app(root, reply=broken, fsync="never")
    app.logger.disabled = True  # the expected traceback would only clutter the test output
    client = app.test_client()
    make(client, "s")
    response = client.post("/api/sessions/s/messages", json={"content": "hi"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error", "status": 500}
    page = client.post("/s/s/messages", data={"content": "again"})
    assert page.status_code == 500
    assert "Traceback" not in text(page)
    assert "/secret/path" not in text(page)
    assert [m.content for m in journal_for(app).get("s").messages] == ["hi", "again"]
    journal_for(app).close()


def test_settings_from_the_form_and_the_api(client: FlaskClient) -> None:
    make(client, "s")
    assert client.post("/s/s/settings", data={"key": "temperature", "value": "0.2"}).status_code == 303
    assert client.post("/s/s/settings", data={"key": "model", "value": "small one"}).status_code == 303
    assert client.get("/api/sessions/s").get_json()["settings"] == {"temperature": 0.2, "model": "small one"}
    page = text(client.get("/s/s"))
    assert "<th>temperature</th><td>0.2</td>" in page

    assert client.post("/s/s/settings", data={"key": "model", "remove": "1"}).status_code == 303
    changes = {"tags": ["a", "b"], "nested": {"a": [1, {"b": None}]}}
    response = client.post("/api/sessions/s/settings", json={"changes": changes, "remove": ["x"]})
    assert response.status_code == 200
    assert response.get_json()["settings"] == {"temperature": 0.2, **changes}
    page = text(client.get("/s/s"))
    assert "<th>nested</th><td>{&#34;a&#34;:[1,{&#34;b&#34;:null}]}</td>" in page
    assert "<th>model</th>" not in page
    assert client.post("/api/sessions/s/settings", json={"changes": ["no"]}).status_code == 400
    assert client.post("/s/s/settings", data={"key": " ", "value": "1"}).status_code == 400


def test_clear_empties_the_conversation_but_history_and_replay_keep_it(client: FlaskClient) -> None:
    make(client, "s")
    say(client, "s", "remember me")
    cleared = client.post("/s/s/clear")
    assert cleared.status_code == 303
    assert "No messages." in text(client.get("/s/s"))
    assert client.get("/api/sessions/s").get_json()["messages"] == []

    log = events(client, "s")
    assert [(e["seq"], e["type"]) for e in log] == [
        (1, "created"),
        (2, "message_added"),
        (3, "message_added"),
        (4, "cleared"),
    ]
    assert [e["actor"] for e in log] == ["127.0.0.1", "127.0.0.1", "assistant", "127.0.0.1"]
    assert log[1]["content"] == "remember me"

    history = text(client.get("/s/s/history"))
    assert "remember me" in history
    assert "You said: remember me" in history
    for kind in ("created", "message_added", "cleared"):
        assert f'class="event {kind}"' in history
    assert log[3]["at"] in history  # every row shows its time
    assert 'href="/s/s/replay?at=3"' in history

    by_seq = client.get("/s/s/replay?at=3")
    assert by_seq.status_code == 200
    assert "As it was at seq 3" in text(by_seq)
    assert "remember me" in text(by_seq)
    assert 'action="/s/s/messages"' not in text(by_seq)  # the past is read-only
    assert [m["content"] for m in client.get("/api/sessions/s/replay?at=2").get_json()["messages"]] == [
        "remember me"
    ]
    assert client.get("/api/sessions/s/replay?at=4").get_json()["messages"] == []

    # By time: the moment of the reply, as the audit view shows it, in UTC and in another zone.
    reply_at = datetime.fromisoformat(log[2]["at"].replace("Z", "+00:00"))
    for at in (log[2]["at"], reply_at.astimezone(datetime.now().astimezone().tzinfo).isoformat()):
        response = client.get("/api/sessions/s/replay", query_string={"at": at})
        assert response.status_code == 200
        assert len(response.get_json()["messages"]) == 2
    before = (reply_at - timedelta(days=1)).isoformat()
    assert client.get("/api/sessions/s/replay", query_string={"at": before}).status_code == 404


def test_clear_through_the_api_returns_the_empty_session(client: FlaskClient) -> None:
    make(client, "s")
    say(client, "s", "x")
    body = client.post("/api/sessions/s/clear").get_json()
    assert (body["messages"], body["version"]) == ([], 4)


def test_history_pages_through_long_sessions(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat, "HISTORY_PAGE", 3)
    make(client, "s")
    for i in range(3):
        say(client, "s", f"m{i}")  # 1 + 6 events
    seqs: list[int] = []
    after: int | None = 0
    while after is not None:
        page = client.get(f"/api/sessions/s/events?after={after}").get_json()
        seqs += [e["seq"] for e in page["events"]]
        after = page["next_after"]
    assert seqs == list(range(1, 8))
    assert 'href="/s/s/history?after=3"' in text(client.get("/s/s/history"))
    assert "m2" in text(client.get("/s/s/history?after=6"))


def test_undo_removes_the_last_message_and_history_keeps_it(client: FlaskClient) -> None:
    make(client, "s")
    assert "Undo last message" not in text(client.get("/s/s"))  # nothing to undo yet
    say(client, "s", "oops")
    page = text(client.get("/s/s"))
    assert '<input type="hidden" name="version" value="3">' in page
    assert client.post("/s/s/undo", data={"version": "3"}).status_code == 303
    assert [m["content"] for m in client.get("/api/sessions/s").get_json()["messages"]] == ["oops"]
    removed = client.post("/api/sessions/s/undo").get_json()["removed"]
    assert (removed["role"], removed["content"]) == ("user", "oops")
    missing = client.post("/api/sessions/s/undo")
    assert missing.status_code == 404  # nothing left to undo
    assert missing.get_json()["error"].startswith("no message in session 's'")
    assert [e["content"] for e in events(client, "s") if e["type"] == "message_added"] == [
        "oops",
        "You said: oops",
    ]
    assert [e["type"] for e in events(client, "s")][-2:] == ["message_removed", "message_removed"]
    assert "message_removed" in text(client.get("/s/s/history"))


def test_undo_of_a_conversation_that_moved_on_is_409_and_removes_nothing(client: FlaskClient) -> None:
    make(client, "s")
    say(client, "s", "mine")  # the page this user sees is at version 3 ...
    say(client, "s", "theirs")  # ... and another writer adds to it
    conflict = client.post("/s/s/undo", data={"version": "3"})
    assert conflict.status_code == 409
    assert "is at version 5, expected 3" in text(conflict)
    assert client.post("/api/sessions/s/undo", json={"expected_version": 3}).status_code == 409
    assert client.post("/api/sessions/s/undo", json={"expected_version": "x"}).status_code == 400
    assert client.post("/s/s/undo", data={"version": "-1"}).status_code == 400
    assert journal_for(client.application).get("s").version == 5
    assert client.post("/api/sessions/s/undo", json={"expected_version": 5}).status_code == 200


# -- bad input: always a clear 4xx ----------------------------------------------------------------

UNKNOWN = [
    ("get", "/s/nope"),
    ("get", "/s/nope/history"),
    ("get", "/s/nope/replay?at=1"),
    ("post", "/s/nope/messages"),
    ("post", "/s/nope/clear"),
    ("post", "/s/nope/settings"),
    ("get", "/api/sessions/nope"),
    ("get", "/api/sessions/nope/events"),
    ("get", "/api/sessions/nope/replay?at=1"),
    ("post", "/api/sessions/nope/messages"),
    ("post", "/api/sessions/nope/clear"),
    ("post", "/api/sessions/nope/settings"),
]


@pytest.mark.parametrize(("method", "path"), UNKNOWN)
def test_an_unknown_session_is_404_and_is_not_created(client: FlaskClient, method: str, path: str) -> None:
    form = {"content": "hi", "key": "k", "value": "1"}
    if method == "get":
        response = client.get(path)
    elif path.startswith("/api/"):
        response = client.post(path, json={"content": "hi", "changes": {"k": 1}})
    else:
        response = client.post(path, data=form)
    assert response.status_code == 404
    if path.startswith("/api/"):
        assert response.get_json()["error"].startswith("session 'nope' not found")
    else:
        assert "session &#39;nope&#39; not found" in text(response)
    assert client.get("/api/sessions").get_json()["sessions"] == []


@pytest.mark.parametrize(
    "body", [{"content": ""}, {"content": "  \n "}, {}, {"content": 3}, {"content": None}]
)
def test_an_empty_or_missing_message_is_400_and_writes_nothing(
    client: FlaskClient, body: dict[str, Any]
) -> None:
    make(client, "s")
    response = client.post("/api/sessions/s/messages", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "the message must be a non-empty text"
    form = {"content": body["content"]} if isinstance(body.get("content"), str) else {}
    assert client.post("/s/s/messages", data=form).status_code == 400
    assert [e["type"] for e in events(client, "s")] == ["created"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"text"', b'{"content": "\\ud800"}'],
    ids=["garbage", "list", "string", "lone-surrogate"],
)
def test_a_malformed_body_is_400(client: FlaskClient, body: bytes) -> None:
    make(client, "s")
    response = client.post("/api/sessions/s/messages", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.get_json()
    assert journal_for(client.application).get("s").version == 1


@pytest.mark.parametrize(
    "at",
    ["", "abc", "-1", "1.5", "2026-01-31T12:00:00", "2026-13-01T00:00:00Z", "12 34"],
)
def test_a_bad_point_in_time_is_400(client: FlaskClient, at: str) -> None:
    make(client, "s")
    for path in ("/s/s/replay", "/api/sessions/s/replay"):
        response = client.get(path, query_string={"at": at})
        assert response.status_code == 400, (path, at)
    assert "has no offset" in client.get("/api/sessions/s/replay?at=2026-01-31T12:00:00").get_json()["error"]
    assert client.get("/api/sessions/s/replay").status_code == 400  # no at at all


def test_replay_takes_the_points_the_command_line_takes(client: FlaskClient) -> None:
    # The web form and the CLI share journal.parse_point: an amount ago works here too.
    make(client, "s")
    now = client.get("/api/sessions/s/replay", query_string={"at": "-0s"}).get_json()
    assert now["version"] == journal_for(client.application).get("s").version
    earlier = client.get("/api/sessions/s/replay", query_string={"at": "-1H"})
    assert earlier.status_code == 404  # an hour ago the session did not exist
    assert "did not exist yet" in earlier.get_json()["error"]


def test_replay_before_the_session_existed_is_404(client: FlaskClient) -> None:
    make(client, "s")
    response = client.get("/api/sessions/s/replay?at=0")
    assert response.status_code == 404
    assert "did not exist yet" in response.get_json()["error"]


@pytest.mark.parametrize("sid", ["a%00b", "x" * 1025], ids=["nul", "too-long"])
def test_an_invalid_session_id_is_400(client: FlaskClient, sid: str) -> None:
    for response in (
        client.get(f"/s/{sid}"),
        client.get(f"/api/sessions/{sid}"),
        client.post(f"/api/sessions/{sid}/messages", json={"content": "hi"}),
        client.post("/open", data={"name": urllib.parse.unquote(sid)}),
    ):
        assert response.status_code == 400
        assert "invalid session id" in text(response)
    assert client.post("/api/sessions", json={"id": "line\nbreak"}).status_code == 400
    assert client.post("/api/sessions", json={"id": "/leading"}).status_code == 400
    assert client.post("/api/sessions", json={"id": 7}).status_code == 400


def test_other_client_errors_are_clean(app: Flask, client: FlaskClient) -> None:
    make(client, "s")
    assert client.post("/api/sessions", json={"id": "s"}).status_code == 409
    missing = client.get("/api/nothing-here")
    assert (missing.status_code, missing.get_json()["status"]) == (404, 404)  # JSON under /api, too
    assert client.delete("/api/sessions/s").status_code == 405
    assert client.get("/api/sessions/s/events?after=-1").status_code == 400
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert client.post("/api/sessions/s/messages", json={"content": "x" * 2000}).status_code == 413
    assert journal_for(app).get("s").version == 1


def test_a_damaged_log_is_a_clean_500_and_the_list_still_works(root: Path) -> None:
    with Journal(root) as journal:
        journal.create("s")
        journal.add_message("s", "user", "original words")
        journal.create("fine")
    log = next(root.glob("sessions/s~*/events.jsonl"))
    log.write_bytes(log.read_bytes().replace(b"original words", b"forged  words"))

    app = create_app(root)
    client = app.test_client()
    page = client.get("/s/s")
    assert page.status_code == 500
    assert "damaged" in text(page)
    assert str(root) not in text(page)
    assert "Traceback" not in text(page)
    index = client.get("/")
    assert index.status_code == 200
    assert "damaged: run" in text(index)
    assert 'href="/s/fine"' in text(index)
    journal_for(app).close()


HOSTILE = ["../../../outside", "..", ".", "a/../../b", "a//b", "trail/", "..\\..\\win", "CON", "~", "a?b#c %"]


def test_hostile_session_ids_stay_inside_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "deep" / "er" / "data"
    app = create_app(data, fsync="never")
    client = app.test_client()
    for sid in HOSTILE:
        make(client, sid)
        response = client.post(f"/s/{url(sid)}/messages", data={"content": f"for {sid}"})
        assert response.status_code == 303
        assert client.get(response.headers["Location"]).status_code == 200  # the redirect finds it again
        messages = client.get(f"/api/sessions/{url(sid)}").get_json()["messages"]
        assert (messages[0]["content"], len(messages)) == (f"for {sid}", 2)
    listed = {row["id"] for row in client.get("/api/sessions").get_json()["sessions"]}
    assert listed == set(HOSTILE)
    # "../../../outside" would land in tmp_path if an id ever became a path.
    outside = [
        p for p in tmp_path.rglob("*") if p != data and data not in p.parents and p not in data.parents
    ]
    assert outside == []
    assert journal_for(app).verify().ok
    journal_for(app).close()


# -- several processes on one data folder ------------------------------------------------------


def client_worker(root: str, writer: str, count: int, start: Barrier) -> None:
    """Post ``count`` messages to session "shared" through a test client of its own app."""
    app = create_app(root)
    client = app.test_client()
    start.wait(TIMEOUT)
    for i in range(count):
        if i % 2:
            response = client.post("/s/shared/messages", data={"content": f"{writer}:{i}"})
            assert response.status_code == 303, response.get_data(as_text=True)
        else:
            response = client.post("/api/sessions/shared/messages", json={"content": f"{writer}:{i}"})
            assert response.status_code == 201, response.get_data(as_text=True)
    journal_for(app).close()


def check_conversation(root: Path, sid: str, expected: set[str]) -> None:
    """Every expected user message exactly once with its own reply, seqs 1..n, a clean log."""
    with Journal(root) as journal:
        log = list(journal.events(sid))
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        messages = journal.get(sid).messages
        users = [m for m in messages if m.role == "user"]
        assert sorted(m.content for m in users) == sorted(expected)
        by_id = {m.id: m.content for m in users}
        replies = [m for m in messages if m.role == "assistant"]
        assert sorted(f"You said: {by_id[m.metadata['in_reply_to']]}" for m in replies) == sorted(
            m.content for m in replies
        )
        assert len(replies) == len(users)
        report = journal.verify()
        assert report.ok, report.problems


def test_processes_with_their_own_test_clients_share_one_folder(root: Path) -> None:
    processes, count = 3, 10
    setup = create_app(root, fsync="never")
    make(setup.test_client(), "shared")
    journal_for(setup).close()
    start = CTX.Barrier(processes)
    workers = [
        CTX.Process(target=client_worker, args=(str(root), f"p{k}", count, start)) for k in range(processes)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(TIMEOUT * 2)
    assert [w.exitcode for w in workers] == [0] * processes
    check_conversation(root, "shared", {f"p{k}:{i}" for k in range(processes) for i in range(count)})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# Python 3.12+ warns about forking while other threads run; none of this test's do.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_worker_opens_its_own_journal(root: Path) -> None:
    # gunicorn --preload: the parent created the app (and here even served a request) first.
    app = create_app(root, fsync="never")
    make(app.test_client(), "s")
    inherited = journal_for(app)

    def child() -> None:
        mine = journal_for(app)
        assert mine is not inherited
        assert journal_for(app) is mine
        say(app.test_client(), "s", "from the child")

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(TIMEOUT)
    assert process.exitcode == 0
    assert journal_for(app) is inherited
    assert [m.content for m in inherited.get("s").messages] == ["from the child", "You said: from the child"]
    inherited.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def request(base: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    # S310: every URL here is http://127.0.0.1:<port> of a server this test started.
    req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start ``python -m examples.flask_chat`` servers; each is stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(root: Path, *options: str) -> str:
        port = free_port()
        args = [sys.executable, "-m", "examples.flask_chat", str(root), "--port", str(port), *options]
        with (tmp_path / f"server-{port}.log").open("wb") as output:
            server = subprocess.Popen(args, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        started.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert server.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                if request(base, "/api/sessions")[0] == 200:
                    return base
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)

    yield start
    for server in started:
        server.terminate()
        try:
            server.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(TIMEOUT)


def test_real_servers_with_several_processes_lose_no_message(root: Path, serve: Callable[..., str]) -> None:
    # One server forks a process per request (up to 4 at once), the other serves from threads
    # of one long-lived process with a warm cache: both write the same files at the same time.
    forking = serve(root, "--processes", "4")
    threaded = serve(root)
    assert request(forking, "/api/sessions", {"id": "shared"})[0] == 201
    threads, count = 8, 15
    failures: list[str] = []
    go = threading.Barrier(threads)

    def post(t: int) -> None:
        go.wait(TIMEOUT)
        for i in range(count):
            base = forking if (t + i) % 2 else threaded
            status, body = request(base, "/api/sessions/shared/messages", {"content": f"t{t}:{i}"})
            if status != 201 or body["message"]["content"] != f"t{t}:{i}":
                failures.append(f"{base} t{t}:{i}: {status} {body}")

    clients = [threading.Thread(target=post, args=(t,)) for t in range(threads)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(TIMEOUT * 2)
    assert failures == []
    check_conversation(root, "shared", {f"t{t}:{i}" for t in range(threads) for i in range(count)})
    # Each server reads what the other wrote.
    versions = {request(base, "/api/sessions/shared")[1]["version"] for base in (forking, threaded)}
    assert versions == {1 + 2 * threads * count}
    last = 1 + 2 * threads * count
    status, body = request(threaded, f"/api/sessions/shared/events?after={last - 1}")
    assert (status, [e["seq"] for e in body["events"]]) == (200, [last])


def test_the_command_line_refuses_zero_processes() -> None:
    main: Callable[[list[str]], int] = importlib.import_module("examples.flask_chat.__main__").main
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "--processes", "0"])
    assert exit_info.value.code == 2
