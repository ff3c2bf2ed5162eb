"""The viewer's routes: pages for people, the same under ``/api/`` as JSON for scripts.

Every route reads; none writes to the journal. Session ids travel percent-encoded as one path
segment (``/s/a%2Fb``) and are decoded from the raw path, so an id holding ``/``, ``%`` or
``..`` names exactly that session; the ids ``.`` and ``..``, which browsers fold away as path
steps, travel as ``/s/?id=..`` (an empty segment and the id in the query). Ids are only ever
passed to the library, which maps them to storage itself.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import anyio
import jinja2
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from journal.core import events as ev
from journal.core.points import parse_point
from journal.core.state import Session
from journal.documents import (
    EXPORT_FORMATS,
    event_doc,
    export_text,
    message_doc,
    printable,
    session_doc,
    to_json,
    version_at,
)
from journal.engine.journal import Journal
from journal.errors import (
    HistoryPrunedError,
    InvalidSessionIdError,
    InvalidValueError,
    JournalError,
    SessionNotFoundError,
    VersionNotFoundError,
)
from journal.web.listing import SORTS, Listing, Row
from journal.web.security import SecureApp

__all__ = ["create_app", "session_url"]

HERE = Path(__file__).parent
MESSAGES_SHOWN = 200  # newest messages on a session page (all of them: ?messages=all)
EVENTS_SHOWN = 500  # events per timeline page
PER_PAGE = 50
MAX_PER_PAGE = 500
POLL = 1.0  # seconds between cheap looks at a folder journal, which has no change feed
STREAM_SECONDS = 300  # an event stream ends after this; the browser reconnects by itself
MAX_WATCHED = 200

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is hostile until escaped
    undefined=jinja2.StrictUndefined,
)


class Problem(Exception):
    """A request that cannot be answered: its HTTP status and why, for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def session_url(sid: str, sub: str = "", **query: str) -> str:
    """The page of session ``sid`` (``sub``: ``diff``, ``export``), with ``query``."""
    pairs = [f"{k}={quote(str(v), safe='')}" for k, v in query.items()]
    if sid in (".", ".."):  # a browser would resolve these as path steps
        pairs.insert(0, f"id={quote(sid, safe='')}")
        path = f"/s/{sub}" if not sub else f"/s//{sub}"
    else:
        path = f"/s/{quote(sid, safe='')}" + (f"/{sub}" if sub else "")
    return path + ("?" + "&".join(pairs) if pairs else "")


def api_url(sid: str, sub: str = "") -> str:
    if sid in (".", ".."):
        return f"/api/sessions//{sub}?id={quote(sid, safe='')}" if sub else f"/api/sessions/?id={sid}"
    return f"/api/sessions/{quote(sid, safe='')}" + (f"/{sub}" if sub else "")


