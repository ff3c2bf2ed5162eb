"""Who may see the journal, and what a page may do: headers, the token, the address bound."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from journal import Journal
from journal.cli.main import main as cli
from journal.cli.serve import check_bind
from journal.web import create_app
from journal.web.security import HEADERS, LOOPBACK_NAMES, token_matches
from tests.web.helpers import CHAT

TOKEN = "s3cret-token"  # noqa: S105 (a test token)


@pytest.fixture
def locked(store: Journal) -> Iterator[TestClient]:
    with TestClient(create_app(store, token=TOKEN), follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize("path", ["/", f"/s/{quote(CHAT, safe='')}", "/verify", "/api/sessions", "/nothing"])
def test_every_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    answer = client.get(path)
    for name, value in HEADERS.items():
        assert answer.headers[name] == value
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_pages_hold_no_inline_script(client: TestClient) -> None:
    # With script-src 'self' an inline script would not run anyway; none is written either.
    page = client.get(f"/s/{quote(CHAT, safe='')}").text
    assert page.count("<script") == 1
    assert '<script src="/static/app.js" defer></script>' in page
    assert " on" not in page.split("<body>")[1].split("<main>")[0]


def test_without_the_token_every_route_is_401(locked: TestClient) -> None:
    for path in ("/", f"/s/{quote(CHAT, safe='')}", "/verify", "/api/sessions", "/api/changes", "/nothing"):
        answer = locked.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "order" not in answer.text
    assert locked.get("/api/sessions", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert locked.get("/api/sessions", headers={"cookie": "journal_token=wrong"}).status_code == 401


def test_a_bearer_token_opens_every_route(locked: TestClient) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert locked.get("/api/sessions", headers=auth).status_code == 200
    assert locked.get(f"/s/{quote(CHAT, safe='')}", headers=auth).status_code == 200


def test_a_browser_signs_in_with_the_form_and_gets_a_strict_http_only_cookie(locked: TestClient) -> None:
    wanted = f"/s/{quote(CHAT, safe='')}?at=3"
    form = locked.get(wanted, headers={"accept": "text/html"})
    assert form.status_code == 401
    assert 'name="token"' in form.text
    assert f'value="{wanted.replace("&", "&amp;")}"' in form.text
    refused = locked.post("/login", data={"token": "nope", "next": wanted})
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers
    answer = locked.post("/login", data={"token": TOKEN, "next": wanted})
    assert answer.status_code == 303
    assert answer.headers["location"] == wanted
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert locked.get(wanted).status_code == 200  # the client kept the cookie


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(locked: TestClient, target: str) -> None:
    answer = locked.post("/login", data={"token": TOKEN, "next": target})
    assert answer.headers["location"] == "/"


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches("x", TOKEN)
    assert not token_matches(None, TOKEN)
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"x", TOKEN.encode())]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None, False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])  # noqa: S104
def test_another_interface_needs_a_token(
    host: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    assert cli(["serve", "--root", str(tmp_path), "--host", host]) == 2
    assert "--token" in capsys.readouterr().err
    assert time.monotonic() - start < 5  # refused before anything listens
    check_bind(host, TOKEN, False)
    check_bind(host, None, True)


def test_an_empty_token_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli(["serve", "--root", str(tmp_path), "--token", ""]) == 2
    assert "empty" in capsys.readouterr().err


def test_a_viewer_bound_to_loopback_answers_only_this_machines_names(store: Journal) -> None:
    # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 asks under its name.
    app = create_app(store, hosts=LOOPBACK_NAMES)
    with TestClient(app, base_url="http://evil.example:8765") as c:
        assert c.get("/api/sessions").status_code == 421
    for host in ("127.0.0.1:8765", "localhost", "[::1]:8765"):
        with TestClient(app, base_url=f"http://{host}") as c:
            assert c.get("/api/sessions").status_code == 200, host
