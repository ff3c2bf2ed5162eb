"""A small Flask chat app whose sessions live in a journal.

The classic app keeps ``chat_sessions = {}`` behind one lock and rewrites a JSON file per
session after every change. Here every change is one appended event, so any number of worker
processes can serve the same folder, a clear keeps the history, and each page reads an
immutable snapshot. The app itself holds no session data at all: only a handle to the
process's own ``Journal``, opened on first use in each worker.

HTML pages (forms, redirect after post) and a JSON API under ``/api`` do the same things::

    GET  /                          sessions            GET  /api/sessions
    POST /open                      open or start one   POST /api/sessions
    GET  /s/<id>                    one session         GET  /api/sessions/<id>
    POST /s/<id>/messages           post a message      POST /api/sessions/<id>/messages
    POST /s/<id>/clear              clear               POST /api/sessions/<id>/clear
    POST /s/<id>/undo               remove the last     POST /api/sessions/<id>/undo
    POST /s/<id>/settings           change a setting    POST /api/sessions/<id>/settings
    GET  /s/<id>/history            every event         GET  /api/sessions/<id>/events
    GET  /s/<id>/replay?at=         an earlier moment   GET  /api/sessions/<id>/replay?at=

A session id is the rest of the URL path, slashes included (``/s/a/b`` is session ``a/b``).
It goes to the journal as it is: the journal maps every id to a hashed folder name, which is
why no id (``../../etc``, ``..``, ``CON``) can reach outside the data folder. The app only
refuses to create ids that no URL could name again (a leading ``/``, control characters).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec
from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, HTTPException

from journal import (
    ConflictError,
    CorruptLogError,
    HistoryPrunedError,
    InvalidValueError,
    Journal,
    JournalError,
    Message,
    Session,
    SessionNotFoundError,
    parse_point,
)

__all__ = ["Reply", "create_app", "echo", "journal_for"]

log = logging.getLogger(__name__)

Reply = Callable[[Session, Message], str | None]
"""Makes the assistant's answer: called with the session (read after the user's message was
stored) and that message; returns the text, or None for no answer."""

EXTENSION = "flask_chat"
HISTORY_PAGE = 500  # events per audit page: a long session stays one cheap request per page


def echo(session: Session, message: Message) -> str:
    """The default reply: repeats the user's message (there is no model in this example)."""
    return f"You said: {message.content}"


# -- one Journal per process -------------------------------------------------------------------


class _ProcessJournal:
    """The current process's ``Journal`` on one folder, opened on first use in each process.

    A worker forked after the app was created (``gunicorn -w``, werkzeug's ``processes=``)
    must not share its parent's instance, whose cache and group commit belong to the parent,
    so the instance is keyed by pid and a child opens its own.
    """

    def __init__(self, root: str, options: Mapping[str, Any]) -> None:
        self.root = root
        self._options = dict(options)
        # (pid, journal) in one attribute, so a thread reads both from the same assignment.
        self._current: tuple[int, Journal] | None = None
        self._lock = threading.Lock()
        _instances.add(self)

    def get(self) -> Journal:
        current = self._current
        if current is not None and current[0] == os.getpid():
            return current[1]
        with self._lock:
            current = self._current
            if current is None or current[0] != os.getpid():
                current = (os.getpid(), Journal(self.root, **self._options))
                self._current = current
            return current[1]

    def _after_fork(self) -> None:
        # Another thread may have held the lock at the moment of the fork.
        self._lock = threading.Lock()


_instances: weakref.WeakSet[_ProcessJournal] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for instance in list(_instances):
        instance._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@dataclass(frozen=True)
class _Config:
    journal: _ProcessJournal
    reply: Reply | None


def _config() -> _Config:
    return cast(_Config, current_app.extensions[EXTENSION])


def journal_for(app: Flask) -> Journal:
    """The ``Journal`` this app uses in the calling process (opened on first use)."""
    return cast(_Config, app.extensions[EXTENSION]).journal.get()