def _target(request: Request, prefix: str) -> tuple[str, str]:
    """(session id, sub-page) from the raw path after ``prefix``: ids are decoded once, from
    their own segment, so an encoded ``/`` stays part of the id."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    rest = raw.decode("latin-1").split("?", 1)[0][len(prefix) :]
    segment, _, sub = rest.partition("/")
    if "/" in sub:
        raise Problem(404, "no such page")
    try:
        sid = unquote(segment, errors="strict") if segment else request.query_params.get("id", "")
    except UnicodeDecodeError:
        raise Problem(404, "a session id must be UTF-8, percent-encoded") from None
    if not sid:
        raise Problem(404, "no session named")
    return sid, sub


def _utc(at: datetime | None) -> str:
    if at is None:
        return ""
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _excerpt(text: str, size: int = 160) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _summary(e: ev.Event) -> str:
    """What an event did, in a line (the content cut short; the page escapes it)."""
    match e:
        case ev.Created():
            return "session created"
        case ev.MessageAdded():
            where = f" before {e.before[:8]}" if e.before else ""
            text = "[content erased]" if e.redacted_by else _excerpt(e.content)
            return f"{e.role}{where}: {text}"
        case ev.SettingsChanged():
            changed = to_json(e.changes) if e.changes else ""
            removed = f" removed {', '.join(e.removed)}" if e.removed else ""
            return f"{changed}{removed}".strip()
        case ev.Cleared():
            return "the visible conversation was emptied"
        case ev.MessageRemoved():
            return f"message {e.message_id[:8]} left the conversation"
        case ev.MessageEdited():
            text = "[content erased]" if e.redacted_by else _excerpt(e.content)
            return f"message {e.message_id[:8]} now reads: {text}"
        case ev.MessageRedacted():
            return f"message {e.message_id[:8]} erased: {e.reason}"
    return ""


def _point(text: str, name: str, now: datetime) -> int | datetime:
    try:
        return parse_point(text.strip(), now)
    except InvalidValueError as exc:
        raise Problem(400, f"{name}: {exc.reason}") from None


def _events(j: Journal, sid: str, after: int, last: int) -> list[ev.Event]:
    return list(itertools.takewhile(lambda e: e.seq <= last, j.events(sid, after=after)))


def compute_diff(j: Journal, sid: str, a_text: str, b_text: str, now: datetime) -> dict[str, Any]:
    """What happened after point A up to point B, as ``journal diff --json`` says it, and how
    the visible conversation differs between the two (messages added, removed, changed)."""
    j.get(sid)
    a = version_at(j, sid, _point(a_text, "from", now))
    b = version_at(j, sid, _point(b_text, "to", now))
    if a > b:
        raise Problem(400, f"from (version {a}) is after to (version {b}): give the earlier point first")
    events = _events(j, sid, a, b)
    before = j.replay(sid, at=a) if a else None
    after = j.replay(sid, at=b) if b else None
    old = {m.id: m for m in before.messages_view} if before else {}
    new = {m.id: m for m in after.messages_view} if after else {}
    changed = [
        (old[mid], m)
        for mid, m in new.items()
        if mid in old and (old[mid].content, old[mid].redacted) != (m.content, m.redacted)
    ]
    return {
        "session_id": sid,
        "from_version": a,
        "to_version": b,
        "events": events,
        "messages_added": [e for e in events if isinstance(e, ev.MessageAdded)],
        "settings_before": dict(before.settings) if before else {},
        "settings_after": dict(after.settings) if after else {},
        "added": [m for mid, m in new.items() if mid not in old],
        "removed": [m for mid, m in old.items() if mid not in new],
        "changed": changed,
    }


def _diff_doc(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": d["session_id"],
        "from_version": d["from_version"],
        "to_version": d["to_version"],
        "events": [event_doc(e) for e in d["events"]],
        "messages_added": [event_doc(e) for e in d["messages_added"]],
        "settings_before": d["settings_before"],
        "settings_after": d["settings_after"],
        "messages": {
            "added": [message_doc(m) for m in d["added"]],
            "removed": [message_doc(m) for m in d["removed"]],
            "changed": [{"before": message_doc(a), "after": message_doc(b)} for a, b in d["changed"]],
        },
    }


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(value), status_code=status, media_type="application/json", headers=headers)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise Problem(400, f"{name} must be a whole number")
    return max(low, min(high, int(text)))


def _report_doc(report: Any) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(report)
    return doc | {"ok": report.ok}


def _page_of(request: Request, listing: Listing) -> tuple[dict[str, Any], list[Row]]:
    sort = request.query_params.get("sort", "id")
    if sort not in SORTS:
        raise Problem(400, f"sort must be one of {', '.join(SORTS)}")
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise Problem(400, "order must be asc or desc")
    per_page = _int(request, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
    page = _int(request, "page", 1, 1, 10**9)
    query = request.query_params.get("q", "")
    content = request.query_params.get("content", "")
    found = listing.page(
        query=query, content=content, sort=sort, reverse=order == "desc", page=page, per_page=per_page
    )
    pages = max(1, -(-found.total // per_page))
    params = {"q": query, "content": content, "sort": sort, "order": order, "per_page": per_page}
    return {"total": found.total, "page": page, "pages": pages, "per_page": per_page, "params": params}, (
        found.rows
    )


def _row_doc(row: Row) -> dict[str, Any]:
    if row.unreadable:  # no id to ask for: the name it is stored under, for verify's report
        return {"id": None, "stored_as": row.id, "error": row.error}
    return {
        "id": row.id,
        "messages": row.messages,
        "version": row.version,
        "created_at": _utc(row.created_at) or None,
        "updated_at": _utc(row.updated_at) or None,
        "last_actor": row.last_actor,
        "error": row.error,
    }


def _is_api(request: Request) -> bool:
    path: str = request.scope["path"]
    return path.startswith("/api/")


def create_app(
    journal: Journal, *, token: str | None = None, hosts: frozenset[str] | None = None
) -> SecureApp:
    """The viewer of ``journal`` as an ASGI application.

    Args:
        journal: the journal to show; the caller keeps it open while the app serves, and
            closes it.
        token: when given, every request must carry it (see ``journal.web.security``).
        hosts: when given, only requests addressed to these host names are answered (421
            otherwise): a viewer without a token on loopback answers no other site's name.
    """
    listing = Listing(journal)
    j = journal

    def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("title", "journal")
        html = _ENV.get_template(name).render(
            url=session_url, api_url=api_url, utc=_utc, root=j.root, backend=j.backend, **context
        )
        try:
            body = html.encode("utf-8")
        except UnicodeEncodeError:  # a stored name that is not UTF-8: shown escaped
            body = printable(html).encode("utf-8")
        return HTMLResponse(body, status_code=code)

    def failed(request: Request, status: int, message: str) -> Response:
        if _is_api(request):
            return _json({"error": message}, status)
        return render(request, "error.html", status, title="problem", message=message, status=status)

    def guarded(handler: Any) -> Any:
        def run(request: Request) -> Response:
            try:
                response: Response = handler(request)
                return response
            except Problem as exc:
                return failed(request, exc.status, exc.message)
            except (SessionNotFoundError, InvalidSessionIdError) as exc:
                return failed(request, 404, str(exc))
            except (VersionNotFoundError, HistoryPrunedError, InvalidValueError) as exc:
                return failed(request, 400, str(exc))
            except JournalError as exc:  # damage: say so, with where to look
                return failed(request, 409, f"{exc} (see /verify)")

        return run

    # -- pages ---------------------------------------------------------------------------

    def sessions_page(request: Request) -> Response:
        info, rows = _page_of(request, listing)
        return render(request, "sessions.html", title="sessions", rows=rows, **info)

    def session_route(request: Request) -> Response:
        sid, sub = _target(request, "/s/")
        if sub == "":
            return session_page(request, sid)
        if sub == "diff":
            return diff_page(request, sid)
        if sub == "export":
            return export(request, sid)
        raise Problem(404, "no such page")

    def session_page(request: Request, sid: str) -> Response:
        try:
            current = j.get(sid)
        except (SessionNotFoundError, InvalidSessionIdError):
            raise
        except JournalError as exc:
            # Damaged: the page still says what and where, as verify finds it.
            report = j.verify(sid)
            return render(request, "damaged.html", 409, title=sid, sid=sid, error=str(exc), report=report)
        at_text = request.query_params.get("at", "").strip()
        shown: Session = current
        at_version = current.version
        if at_text:
            point = _point(at_text, "at", datetime.now(timezone.utc))
            at_version = version_at(j, sid, point)
            if at_version == 0:
                raise Problem(404, f"session {sid!r} did not exist yet at {at_text}")
            shown = j.replay(sid, at=at_version)
        everything = request.query_params.get("messages") == "all"
        messages = list(shown.messages_view) if everything else list(shown.messages_view[-MESSAGES_SHOWN:])
        after = _int(request, "events", max(0, current.version - EVENTS_SHOWN), 0, current.version)
        timeline = _events(j, sid, after, min(current.version, after + EVENTS_SHOWN))
        history = {e.message_id for e in timeline if isinstance(e, (ev.MessageEdited, ev.MessageRemoved))}
        return render(
            request,
            "session.html",
            title=sid,
            sid=sid,
            session=shown,
            current=current,
            at=at_text,
            at_version=at_version,
            messages=messages,
            hidden=len(shown.messages_view) - len(messages),
            timeline=timeline,
            summary=_summary,
            history=history,
            events_after=after,
            events_shown=EVENTS_SHOWN,
            head=j.head(sid),
            settings=to_json(shown.settings),
        )

    def diff_page(request: Request, sid: str) -> Response:
        current = j.get(sid)
        a = request.query_params.get("from", "")
        b = request.query_params.get("to", "") or str(current.version)
        d = compute_diff(j, sid, a or "0", b, datetime.now(timezone.utc)) if a else None
        return render(
            request,
            "diff.html",
            title=f"diff {sid}",
            sid=sid,
            current=current,
            a=a,
            b=b,
            d=d,
            summary=_summary,
            json=to_json,
        )

    def export(request: Request, sid: str) -> Response:
        fmt = request.query_params.get("format", "")
        if fmt not in EXPORT_FORMATS:
            raise Problem(400, "format must be md, json or jsonl")
        text = export_text(j, sid, fmt)
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in sid)[:80]
        kind = {"md": "text/markdown", "json": "application/json", "jsonl": "application/x-ndjson"}[fmt]
        return Response(
            text,
            media_type=f"{kind}; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{safe or "session"}.{fmt}"; '
                f"filename*=UTF-8''{quote(sid, safe='')}.{fmt}"
            },
        )

    def verify_page(request: Request) -> Response:
        sid = request.query_params.get("session") or None
        report = j.verify(sid)
        return render(request, "verify.html", title="verify", sid=sid, report=report)

    # -- API -----------------------------------------------------------------------------

    def api_sessions(request: Request) -> Response:
        info, rows = _page_of(request, listing)
        info.pop("params")
        return _json(info | {"sessions": [_row_doc(r) for r in rows]})

    def api_session_route(request: Request) -> Response:
        sid, sub = _target(request, "/api/sessions/")
        if sub == "":
            at_text = request.query_params.get("at", "").strip()
            if not at_text:
                return _json(session_doc(j.get(sid)))
            j.get(sid)
            version = version_at(j, sid, _point(at_text, "at", datetime.now(timezone.utc)))
            if version == 0:
                raise Problem(404, f"session {sid!r} did not exist yet at {at_text}")
            return _json(session_doc(j.replay(sid, at=version)))
        if sub == "events":
            after = _int(request, "after", 0, 0, 2**63 - 1)
            limit = _int(request, "limit", 1000, 1, 10_000)
            j.get(sid)
            found = list(itertools.islice(j.events(sid, after=after), limit))
            return _json({"session_id": sid, "events": [event_doc(e) for e in found]})
        if sub == "diff":
            a = request.query_params.get("from", "")
            b = request.query_params.get("to", "")
            if not a or not b:
                raise Problem(400, "diff needs from and to (a seq, an RFC 3339 time or an amount ago)")
            return _json(_diff_doc(compute_diff(j, sid, a, b, datetime.now(timezone.utc))))
        if sub == "verify":
            report = j.verify(sid)
            head = None
            if report.ok:
                head = msgspec.to_builtins(j.head(sid))
            return _json(_report_doc(report) | {"head": head})
        if sub == "head":
            return _json(msgspec.to_builtins(j.head(sid)))
        if sub == "export":
            return export(request, sid)
        raise Problem(404, "no such page")

    def api_verify(request: Request) -> Response:
        return _json(_report_doc(j.verify(request.query_params.get("session") or None)))

    async def api_changes(request: Request) -> Response:
        watched = request.query_params.getlist("watch")[:MAX_WATCHED]
        seconds = _int(request, "timeout", STREAM_SECONDS, 1, 3600)
        return StreamingResponse(
            _changes(j, watched, seconds), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
        )

    routes = [
        Route("/", guarded(sessions_page)),
        Route("/s/{rest:path}", guarded(session_route)),
        Route("/verify", guarded(verify_page)),
        Route("/api/sessions", guarded(api_sessions)),
        Route("/api/sessions/{rest:path}", guarded(api_session_route)),
        Route("/api/verify", guarded(api_verify)),
        Route("/api/changes", api_changes),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)

    async def not_found(request: Request, exc: Exception) -> Response:
        return failed(request, 404, "no such page")

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    login = _ENV.get_template("login.html").render(title="sign in", root=j.root, backend=j.backend)
    return SecureApp(app, token, login, hosts)


def _folder_marks(root: str) -> tuple[int, ...]:
    # A session created or deleted changes its parent folder: the root and the folders
    # right under it are all a new session can touch, whatever their names.
    marks = [os.stat(root).st_mtime_ns]
    with os.scandir(root) as entries:
        marks += [e.stat().st_mtime_ns for e in entries if e.is_dir(follow_symlinks=False)]
    return tuple(marks)


def _files_state(j: Journal, watched: list[str]) -> tuple[tuple[int, ...], dict[str, Any]]:
    stamps: dict[str, Any] = {}
    for sid in watched:
        try:
            stamps[sid] = j.storage.stamp(sid)
        except (JournalError, ValueError) as exc:
            stamps[sid] = str(exc)
    try:
        marks = _folder_marks(j.root)
    except OSError:
        marks = ()
    return marks, stamps


def _event(ids: list[str] | None) -> str:
    return f"event: change\ndata: {to_json({'sessions': ids})}\n\n"


async def _changes(j: Journal, watched: list[str], seconds: float) -> AsyncIterator[str]:
    """Server-sent events: ``change`` with the ids appended to (None: look at everything).

    PostgreSQL says which sessions changed (its change feed); a folder has no feed, so the
    stamps of the sessions on the page and the modification times of the root's folders are
    compared every ``POLL`` seconds: never a walk over every session.
    """
    deadline = time.monotonic() + seconds
    yield "retry: 2000\n\n"
    if j.backend == "postgres":
        feed = await anyio.to_thread.run_sync(j.storage.changes)
        try:
            while (left := deadline - time.monotonic()) > 0:
                woken = await anyio.to_thread.run_sync(feed.wait, min(POLL, left))
                if woken is None:
                    yield _event(None)
                elif woken:
                    yield _event(sorted(woken))
                else:
                    yield ": idle\n\n"
        finally:
            await anyio.to_thread.run_sync(feed.close)
        return
    before = await anyio.to_thread.run_sync(_files_state, j, watched)
    while deadline - time.monotonic() > 0:
        await anyio.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
        now = await anyio.to_thread.run_sync(_files_state, j, watched)
        if now != before:
            moved = sorted(sid for sid in watched if now[1].get(sid) != before[1].get(sid))
            yield _event(moved if now[0] == before[0] else None)
            before = now
        else:
            yield ": idle\n\n"
