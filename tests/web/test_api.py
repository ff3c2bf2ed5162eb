"""Every route of the viewer, through Starlette's test client: pages and their JSON twins.

Oracles: the library itself (``replay``, ``verify``, ``head``) and the ``journal`` command
(``export``), run on the same journal; what a page shows is checked against them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from journal import Journal
from journal.cli.main import main as cli
from journal.web import create_app
from journal.web.app import session_url
from journal.web.listing import SORTS
from tests.web.helpers import CHAT, DAMAGED, IMG, ODD_IDS, SCRIPT, XSS, snapshot


def enc(sid: str) -> str:
    return quote(sid, safe="")


def test_sessions_page_lists_every_session_and_warns_about_the_damaged_one(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    for sid in (CHAT, *ODD_IDS):
        assert f'href="{session_url(sid)}"' in page.text.replace("&amp;", "&")
    assert re.search(r'<tr class="damaged" data-id="damaged">.*⚠ damaged', page.text, re.S)
    api = client.get("/api/sessions", params={"per_page": 100}).json()
    assert api["total"] == 3 + len(ODD_IDS)
    rows = {row["id"]: row for row in api["sessions"]}
    assert rows[CHAT] | {"created_at": None, "updated_at": None} == {
        "id": CHAT,
        "messages": 2,
        "version": 11,
        "created_at": None,
        "updated_at": None,
        "last_actor": "dpo",
        "error": None,
    }
    assert "content_sha256" in rows[DAMAGED]["error"]


def test_a_session_whose_id_cannot_be_read_is_listed_by_where_it_is_stored(tmp_path: Path) -> None:
    # Oracle: verify's report names the same stored data; the page and the API list it with
    # a warning (never as a link to a session page, there is no id to ask for), every sort and
    # an id search that matches its stored name find it, and the readable sessions stay.
    root = tmp_path / "root"
    with Journal(root) as j:
        j.create("kept")
        j.create("lost id")
        j.add_message("lost id", "user", "hello")
        log = Path(j.storage.location("lost id"))
    data = log.read_bytes()
    log.write_bytes(data.replace(b'"lost id"', b'"lost iD"', 1))  # the created line's hash fails
    with Journal(root) as j, TestClient(create_app(j)) as client:
        assert list(j.sessions()) == ["kept"]
        labels = [p.session_id for p in j.verify().problems]
        assert len(labels) == 1
        stored_as = log.parent.name
        assert stored_as in labels[0]
        page = client.get("/")
        row = re.search(
            r'<tr class="damaged unreadable" data-stored-as="([^"]+)">(.*?)</tr>', page.text, re.S
        )
        assert row is not None
        assert row[1] == stored_as
        assert "⚠ damaged" in row[2]
        assert 'href="/verify"' in row[2]
        assert "/s/" not in row[2]
        for sort in SORTS:
            for order in ("asc", "desc"):
                api = client.get("/api/sessions", params={"sort": sort, "order": order}).json()
                assert api["total"] == 2
                docs = {doc["id"]: doc for doc in api["sessions"]}
                assert set(docs) == {"kept", None}
                assert docs[None]["stored_as"] == stored_as
                assert "id can" in docs[None]["error"]
        found = client.get("/api/sessions", params={"q": stored_as[:6]}).json()
        assert [doc["stored_as"] for doc in found["sessions"]] == [stored_as]
        assert client.get("/api/sessions", params={"content": "hello"}).json()["total"] == 0


def test_a_stored_name_that_is_not_utf8_is_shown_escaped_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Oracle: the name's bytes as backslash escapes. A folder whose name is not UTF-8 (put
    # there by hand, or by a file system of another encoding) holding a damaged session must
    # not take the sessions page, the API or verify down with it, in the viewer or as JSON.
    root = tmp_path / "root"
    with Journal(root) as j:
        j.create("kept")
        log = Path(j.storage.location("kept"))
    first = log.read_bytes().splitlines()[0].replace(b'"kept"', b'"KEPT"')
    odd = os.path.join(os.fsencode(log.parent.parent), b"\xff\xfeodd~cc")
    os.mkdir(odd)
    with open(os.path.join(odd, b"events.jsonl"), "wb") as out:
        out.write(first + b"\n")
    escaped = "\\xff\\xfeodd~cc"
    with Journal(root) as j, TestClient(create_app(j)) as client:
        for path in ("/", "/verify"):
            page = client.get(path)
            assert page.status_code == 200
            assert escaped in page.text
        api = client.get("/api/sessions").json()
        assert [doc.get("stored_as") for doc in api["sessions"]] == [escaped, None]
        report = client.get("/api/verify").json()
        assert [p["session_id"] for p in report["problems"]] == [escaped]
    assert cli(["--root", str(root), "--json", "verify"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [p["session_id"] for p in doc["problems"]] == [escaped]


def test_search_sort_and_pages(client: TestClient) -> None:
    by_id = client.get("/api/sessions", params={"q": "CHAT"}).json()
    assert [row["id"] for row in by_id["sessions"]] == [CHAT]
    by_content = client.get("/api/sessions", params={"content": "ships today"}).json()
    assert [row["id"] for row in by_content["sessions"]] == [CHAT]
    newest = client.get("/api/sessions", params={"sort": "version", "order": "desc"}).json()
    assert newest["sessions"][0]["id"] == CHAT
    pages = [client.get("/api/sessions", params={"per_page": 3, "page": n}).json() for n in (1, 2, 3, 4)]
    seen = [row["id"] for p in pages for row in p["sessions"]]
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == pages[0]["total"]
    assert pages[0]["pages"] == 3
    assert pages[3]["sessions"] == []
    assert client.get("/api/sessions", params={"sort": "nope"}).status_code == 400
    page = client.get("/", params={"q": "caf", "sort": "updated", "order": "desc"})
    assert "café ☕" in page.text
    assert CHAT not in page.text


def test_session_page_shows_the_conversation_settings_and_every_event(
    client: TestClient, store: Journal
) -> None:
    page = client.get(f"/s/{enc(CHAT)}")
    assert page.status_code == 200
    assert "Found it, it ships today." in page.text
    assert "[content erased]" in page.text
    assert "my card is 4111" not in page.text
    assert "small-llm" in page.text
    rows = re.findall(r'<tr class="ev-([a-z_]+)', page.text)
    assert rows == [e.type for e in store.events(CHAT)]
    assert store.head(CHAT).hash in page.text


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("4", ["Where is order #1001?", "Checking", "thx"]),
        ("7", ["Where is my order #1001?", "Checking"]),
        ("8", []),
    ],
)
def test_replay_shows_the_conversation_as_the_library_replays_it(
    client: TestClient, store: Journal, at: str, expected: list[str]
) -> None:
    page = client.get(f"/s/{enc(CHAT)}", params={"at": at})
    shown = re.findall(r'<div class="content">(.*?)</div>', page.text, re.S)
    assert [text.replace("&#39;", "'") for text in shown] == [
        m.content for m in store.replay(CHAT, at=int(at)).messages
    ]
    assert all(any(text.startswith(e) for text in shown) for e in expected)
    doc = client.get(f"/api/sessions/{enc(CHAT)}", params={"at": at}).json()
    assert [m["content"] for m in doc["messages"]] == [
        m.content for m in store.replay(CHAT, at=int(at)).messages
    ]


def test_replay_takes_times_and_amounts_ago_like_the_command(client: TestClient, store: Journal) -> None:
    later = client.get(f"/api/sessions/{enc(CHAT)}", params={"at": "2999-01-01T00:00:00Z"}).json()
    assert later["version"] == 11
    assert client.get(f"/api/sessions/{enc(CHAT)}", params={"at": "-0s"}).json()["version"] == 11
    before = client.get(f"/api/sessions/{enc(CHAT)}", params={"at": "-100y"})
    assert before.status_code == 404
    for bad in ("2h", "2026-11-29T14:02", "x"):
        answer = client.get(f"/s/{enc(CHAT)}", params={"at": bad})
        assert answer.status_code == 400
        assert "at:" in answer.text
    assert client.get(f"/api/sessions/{enc(CHAT)}", params={"at": "99"}).status_code == 400


def test_diff_page_and_api_agree_with_the_command(
    client: TestClient, store: Journal, capsys: pytest.CaptureFixture[str]
) -> None:
    page = client.get(f"/s/{enc(CHAT)}/diff", params={"from": "4", "to": "10"})
    assert page.status_code == 200
    assert "version 4 → 10: 6 events, 2 messages added, 3 removed, 0 changed" in " ".join(page.text.split())
    doc = client.get(f"/api/sessions/{enc(CHAT)}/diff", params={"from": "4", "to": "10"}).json()
    assert cli(["--root", store.root, "--json", "diff", CHAT, "4", "10"]) == 0
    import json

    command = json.loads(capsys.readouterr().out)
    assert {k: doc[k] for k in command} == command
    edit = client.get(f"/api/sessions/{enc(CHAT)}/diff", params={"from": "5", "to": "6"}).json()
    assert edit["messages"]["changed"][0]["after"]["content"] == "Where is my order #1001?"
    assert client.get(f"/api/sessions/{enc(CHAT)}/diff", params={"from": "9", "to": "3"}).status_code == 400
    assert client.get(f"/api/sessions/{enc(CHAT)}/diff", params={"from": "1"}).status_code == 400


def test_verify_names_the_problem_and_the_heads(client: TestClient, store: Journal) -> None:
    page = client.get("/verify")
    assert "✘ 1 problems" in page.text
    assert re.search(
        r'<td class="kind">edited</td><td class="file">[^<]*events.jsonl</td><td class="num">2</td>',
        page.text,
    )
    assert store.head(CHAT).hash in page.text
    one = client.get(f"/api/sessions/{enc(DAMAGED)}/verify").json()
    assert not one["ok"]
    assert one["problems"][0]["kind"] == "edited"
    assert one["problems"][0]["line"] == 2
    good = client.get(f"/api/sessions/{enc(CHAT)}/verify").json()
    assert good["ok"]
    assert good["head"] == {"session_id": CHAT, "seq": 11, "hash": store.head(CHAT).hash}
    assert client.get("/api/verify").json()["ok"] is False
    assert client.get("/verify", params={"session": CHAT}).text.count("✔ intact") == 1
    assert client.get(f"/api/sessions/{enc(CHAT)}/head").json()["seq"] == 11
    damaged = client.get(f"/s/{enc(DAMAGED)}")
    assert damaged.status_code == 409
    assert "content_sha256" in damaged.text
    assert re.search(
        r'<td class="kind">edited</td><td class="file">[^<]*</td><td class="num">2</td>', damaged.text
    )
    assert "✘ 1 problems" in damaged.text


@pytest.mark.parametrize("fmt", ["md", "json", "jsonl"])
def test_exports_are_the_commands_bytes(
    client: TestClient, store: Journal, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = client.get(f"/s/{enc(CHAT)}/export", params={"format": fmt})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="team_chat_1.')
    assert cli(["--root", store.root, "export", CHAT, "--format", fmt]) == 0
    assert answer.text == capsys.readouterr().out
    assert client.get(f"/api/sessions/{enc(CHAT)}/export", params={"format": fmt}).text == answer.text
    assert client.get(f"/s/{enc(CHAT)}/export", params={"format": "exe"}).status_code == 400


def test_events_api_pages_through_history(client: TestClient) -> None:
    doc = client.get(f"/api/sessions/{enc(CHAT)}/events", params={"after": 4, "limit": 3}).json()
    assert [e["seq"] for e in doc["events"]] == [5, 6, 7]
    assert doc["events"][1]["type"] == "message_edited"


def test_unknown_sessions_and_pages_are_404(client: TestClient) -> None:
    for path in ("/s/nope", "/api/sessions/nope", "/s/nope/diff", "/s/a/b/c", "/nothing", "/s/", "/s/%ff"):
        assert client.get(path).status_code == 404, path
    assert client.post("/").status_code == 404


@pytest.mark.parametrize("sid", ODD_IDS)
def test_hostile_ids_reach_their_own_session_only(client: TestClient, sid: str) -> None:
    # Oracle: the page names the session it was asked for and shows its own message only.
    page = client.get(session_url(sid))
    assert page.status_code == 200, page.text
    shown = re.findall(r'<div class="content">(.*?)</div>', page.text, re.S)
    assert shown == [f"I am {sid}".replace("<", "&lt;").replace(">", "&gt;")]
    doc = client.get(f"/api/sessions/{enc(sid)}" if sid not in (".", "..") else f"/api/sessions/?id={sid}")
    assert doc.json()["id"] == sid


def test_dot_ids_cannot_climb_out(client: TestClient) -> None:
    # Encoded or not, a path of dots names a session id or nothing: never a file or another route.
    for path in (
        "/s/..%2F..%2Fetc%2Fpasswd",
        "/s/%2E%2E%2Fverify",
        "/static/..%2F..%2Fapp.py",
        "/static/../app.py",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "import" not in answer.text
    assert "I am ..</div>" in client.get("/s/%2E%2E").text


def test_content_is_escaped_everywhere(client: TestClient) -> None:
    for path in (f"/s/{enc(XSS)}", f"/s/{enc(XSS)}/diff?from=1&to=3", "/", "/verify", f"/s/{enc(XSS)}?at=2"):
        text = client.get(path).text
        for markup in ("<script>window", "<img src=x", "<b>"):
            assert markup not in text, path
        assert "<i>id</i>" not in text
    page = client.get(f"/s/{enc(XSS)}").text
    assert "&lt;script&gt;window.__pwned = 1" in page
    assert SCRIPT in client.get(f"/api/sessions/{enc(XSS)}").json()["messages"][0]["content"]
    assert client.get(f"/api/sessions/{enc(XSS)}").json()["messages"][1]["content"] == IMG


def test_no_route_writes_to_the_journal(client: TestClient, store: Journal) -> None:
    before = snapshot(Path(store.root))
    paths = [
        "/",
        "/?sort=updated&content=order",
        f"/s/{enc(CHAT)}",
        f"/s/{enc(CHAT)}?at=3",
        f"/s/{enc(CHAT)}/diff?from=2&to=9",
        f"/s/{enc(CHAT)}/export?format=md",
        f"/s/{enc(DAMAGED)}",
        "/verify",
        f"/verify?session={enc(DAMAGED)}",
        "/api/sessions",
        f"/api/sessions/{enc(CHAT)}",
        f"/api/sessions/{enc(CHAT)}/events",
        f"/api/sessions/{enc(CHAT)}/diff?from=1&to=11",
        f"/api/sessions/{enc(CHAT)}/verify",
        f"/api/sessions/{enc(CHAT)}/head",
        "/api/verify",
        "/api/changes?timeout=1",
    ]
    for path in paths:
        assert client.get(path).status_code in (200, 409), path
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)(f"/api/sessions/{enc(CHAT)}").status_code in (404, 405)
    assert snapshot(Path(store.root)) == before


def test_a_session_journal_of_a_missing_folder_is_not_created(tmp_path: Path) -> None:
    with Journal(tmp_path / "absent") as j, TestClient(create_app(j)) as c:
        assert c.get("/api/sessions").json()["total"] == 0
    assert not (tmp_path / "absent").exists()


def test_serve_is_a_command_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    # serve has its --help like every other command, the escape hatch for private networks in it.
    with pytest.raises(SystemExit):
        cli(["serve", "--help"])
    assert "--insecure-no-token" in capsys.readouterr().out