def _journal() -> Journal:
    return _config().journal.get()


# -- the app factory ---------------------------------------------------------------------------


def create_app(
    data_dir: str | os.PathLike[str],
    *,
    reply: Reply | None = echo,
    max_request_bytes: int = 1 << 20,
    **journal_options: Any,
) -> Flask:
    """A chat app serving the sessions in ``data_dir``.

    Nothing is opened here: each process opens its own ``Journal`` on its first request, so
    the app may be created before a server forks its workers. Several processes (and
    machines sharing a POSIX file system with working locks) may serve one folder at once.

    Args:
        data_dir: the journal's root folder (created on the first write).
        reply: makes the assistant's answer to each user message; None: no answers.
        max_request_bytes: larger requests are refused with 413.
        **journal_options: passed to ``Journal`` (``fsync``, ``lock_timeout``, ...).
    """
    app = Flask(__name__)
    # Ids are arbitrary text: "a//b" must stay "a//b", not be redirected to another session.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    app.extensions[EXTENSION] = _Config(_ProcessJournal(os.fspath(data_dir), journal_options), reply)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(JournalError, _journal_error)
    app.add_template_filter(_json_text, "json")
    return app


# -- shared request handling -------------------------------------------------------------------


def _actor() -> str | None:
    return request.remote_addr


def _addressable(session_id: str) -> str:
    """Refuse a new id that no URL of this app could name again (the journal takes any)."""
    if session_id.startswith("/") or any(ord(c) < 32 or ord(c) == 127 for c in session_id):
        raise BadRequest(
            "invalid session id: no URL can name one that starts with / or has control characters"
        )
    return session_id


def _post_message(session_id: str, content: object) -> tuple[Message, Message | None]:
    """Store the user's message and the reply to it; returns both."""
    if not isinstance(content, str) or not content.strip():
        raise BadRequest("the message must be a non-empty text")
    journal = _journal()
    # Unlike the classic helper, a post never creates a session: an unknown id is a 404.
    message = journal.add_message(session_id, "user", content, actor=_actor())
    make_reply = _config().reply
    if make_reply is None:
        return message, None
    text = make_reply(journal.get(session_id), message)
    if text is None:
        return message, None
    # Other requests may append between the two messages; the metadata pairs them for good.
    answer = journal.add_message(
        session_id, "assistant", text, metadata={"in_reply_to": message.id}, actor="assistant"
    )
    return message, answer


def _undo(session_id: str, version: object) -> Message:
    """Remove the last message, if the session is still at ``version`` (the one the client saw).

    Without that check, an undo racing another writer would remove that writer's message.
    """
    if version is None or version == "":
        expected = None
    elif isinstance(version, int) and not isinstance(version, bool) and version >= 0:
        expected = version
    elif isinstance(version, str) and version.isdigit():
        expected = int(version)
    else:
        raise BadRequest("the version must be an int >= 0")
    return _journal().pop_message(session_id, expected_version=expected, actor=_actor())


def _parse_at(raw: str | None) -> int | datetime:
    """A point in history from a query string, as the command line takes it: a seq, an RFC
    3339 time with its offset, or an amount ago such as -2h."""
    try:
        return parse_point((raw or "").strip())
    except InvalidValueError as exc:
        hint = " (in a URL, write + as %2B, or use Z)" if raw and " " in raw.strip() else ""
        raise BadRequest(f"at: {exc.reason}{hint}") from None


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise BadRequest(f"{name} must be an int >= 0")
    return int(raw)


def _json_text(value: Any) -> str:
    """A journal value as JSON text, for templates (Jinja escapes it like any text)."""
    return msgspec.json.encode(value).decode()


