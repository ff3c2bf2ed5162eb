"""The viewer in a real browser: Debian's chromium, driven by Playwright (no browser download).

Each test opens a page of a live server and checks what a person would see. With
``JOURNAL_WRITE_SCREENSHOTS=1`` they also save the screenshots of docs/web.md; normal runs
leave the tree alone.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from journal import Journal
from journal.web import create_app
from journal.web.security import LOOPBACK_NAMES
from tests.requirements import need_programs
from tests.web.helpers import CHAT, DAMAGED, XSS

pytest.importorskip("playwright.sync_api", reason="pip install playwright")
uvicorn = pytest.importorskip("uvicorn")

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def shot(page: Page, name: str) -> None:
    if os.environ.get("JOURNAL_WRITE_SCREENSHOTS") == "1":
        IMAGES.mkdir(exist_ok=True)
        page.screenshot(path=str(IMAGES / f"web-{name}.png"), full_page=True)


@pytest.fixture
def server(store: Journal, request: pytest.FixtureRequest) -> Iterator[str]:
    """The viewer as ``journal serve`` runs it (a token when parametrized with one)."""
    token: str | None = getattr(request, "param", None)
    app = create_app(store, token=token, hosts=None if token else LOOPBACK_NAMES)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def chrome() -> Iterator[Browser]:
    # Debian's chromium, launched by path: Playwright downloads no browser. Started and stopped
    # with this module, not kept for the session as pytest-playwright's own fixtures are: their
    # running loop would make every later asyncio.run() of the suite fail.
    (chromium,) = need_programs("chromium", reason="apt-get install chromium")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # root has no sandbox to drop into
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        yield browser
        browser.close()


@pytest.fixture
def tab(server: str, chrome: Browser) -> Iterator[Page]:
    # Asked for after the server, so the page (and its open event stream) closes first.
    context = chrome.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_sessions_page_lists_sessions_and_updates_live(tab: Page, server: str, store: Journal) -> None:
    tab.goto(server + "/")
    rows = tab.locator("#sessions tbody tr")
    expect(rows.filter(has_text=CHAT)).to_have_count(1)
    expect(tab.locator("tr.damaged")).to_contain_text("damaged")
    shot(tab, "sessions")
    # Live: an append by another process shows up without a reload.
    with Journal(store.root) as other:
        other.add_message("..", "user", "one more")
    expect(tab.locator("#live")).to_be_visible()
    expect(rows.filter(has_text="..").first.locator("td.num").first).to_have_text("2")


def test_replay_slider_shows_the_conversation_of_that_moment(tab: Page, server: str) -> None:
    tab.goto(f"{server}/s/{quote(CHAT, safe='')}")
    expect(tab.locator("#badge")).to_have_text("✔ verified")
    expect(tab.locator("#messages .content")).to_have_text(["[content erased]", "Found it, it ships today."])
    shot(tab, "session")
    tab.locator("#slider").fill("4")  # what dragging does: input, then change
    tab.wait_for_url(re.compile(r"at=4"))
    expect(tab.locator("#messages .content")).to_have_text(
        ["Where is order #1001?", "Checking order #1001.", "thx"]
    )
    expect(tab.locator("#shown-version")).to_have_text("4")
    shot(tab, "replay")
    tab.locator("#at").fill("7")
    tab.locator("#replay button").click()
    expect(tab.locator("#messages .content")).to_have_text(
        ["Where is my order #1001?", "Checking order #1001."]
    )
    tab.locator("#timeline a", has_text="8").first.click()
    expect(tab.locator("#messages .empty")).to_have_text("no visible messages")


def test_diff_between_two_points(tab: Page, server: str) -> None:
    tab.goto(f"{server}/s/{quote(CHAT, safe='')}/diff?from=5&to=6")
    expect(tab.locator("#diff-summary")).to_contain_text("version 5 → 6: 1 events")
    expect(tab.locator("#diff-messages .changed")).to_contain_text("Where is my order #1001?")
    tab.locator("input[name=from]").fill("4")
    tab.locator("input[name=to]").fill("10")
    tab.locator(".diff-form button").click()
    expect(tab.locator("#diff-messages .added")).to_have_count(2)
    expect(tab.locator("#diff-messages .removed")).to_have_count(3)
    shot(tab, "diff")


def test_verify_finds_the_damaged_session(tab: Page, server: str) -> None:
    tab.goto(server + "/verify")
    tab.locator("input[name=session]").fill(DAMAGED)
    tab.locator("form button").click()
    expect(tab.locator("#verdict")).to_contain_text("1 problems")
    row = tab.locator("#problems tbody tr")
    expect(row.locator(".kind")).to_have_text("edited")
    expect(row.locator(".file")).to_contain_text("events.jsonl")
    tab.goto(f"{server}/s/{DAMAGED}")
    expect(tab.locator("#badge")).to_have_text("✘ 1 problems")
    expect(tab.locator("#problems .kind")).to_have_text("edited")
    tab.goto(server + "/verify")
    shot(tab, "verify")


def test_hostile_content_is_text_and_runs_nothing(tab: Page, server: str) -> None:
    # Oracle: the scripts in the message would log PWNED and set window.__pwned; a console
    # listener and the page's own state see neither, and the text is shown as written.
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    tab.on("dialog", lambda dialog: console.append(f"dialog {dialog.message}"))
    tab.goto(f"{server}/s/{quote(XSS, safe='')}")
    tab.goto(f"{server}/s/{quote(XSS, safe='')}?at=3")
    contents = tab.locator("#messages .content")
    expect(contents.first).to_have_text("<script>window.__pwned = 1; console.log('PWNED script')</script>")
    expect(contents.nth(1)).to_contain_text("<img src=x onerror=")
    expect(tab.locator("h1.sid")).to_have_text(XSS)
    assert tab.locator("#messages img, #messages script, h1 script").count() == 0
    assert tab.evaluate("window.__pwned") is None
    tab.goto(f"{server}/?q={quote('<script>', safe='')}")
    expect(tab.locator("#sessions tbody a")).to_have_text([XSS])
    assert tab.evaluate("window.__pwned") is None
    assert not [line for line in console if "PWNED" in line or "dialog" in line], console
    shot(tab, "hostile")


@pytest.mark.parametrize("server", ["browser-token"], indirect=True)
def test_a_token_is_asked_for_once_then_kept_in_a_cookie(server: str, tab: Page) -> None:
    wanted = f"{server}/s/{quote(CHAT, safe='')}?at=4"
    answer = tab.goto(wanted)
    assert answer is not None
    assert answer.status == 401
    tab.locator("input[name=token]").fill("wrong")
    tab.locator("form button").click()
    expect(tab.locator("input[name=token]")).to_be_visible()
    tab.locator("input[name=token]").fill("browser-token")
    tab.locator("form button").click()
    tab.wait_for_url(wanted)
    expect(tab.locator("#messages .content")).to_have_count(3)
    cookie = next(c for c in tab.context.cookies() if c["name"] == "journal_token")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert tab.evaluate("document.cookie") == ""  # out of any script's reach