def _event_rows(session_id: str, after: int) -> tuple[list[dict[str, Any]], int | None]:
    """One page of events as dicts, and the ``after`` of the next page (None: the last)."""
    rows = [
        e.to_dict() for e in itertools.islice(_journal().events(session_id, after=after), HISTORY_PAGE + 1)
    ]
    if len(rows) > HISTORY_PAGE:
        return rows[:HISTORY_PAGE], int(rows[HISTORY_PAGE - 1]["seq"])
    return rows, None


def _summaries() -> list[dict[str, Any]]:
    journal = _journal()
    found = []
    for sid in journal.sessions():
        try:
            s = journal.get(sid)
        except SessionNotFoundError:
            continue  # deleted since it was listed
        except CorruptLogError:
            # One damaged log must not take the whole list down; verify/repair deal with it.
            log.exception("session %r is damaged", sid)
            found.append({"id": sid, "damaged": True, "messages": 0, "version": 0, "updated_at": ""})
            continue
        found.append(
            {
                "id": sid,
                "damaged": False,
                "messages": len(s.messages_view),
                "version": s.version,
                "updated_at": msgspec.to_builtins(s.updated_at),
            }
        )
    found.sort(key=lambda row: (row["updated_at"], row["id"]), reverse=True)
    return found


# -- errors --------------------------------------------------------------------------------------


def _error(status: int, message: str) -> ResponseReturnValue:
    if request.path == "/api" or request.path.startswith("/api/"):
        return jsonify(error=message, status=status), status
    return render_template("error.html", status=status, message=message), status


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    if status >= 500:
        # Flask has logged the cause; the client gets no details of the server.
        return _error(status, "internal error")
    return _error(status, exc.description or exc.name)


def _journal_error(exc: JournalError) -> ResponseReturnValue:
    # Ordered: CorruptLogError is also a ValueError, HistoryPrunedError also a LookupError.
    if isinstance(exc, CorruptLogError):
        log.error("damaged log: %s", exc)
        return _error(500, "this session's log is damaged: an operator must run `journal verify`")
    if isinstance(exc, HistoryPrunedError):
        return _error(410, str(exc))
    if isinstance(exc, LookupError):
        return _error(404, str(exc))
    if isinstance(exc, ValueError):
        return _error(400, str(exc))
    if isinstance(exc, ConflictError):
        return _error(409, str(exc))
    log.error("journal unavailable: %s", exc)
    return _error(503, "the chat store is busy or unavailable, try again")


# -- HTML pages ----------------------------------------------------------------------------------

pages = Blueprint("pages", __name__)


@pages.get("/")
def index() -> ResponseReturnValue:
    return render_template("index.html", sessions=_summaries())


@pages.post("/open")
def open_session() -> ResponseReturnValue:
    """Open the named session, creating it if needed (the classic get_or_create_session)."""
    name = request.form.get("name", "").strip()
    journal = _journal()
    if name:
        session = journal.get_or_create(_addressable(name), actor=_actor())
    else:
        session = journal.create(actor=_actor())
    return redirect(url_for("pages.show", session_id=session.id), 303)


@pages.get("/s/<path:session_id>")
def show(session_id: str) -> ResponseReturnValue:
    return render_template("session.html", session=_journal().get(session_id), replay_at=None)


@pages.post("/s/<path:session_id>/messages")
def post_message(session_id: str) -> ResponseReturnValue:
    _post_message(session_id, request.form.get("content"))
    return redirect(url_for("pages.show", session_id=session_id), 303)


@pages.post("/s/<path:session_id>/clear")
def clear(session_id: str) -> ResponseReturnValue:
    _journal().clear(session_id, actor=_actor())
    return redirect(url_for("pages.show", session_id=session_id), 303)


@pages.post("/s/<path:session_id>/undo")
def undo(session_id: str) -> ResponseReturnValue:
    _undo(session_id, request.form.get("version"))
    return redirect(url_for("pages.show", session_id=session_id), 303)


@pages.post("/s/<path:session_id>/settings")
def change_setting(session_id: str) -> ResponseReturnValue:
    key = request.form.get("key", "").strip()
    if not key:
        raise BadRequest("the setting needs a name")
    journal = _journal()
    if request.form.get("remove"):
        journal.update_settings(session_id, remove=[key], actor=_actor())
    else:
        raw = request.form.get("value", "")
        try:
            value = json.loads(raw)  # 0.2, true, [1, 2] keep their JSON type ...
        except ValueError:
            value = raw  # ... anything else is the text as typed
        journal.update_settings(session_id, {key: value}, actor=_actor())
    return redirect(url_for("pages.show", session_id=session_id), 303)


@pages.get("/s/<path:session_id>/history")
def history(session_id: str) -> ResponseReturnValue:
    events, next_after = _event_rows(session_id, _int_arg("after", 0))
    return render_template("history.html", session_id=session_id, events=events, next_after=next_after)


@pages.get("/s/<path:session_id>/replay")
def replay(session_id: str) -> ResponseReturnValue:
    at = _parse_at(request.args.get("at"))
    session = _journal().replay(session_id, at=at)
    shown = at.isoformat() if isinstance(at, datetime) else f"seq {at}"
    return render_template("session.html", session=session, replay_at=shown)


# -- JSON API ------------------------------------------------------------------------------------

api = Blueprint("api", __name__, url_prefix="/api")


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


@api.get("/sessions")
def api_sessions() -> ResponseReturnValue:
    return jsonify(sessions=_summaries())


@api.post("/sessions")
def api_create() -> ResponseReturnValue:
    """Create a session (random id unless ``{"id": ...}``); 409 if it exists."""
    session_id = _json_object().get("id") if request.content_length else None
    if session_id is not None and not isinstance(session_id, str):
        raise BadRequest("id must be a string")
    session = _journal().create(None if session_id is None else _addressable(session_id), actor=_actor())
    return jsonify(session.to_dict()), 201


@api.get("/sessions/<path:session_id>")
def api_session(session_id: str) -> ResponseReturnValue:
    return jsonify(_journal().get(session_id).to_dict())


@api.post("/sessions/<path:session_id>/messages")
def api_post_message(session_id: str) -> ResponseReturnValue:
    message, answer = _post_message(session_id, _json_object().get("content"))
    return jsonify(message=message.to_dict(), reply=None if answer is None else answer.to_dict()), 201


@api.post("/sessions/<path:session_id>/clear")
def api_clear(session_id: str) -> ResponseReturnValue:
    return jsonify(_journal().clear(session_id, actor=_actor()).to_dict())


@api.post("/sessions/<path:session_id>/undo")
def api_undo(session_id: str) -> ResponseReturnValue:
    """Remove the last message; ``{"expected_version": n}`` makes it conditional (else 409)."""
    body = request.get_json(silent=True)
    version = body.get("expected_version") if isinstance(body, dict) else None
    return jsonify(removed=_undo(session_id, version).to_dict())


@api.post("/sessions/<path:session_id>/settings")
def api_settings(session_id: str) -> ResponseReturnValue:
    """``{"changes": {key: value}, "remove": [key, ...]}``; both optional."""
    body = _json_object()
    changes = body.get("changes", {})
    remove = body.get("remove", [])
    if not isinstance(changes, dict) or not isinstance(remove, list):
        raise BadRequest('give {"changes": {...}, "remove": [...]}')
    session = _journal().update_settings(session_id, changes, remove=remove, actor=_actor())
    return jsonify(session.to_dict())


@api.get("/sessions/<path:session_id>/events")
def api_events(session_id: str) -> ResponseReturnValue:
    events, next_after = _event_rows(session_id, _int_arg("after", 0))
    return jsonify(events=events, next_after=next_after)


@api.get("/sessions/<path:session_id>/replay")
def api_replay(session_id: str) -> ResponseReturnValue:
    return jsonify(_journal().replay(session_id, at=_parse_at(request.args.get("at"))).to_dict())
