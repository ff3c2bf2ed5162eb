"""The ``journal`` command, driven the way a person or a script drives it.

Every test runs the installed console script (``.venv/bin/journal``) in a subprocess against a
real journal built with the library, and checks what it prints and how it exits against what
the library itself says about the same journal: JSON output is parsed and compared field by
field, human output is checked for the facts it must show (ids, counts, contents, local times
with their offset), and every bad input must give exit code 2 and one ``journal: ...`` line on
stderr, never a traceback.

Two sessions are written line by line with ``journal.codec.encode`` instead of through
``Journal``, so that their events carry chosen times (a fixed morning, and hours before now):
that is what replays at a time, diffs between times and local-time rendering are checked on.
The library reads and verifies them like any other session (the fixture checks that).
"""

from __future__ import annotations

import json
import os
import pty
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from journal import Anchor, Cleared, Created, Event, Journal, MessageAdded, Session, SettingsChanged
from journal.backends.files.layout import Layout
from journal.cli import main
from journal.core.codec import encode
from journal.testing import plain

JOURNAL = Path(sys.executable).with_name("journal")
TIMEOUT = 30.0  # only turns a hang into a failure

ALPHA = "alpha"  # messages, settings changes, a clear: the rich one
BETA = "beta"  # four plain messages
GAMMA = "Straße 7"  # no messages; an id with a space and a non-ASCII letter
OLD = "old"  # written at fixed times on 2026-01-01 (see OLD_T0)
RECENT = "recent"  # written hours before now, for relative times
IDS = (ALPHA, BETA, GAMMA, OLD, RECENT)

OLD_T0 = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)
COMMANDS: tuple[str, ...] = ("ls", "show", "log", "replay", "diff", "tail", "verify", "head", "repair")
COMMANDS += ("compact", "export", "stats", "demo", "copy")


# --- running the command --------------------------------------------------------------------


def child_env(tz: str = "UTC", extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_ROOT", "JOURNAL_URL")}
    env["TZ"] = tz
    env.update(extra or {})
    return env


def argv(root: Path | str | None, args: Sequence[str]) -> list[str]:
    return [str(JOURNAL), *(["--root", str(root)] if root is not None else []), *args]


def run(
    root: Path | str | None,
    *args: str,
    tz: str = "UTC",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``journal [--root ROOT] ARGS...`` with stdout and stderr piped."""
    return subprocess.run(
        argv(root, args),
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=child_env(tz, env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def ok(root: Path | str | None, *args: str, tz: str = "UTC") -> str:
    """Run, require exit 0 and an empty stderr, return stdout."""
    proc = run(root, *args, tz=tz)
    assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == "", (args, proc.stderr)
    return proc.stdout


def json_of(root: Path | str, *args: str) -> Any:
    return json.loads(ok(root, *args, "--json"))


def jsonl_of(root: Path | str, *args: str) -> list[Any]:
    return [json.loads(line) for line in ok(root, *args, "--json").splitlines()]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> None:
    """Exit ``code``, nothing on stdout, exactly one ``journal: ...`` line on stderr."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "", proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("journal: "), proc.stderr
    assert len(lines[0]) > len("journal: "), proc.stderr


# --- what the library says --------------------------------------------------------------------


def when(text: Any) -> datetime:
    """An RFC 3339 time from the JSON output; it must carry an offset."""
    assert isinstance(text, str), text
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert at.tzinfo is not None, text
    return at


def with_times(doc: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: when(v) if k in keys else v for k, v in doc.items()}


def session_of(root: Path | str, session_id: str, at: int | datetime | None = None) -> Session:
    with Journal(root) as j:
        return j.get(session_id) if at is None else j.replay(session_id, at=at)


def events_of(root: Path | str, session_id: str) -> list[Event]:
    with Journal(root) as j:
        return list(j.events(session_id))


def assert_session_doc(doc: Any, session: Session) -> None:
    """``doc`` is the show --json document of ``session``."""
    assert isinstance(doc, dict), doc
    assert set(doc) == {"id", "version", "created_at", "updated_at", "settings", "messages"}, doc
    assert with_times({k: v for k, v in doc.items() if k != "messages"}, "created_at", "updated_at") == {
        "id": session.id,
        "version": session.version,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "settings": plain(session.settings),
    }
    assert isinstance(doc["messages"], list)
    assert len(doc["messages"]) == len(session.messages), doc["messages"]
    for got, m in zip(doc["messages"], session.messages, strict=True):
        keys = {
            "id",
            "seq",
            "role",
            "content",
            "at",
            "metadata",
            "references",
            "actor",
            "redacted",
            "edited_at",
        }
        assert set(got) == keys, got
        assert (got["redacted"], got["edited_at"]) == (m.redacted, m.edited_at), got
        assert with_times({k: v for k, v in got.items() if k not in ("redacted", "edited_at")}, "at") == {
            "id": m.id,
            "seq": m.seq,
            "role": m.role,
            "content": m.content,
            "at": m.at,
            "metadata": plain(m.metadata),
            "references": plain(m.references),
            "actor": m.actor,
        }


def event_facts(event: Event) -> dict[str, Any]:
    facts: dict[str, Any] = {"seq": event.seq, "type": event.type, "at": event.at, "actor": event.actor}
    if isinstance(event, Created):
        facts["session_id"] = event.session_id
    elif isinstance(event, MessageAdded):
        facts.update(
            message_id=event.message_id,
            role=event.role,
            content=event.content,
            metadata=plain(event.metadata),
            references=plain(event.references),
        )
    elif isinstance(event, SettingsChanged):
        facts.update(changes=plain(event.changes), removed=plain(event.removed))
    return facts


def assert_event_doc(doc: Any, event: Event) -> None:
    """``doc`` is one log --json line for ``event`` (extra keys allowed)."""
    assert isinstance(doc, dict), doc
    expected = event_facts(event)
    missing = set(expected) - set(doc)
    assert not missing, (missing, doc)
    assert with_times({k: doc[k] for k in expected}, "at") == expected


def local_time_pattern(at: datetime, tz: str) -> str:
    """A regex for ``at`` shown in zone ``tz`` to the minute, followed by its ``+HH:MM`` offset."""
    here = at.astimezone(ZoneInfo(tz))
    offset = here.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}"
    return rf"{here:%Y-%m-%d}[T ]{here:%H:%M}(:\d\d(\.\d+)?)? ?{re.escape(offset)}"


# --- journals ---------------------------------------------------------------------------------


def write_log(root: Path, session_id: str, events: Sequence[Event]) -> None:
    """Write a session's log line by line, as the library would, with the events' own times."""
    path = Layout(root).log_path(session_id)
    for folder in (root, path.parent.parent, path.parent):
        folder.mkdir(mode=0o700, exist_ok=True)
    prev = "0" * 64
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for event in events:
            line, prev, _ = encode(event, prev)
            out.write(line)


def old_events() -> list[Event]:
    t = OLD_T0
    return [
        Created(seq=1, at=t, actor="importer", session_id=OLD),
        MessageAdded(
            seq=2, at=t + timedelta(minutes=5), message_id="1" * 32, role="user", content="first old"
        ),
        SettingsChanged(seq=3, at=t + timedelta(minutes=10), changes={"model": "old-model"}),
        MessageAdded(
            seq=4, at=t + timedelta(minutes=20), message_id="2" * 32, role="assistant", content="second old"
        ),
        Cleared(seq=5, at=t + timedelta(minutes=30)),
        MessageAdded(
            seq=6, at=t + timedelta(minutes=40), message_id="3" * 32, role="user", content="third old"
        ),
    ]


def recent_events(now: datetime) -> list[Event]:
    return [
        Created(seq=1, at=now - timedelta(hours=5), session_id=RECENT),
        MessageAdded(seq=2, at=now - timedelta(hours=4), message_id="a" * 32, role="user", content="r1"),
        MessageAdded(seq=3, at=now - timedelta(hours=3), message_id="b" * 32, role="user", content="r2"),
        MessageAdded(seq=4, at=now - timedelta(hours=1), message_id="c" * 32, role="user", content="r3"),
    ]


def build_sample(root: Path) -> None:
    with Journal(root) as j:
        j.create(ALPHA, actor="alice")
        j.add_message(ALPHA, "user", "hello\nworld", metadata={"k": 1}, references=["doc-1"], actor="alice")
        j.update_settings(ALPHA, {"model": "m1", "temperature": 0.2})
        j.add_message(ALPHA, "assistant", "hi there", metadata={"model": "m1"})
        j.update_settings(ALPHA, {"temperature": 0.5}, remove=["model"])
        j.clear(ALPHA)
        j.add_message(ALPHA, "user", "after clear")
        j.create(BETA)
        for i in range(4):
            j.add_message(BETA, "user" if i % 2 == 0 else "assistant", f"beta {i}")
        j.create(GAMMA)
    write_log(root, OLD, old_events())
    write_log(root, RECENT, recent_events(datetime.now(timezone.utc)))
    with Journal(root) as j:
        assert sorted(j.sessions()) == sorted(IDS)
        assert j.verify().ok
        assert [m.content for m in j.get(OLD).messages] == ["third old"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five sessions, read (never written) by the tests that use it."""
    root = tmp_path_factory.mktemp("cli") / "journal"
    build_sample(root)
    return root


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A copy of the sample, for tests that write."""
    root = tmp_path / "journal"
    build_sample(root)
    return root


def files(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
    }


@dataclass(frozen=True)
class Damaged:
    root: Path
    log: Path  # the damaged log, of session "bad"


@pytest.fixture
def damaged(tmp_path: Path) -> Damaged:
    """Sessions "good" (intact) and "bad" (line 3 edited in place, so verify says "edited")."""
    root = tmp_path / "journal"
    with Journal(root) as j:
        j.create("good")
        j.add_message("good", "user", "g1")
        j.create("bad")
        for i in range(4):
            j.add_message("bad", "user", f"bad message {i}")
    log = Layout(root).log_path("bad")
    data = log.read_bytes()
    assert data.count(b"bad message 1") == 1
    log.write_bytes(data.replace(b"bad message 1", b"BAD message 1"))
    return Damaged(root, log)


# --- help, global options, roots --------------------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    proc = run(None, "--help")
    assert proc.returncode == 0, proc.stderr
    for command in COMMANDS:
        assert re.search(rf"\b{command}\b", proc.stdout), (command, proc.stdout)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = run(None, command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
    assert command in proc.stdout
    assert proc.stderr == ""


def test_version() -> None:
    from journal import __version__

    assert __version__ in ok(None, "--version")


@pytest.mark.parametrize(
    "args",
    [
        ("ls",),
        ("show", ALPHA),
        ("log", ALPHA, "--after", "2"),
        ("replay", OLD, "--at", "3"),
        ("replay", RECENT, "--at", "-2h"),
        ("diff", ALPHA, "1", "4"),
        ("diff", RECENT, "-210m", "-30s"),
        ("verify",),
        ("stats",),
    ],
    ids=" ".join,
)
def test_global_options_work_before_and_after_the_command(sample: Path, args: tuple[str, ...]) -> None:
    command, *rest = args
    placements = [
        ["--root", str(sample), "--json", command, *rest],
        [command, *rest, "--root", str(sample), "--json"],
        ["--json", command, "--root", str(sample), *rest],
    ]
    outputs = []
    for placement in placements:
        proc = run(None, *placement)
        assert proc.returncode == 0, (placement, proc.stderr)
        # --json took effect wherever it was (log --json is JSON Lines)
        lines = proc.stdout.splitlines()
        outputs.append([json.loads(line) for line in lines] if command == "log" else json.loads(proc.stdout))
    assert all(o == outputs[0] for o in outputs), outputs
    human = run(None, *args, "--root", str(sample))
    assert human.returncode == 0, human.stderr
    assert human.stdout.strip()
    with pytest.raises(json.JSONDecodeError):
        json.loads(human.stdout)  # without --json: for people


def test_root_comes_from_journal_root_then_dot_journal_data(sample: Path, tmp_path: Path) -> None:
    expected = sorted(IDS)
    by_env = run(None, "ls", "--json", env={"JOURNAL_ROOT": str(sample)}, cwd=tmp_path)
    assert by_env.returncode == 0, by_env.stderr
    assert sorted(row["id"] for row in json.loads(by_env.stdout)) == expected

    build_sample(tmp_path / "journal-data")
    by_cwd = run(None, "ls", "--json", cwd=tmp_path)
    assert by_cwd.returncode == 0, by_cwd.stderr
    assert sorted(row["id"] for row in json.loads(by_cwd.stdout)) == expected

    # --root wins over JOURNAL_ROOT, JOURNAL_ROOT over ./journal-data.
    empty = tmp_path / "empty"
    with Journal(empty) as j:
        j.create("only-here")
    by_flag = run(None, "--root", str(empty), "ls", "--json", env={"JOURNAL_ROOT": str(sample)}, cwd=tmp_path)
    assert [row["id"] for row in json.loads(by_flag.stdout)] == ["only-here"]
    env_over_cwd = run(None, "ls", "--json", env={"JOURNAL_ROOT": str(empty)}, cwd=tmp_path)
    assert [row["id"] for row in json.loads(env_over_cwd.stdout)] == ["only-here"]


MISSING_ROOT_ARGS = [
    ("ls",),
    ("show", ALPHA),
    ("log", ALPHA),
    ("replay", ALPHA, "--at", "1"),
    ("diff", ALPHA, "1", "2"),
    ("tail", ALPHA, "--count", "1"),
    ("tail", "--all", "--count", "1"),
    ("verify",),
    ("verify", ALPHA),
    ("head", ALPHA),
    ("repair", ALPHA),
    ("repair", ALPHA, "--apply"),
    ("compact",),
    ("compact", ALPHA, "--prune"),
    ("export", ALPHA, "--format", "md"),
    ("stats",),
]


@pytest.mark.parametrize("args", MISSING_ROOT_ARGS, ids=" ".join)
def test_a_missing_root_is_a_usage_error_and_stays_missing(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "no-such-root"
    assert_one_line_error(run(missing, *args, timeout=15))
    assert not missing.exists()


def test_the_default_root_missing_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run(None, "ls", cwd=tmp_path))
    assert not (tmp_path / "journal-data").exists()


def test_demo_still_runs(tmp_path: Path) -> None:
    proc = run(None, "demo", "--root", str(tmp_path / "demo"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "demo finished" in proc.stdout
    with Journal(tmp_path / "demo") as j:
        assert j.verify().ok
        assert list(j.sessions())


# --- bad input --------------------------------------------------------------------------------

# Refused by the argument parser itself.
PARSER_REJECTS = [
    ("frobnicate",),
    ("ls", "--limit", "many"),
    ("ls", "--sort", "colour"),
    ("show",),
    ("log", ALPHA, "--type", "deleted"),
    ("log", ALPHA, "--after", "x"),
    ("replay", ALPHA),
    ("diff", ALPHA, "1"),
    ("tail", ALPHA, "--interval", "soon"),
    ("tail", ALPHA, "-n", "-1"),
    ("tail", ALPHA, "-n", "some"),
    ("tail", "--all", "--lines", "1.5"),
    ("export", ALPHA, "--format", "pdf"),
    ("head",),
]
# Well-formed for the parser, refused by the command.
COMMAND_REJECTS: list[Any] = [
    ("tail",),
    ("tail", ALPHA, "--all"),
    ("tail", ALPHA, "--interval", "-1"),
    ("tail", ALPHA, "--interval", "0"),
    ("tail", ALPHA, "--interval", "nan", "--count", "1"),
    ("tail", "--all", "--interval", "inf", "--count", "1"),
]


@pytest.mark.parametrize("args", PARSER_REJECTS + COMMAND_REJECTS, ids=" ".join)
def test_bad_arguments_exit_2_without_traceback(sample: Path, args: tuple[str, ...]) -> None:
    proc = run(sample, *args, timeout=15)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip()


@pytest.mark.parametrize(
    "args",
    PARSER_REJECTS + COMMAND_REJECTS,
    ids=" ".join,
)
def test_bad_arguments_get_one_line_error(sample: Path, args: tuple[str, ...]) -> None:
    assert_one_line_error(run(sample, *args, timeout=15))


UNKNOWN_SESSION_ARGS = [
    ("show", "nope"),
    ("log", "nope"),
    ("replay", "nope", "--at", "1"),
    ("diff", "nope", "1", "2"),
    ("head", "nope"),
    ("verify", "nope"),
    ("repair", "nope"),
    ("repair", "nope", "--apply"),
    ("compact", "nope"),
    ("export", "nope", "--format", "md"),
    ("tail", "nope", "--count", "1"),
    ("show", ""),
    ("show", "bad\x01id\u2028x"),
]


@pytest.mark.parametrize("args", UNKNOWN_SESSION_ARGS, ids=" ".join)
def test_an_unknown_session_is_a_usage_error(sample: Path, args: tuple[str, ...]) -> None:
    assert_one_line_error(run(sample, *args, timeout=15))


@pytest.mark.parametrize(
    "args",
    UNKNOWN_SESSION_ARGS,
    ids=" ".join,
)
def test_an_unknown_session_changes_no_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = tmp_path / "journal"
    with Journal(root) as j:
        j.create("known")
    before = files(root)
    assert run(root, *args, timeout=15).returncode == 2
    assert files(root) == before


@pytest.mark.parametrize(
    "args",
    [
        ("replay", ALPHA, "--at", "yesterday"),
        ("replay", ALPHA, "--at", "2026-01-01T10:00:00"),  # naive
        ("replay", ALPHA, "--at", "2026-01-01"),  # naive
        ("replay", ALPHA, "--at", "2026-13-01T10:00:00Z"),
        ("replay", ALPHA, "--at", "10m"),
        ("replay", ALPHA, "--at=-10x"),
        ("replay", ALPHA, "--at=-m"),
        ("replay", ALPHA, "--at=+10m"),
        ("replay", ALPHA, "--at", "3.5"),
        ("diff", ALPHA, "1", "later"),
        ("diff", ALPHA, "2026-01-01T10:00:00", "3"),  # naive
        ("replay", ALPHA, "--at", "-99999999d"),  # 270,000 years: before datetime.min
        ("replay", ALPHA, "--at", "-9999999999999d"),
        ("diff", ALPHA, "1", "-99999999d"),
        ("replay", ALPHA, "--at", "-2x"),
        ("replay", ALPHA, "--at", "-1e9"),
        ("replay", ALPHA, "--at", "1e9"),
        ("replay", ALPHA, "--at", ""),
        ("replay", ALPHA, "--at=-h"),
        ("replay", ALPHA, "--at", "-1.h"),
        ("replay", ALPHA, "--at", "-10000y"),
        ("replay", ALPHA, "--at", "-" + "9" * 5000 + "s"),
        ("replay", ALPHA, "--at", "9" * 5000),
        ("replay", ALPHA, "--at", "\u00b2"),  # a digit to str.isdigit, not to int()
        ("diff", ALPHA, "-2x", "1"),
        ("diff", ALPHA, "-1h", "-1.h"),
        ("log", ALPHA, "--after", "\u00b2"),
    ],
    ids=lambda a: " ".join(a[2:])[:40],
)
def test_a_malformed_or_naive_time_is_a_usage_error(sample: Path, args: tuple[str, ...]) -> None:
    assert_one_line_error(run(sample, *args))


# --- ls ---------------------------------------------------------------------------------------


def test_ls_json_matches_the_library(sample: Path) -> None:
    rows = json_of(sample, "ls")
    assert isinstance(rows, list)
    assert sorted(row["id"] for row in rows) == sorted(IDS)
    for row in rows:
        assert set(row) == {"id", "messages", "version", "created_at", "updated_at"}, row
        s = session_of(sample, row["id"])
        assert with_times(row, "created_at", "updated_at") == {
            "id": s.id,
            "messages": len(s.messages),
            "version": s.version,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("id", "id"),
        ("created", "created_at"),
        ("updated", "updated_at"),
        ("messages", "messages"),
        ("version", "version"),
    ],
)
def test_ls_sort_and_limit(sample: Path, key: str, field: str) -> None:
    rows = json_of(sample, "ls", "--sort", key)
    assert sorted(row["id"] for row in rows) == sorted(IDS)
    values = [when(r[field]) if field.endswith("_at") else r[field] for r in rows]
    assert values in (sorted(values), sorted(values, reverse=True)), values
    limited = json_of(sample, "ls", "--sort", key, "--limit", "2")
    assert limited == rows[:2]


def test_ls_human_has_one_row_per_session_with_counts_and_local_times(sample: Path) -> None:
    out = ok(sample, "ls", tz="Asia/Kolkata")
    for session_id in IDS:
        s = session_of(sample, session_id)
        rows = [line for line in out.splitlines() if session_id in line]
        assert len(rows) == 1, (session_id, out)
        tokens = rows[0].replace(session_id, " ", 1).split()
        assert str(s.version) in tokens, (session_id, rows[0])
        assert str(len(s.messages)) in tokens, (session_id, rows[0])
    old_row = next(line for line in out.splitlines() if OLD in line.split())
    assert re.search(local_time_pattern(OLD_T0, "Asia/Kolkata"), old_row), old_row  # created
    assert re.search(local_time_pattern(OLD_T0 + timedelta(minutes=40), "Asia/Kolkata"), old_row)  # updated


def ls_row(shown: str, columns: int, width: int, s: Session) -> str:
    """The ``ls`` row of ``s`` whose id takes ``columns`` terminal columns as ``shown``, in a
    column ``width`` wide (times in UTC, as the tests run the command with TZ=UTC)."""
    created = s.created_at.astimezone(timezone.utc).isoformat(timespec="seconds")
    updated = s.updated_at.astimezone(timezone.utc).isoformat(timespec="seconds")
    return f"{shown}{' ' * (width - columns)} {len(s.messages):>8} {s.version:>8}  {created:<25} {updated}"


def ls_header(width: int) -> str:
    return f"SESSION{' ' * (width - 7)} {'MESSAGES':>8} {'VERSION':>8}  {'CREATED':<25} UPDATED"


# Each id as ls shows it, with the terminal columns that takes, counted by hand: CJK and
# fullwidth letters and emoji take two columns, combining marks and the zero width joiner
# none; control characters are shown as their escapes (whose characters take one each).
WIDE_IDS = {
    "東京チャット": ("東京チャット", 12),
    "\uff46\uff55\uff4c\uff4c": ("\uff46\uff55\uff4c\uff4c", 8),  # "full" in fullwidth letters
    "chat-😀😀": ("chat-😀😀", 9),
    "cafe\u0301-e\u0308": ("cafe\u0301-e\u0308", 6),
    "a\u200db": ("a\u200db", 2),
    "ab": ("ab", 2),
    "x\x1b[1m": ("x\\x1b[1m", 8),
    "tab\tid": ("tab\\tid", 7),
}


def test_ls_aligns_wide_and_combining_ids_by_terminal_columns(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    with Journal(root) as j:
        for n, sid in enumerate(WIDE_IDS):
            j.create(sid)
            for i in range(n):
                j.add_message(sid, "user", f"m{i}")
    width = max(columns for _, columns in WIDE_IDS.values())
    expected = [ls_header(width)]
    for sid in sorted(WIDE_IDS):
        shown, columns = WIDE_IDS[sid]
        expected.append(ls_row(shown, columns, width, session_of(root, sid)))
    assert ok(root, "ls").splitlines() == expected


def test_ls_cuts_long_ids_with_an_ellipsis_and_keeps_them_whole_with_wide_and_json(tmp_path: Path) -> None:
    # Oracle: ids whose widths are known by construction; the column is 40 wide.
    long_ascii = "support/2026-11-29/customer-12345/web-chat"  # 42 columns
    long_cjk = "会話" * 15  # 30 characters, 60 columns
    marked = "e\u0301" * 50  # 100 characters, 50 columns
    root = tmp_path / "journal"
    with Journal(root) as j:
        uuid_id = j.create().id  # 32 columns: fits whole
        for sid in (long_ascii, long_cjk, marked, "short"):
            j.create(sid)
    cut = {
        long_ascii: (long_ascii[:39] + "…", 40),
        long_cjk: ("会話" * 9 + "会…", 39),  # a 20th wide character would make 41 columns
        marked: ("e\u0301" * 39 + "…", 40),  # each mark stays with its letter
        uuid_id: (uuid_id, 32),
        "short": ("short", 5),
    }
    assert len(uuid_id) == 32
    lines = ok(root, "ls").splitlines()
    assert lines[0] == ls_header(40)
    assert sorted(lines[1:]) == sorted(
        ls_row(shown, columns, 40, session_of(root, sid)) for sid, (shown, columns) in cut.items()
    )
    wide = ok(root, "ls", "--wide").splitlines()
    assert wide[0] == ls_header(60)
    whole = {long_ascii: 42, long_cjk: 60, marked: 50, uuid_id: 32, "short": 5}
    assert sorted(wide[1:]) == sorted(
        ls_row(sid, columns, 60, session_of(root, sid)) for sid, columns in whole.items()
    )
    assert sorted(row["id"] for row in json_of(root, "ls")) == sorted(whole)
    assert sorted(row["id"] for row in json_of(root, "ls", "--wide")) == sorted(whole)


# --- show, log, replay, diff ------------------------------------------------------------------


@pytest.mark.parametrize("session_id", IDS)
def test_show_json_is_the_current_session(sample: Path, session_id: str) -> None:
    assert_session_doc(json_of(sample, "show", session_id), session_of(sample, session_id))


def test_show_human_shows_visible_messages_and_settings(sample: Path) -> None:
    out = ok(sample, "show", ALPHA)
    assert "after clear" in out
    assert "hi there" not in out  # cleared: not part of the conversation any more
    assert "user" in out
    assert "temperature" in out
    assert "0.5" in out
    s = session_of(sample, ALPHA)
    assert re.search(local_time_pattern(s.messages[0].at, "UTC"), out), out
    beta = ok(sample, "show", BETA)
    positions = [beta.find(f"beta {i}") for i in range(4)]
    assert -1 not in positions
    assert positions == sorted(positions)
    assert "assistant" in beta


def test_replay_human_prints_every_line_of_a_multiline_message(sample: Path) -> None:
    out = ok(sample, "replay", ALPHA, "--at", "2")
    assert "hello" in out
    assert "world" in out


@pytest.mark.parametrize(
    ("tz", "offset"), [("UTC", "+00:00"), ("Asia/Kolkata", "+05:30"), ("America/New_York", "-05:00")]
)
@pytest.mark.parametrize(
    ("args", "at"),
    [
        (("show", OLD), OLD_T0 + timedelta(minutes=40)),
        (("log", OLD), OLD_T0 + timedelta(minutes=10)),
        (("replay", OLD, "--at", "4"), OLD_T0 + timedelta(minutes=20)),
        (("ls",), OLD_T0),
    ],
    ids=lambda a: a[0] if isinstance(a, tuple) else None,
)
def test_human_times_are_local_with_offset(
    sample: Path, tz: str, offset: str, args: tuple[str, ...], at: datetime
) -> None:
    out = ok(sample, *args, tz=tz)
    assert re.search(local_time_pattern(at, tz), out), (local_time_pattern(at, tz), out)
    assert offset in out


def test_log_json_is_every_event_in_order(sample: Path) -> None:
    for session_id in IDS:
        docs = jsonl_of(sample, "log", session_id)
        events = events_of(sample, session_id)
        assert len(docs) == len(events), (session_id, docs)
        for doc, event in zip(docs, events, strict=True):
            assert_event_doc(doc, event)


def test_log_after_and_type_filter(sample: Path) -> None:
    events = events_of(sample, ALPHA)
    after = jsonl_of(sample, "log", ALPHA, "--after", "3")
    assert [d["seq"] for d in after] == [e.seq for e in events if e.seq > 3]
    for doc, event in zip(after, [e for e in events if e.seq > 3], strict=True):
        assert_event_doc(doc, event)
    typed = jsonl_of(sample, "log", ALPHA, "--type", "message_added", "--type", "cleared")
    expected = [e for e in events if e.type in ("message_added", "cleared")]
    assert [d["seq"] for d in typed] == [e.seq for e in expected]
    for doc, event in zip(typed, expected, strict=True):
        assert_event_doc(doc, event)
    both = jsonl_of(sample, "log", ALPHA, "--type", "settings_changed", "--after", "3")
    assert [d["seq"] for d in both] == [e.seq for e in events if e.seq > 3 and e.type == "settings_changed"]
    created = jsonl_of(sample, "log", ALPHA, "--type", "created")
    assert [(d["seq"], d["session_id"], d["actor"]) for d in created] == [(1, ALPHA, "alice")]
    assert jsonl_of(sample, "log", ALPHA, "--after", "7") == []


def test_log_human_shows_cleared_messages_in_order(sample: Path) -> None:
    out = ok(sample, "log", ALPHA)
    marks = ["hello", "hi there", "cleared", "after clear"]
    positions = [out.find(m) for m in marks]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    assert "settings_changed" in out or "temperature" in out
    assert len([line for line in out.splitlines() if line.strip()]) >= len(events_of(sample, ALPHA))


@pytest.mark.parametrize("seq", [1, 2, 4, 6, 7])
def test_replay_at_seq_json_matches_the_library(sample: Path, seq: int) -> None:
    assert_session_doc(json_of(sample, "replay", ALPHA, "--at", str(seq)), session_of(sample, ALPHA, seq))


def test_replay_human_shows_the_conversation_then(sample: Path) -> None:
    out = ok(sample, "replay", ALPHA, "--at", "4")
    assert "hello" in out
    assert "hi there" in out
    assert "after clear" not in out
    assert "m1" in out  # the settings then


@pytest.mark.parametrize(
    ("at", "version"),
    [
        ("2026-01-01T10:25:00+00:00", 4),
        ("2026-01-01T10:25:00Z", 4),
        ("2026-01-01T15:55:00+05:30", 4),  # the same moment
        ("2026-01-01T10:05:00Z", 2),  # exactly the time of seq 2: included
        ("2026-01-01T10:04:59.999999Z", 1),
        ("2026-01-01T11:00:00Z", 6),
    ],
)
def test_replay_at_an_rfc3339_time(sample: Path, at: str, version: int) -> None:
    doc = json_of(sample, "replay", OLD, "--at", at)
    expected = session_of(sample, OLD, when(at))
    assert expected.version == version
    assert_session_doc(doc, expected)


@pytest.mark.parametrize(("at", "contents"), [("-30s", ["r1", "r2", "r3"]), ("-2h", ["r1", "r2"])])
@pytest.mark.parametrize("extra", [(), ("--json",)])
def test_replay_at_a_relative_time(
    sample: Path, at: str, contents: list[str], extra: tuple[str, ...]
) -> None:
    out = ok(sample, "replay", RECENT, f"--at={at}", *extra)
    assert out == ok(sample, "replay", RECENT, *extra, "--at", at)  # as typed: --at -2h
    if extra:
        doc = json.loads(out)
        assert [m["content"] for m in doc["messages"]] == contents
        assert doc["version"] == len(contents) + 1
    else:
        for content in ["r1", "r2", "r3"]:
            assert (re.search(rf"\b{content}\b", out) is not None) == (content in contents), out


def test_replay_at_relative_minutes_and_days(sample: Path) -> None:
    doc = json.loads(ok(sample, "replay", RECENT, "--at", "-210m", "--json"))
    assert [m["content"] for m in doc["messages"]] == ["r1"]
    # A day ago the session did not exist yet: an error, one line, no traceback.
    proc = run(sample, "replay", RECENT, "--at", "-1d")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("journal: ")
    assert len(proc.stderr.splitlines()) == 1


# RECENT's events are 5, 4, 3 and 1 hours old: each amount below falls well between two.
@pytest.mark.parametrize(
    ("at", "contents"),
    [
        ("-2H", ["r1", "r2"]),
        ("-1.5h", ["r1", "r2"]),
        ("-0.05D", ["r1", "r2"]),  # 72 minutes
        ("-210M", ["r1"]),  # minutes, in either case: there is no month
        ("-.5h", ["r1", "r2", "r3"]),
        ("-0s", ["r1", "r2", "r3"]),
        ("-12600S", ["r1"]),
    ],
)
def test_replay_takes_an_amount_ago_as_typed(sample: Path, at: str, contents: list[str]) -> None:
    # Oracle: the contents follow from RECENT's event times; every spelling gives the same.
    spellings = [("--at", at), (f"--at={at}",), ("--a", at)]  # --a: argparse's abbreviation
    docs = [json_of(sample, "replay", RECENT, *spelling) for spelling in spellings]
    docs.append(json_of(sample, "replay", "--at", at, RECENT))
    for doc in docs:
        assert [m["content"] for m in doc["messages"]] == contents, doc
        assert doc["version"] == len(contents) + 1


@pytest.mark.parametrize("at", ["-1y", "-1Y", "-1w", "-6h", "-0.25d"])
def test_an_amount_ago_before_the_session_existed_is_a_usage_error(sample: Path, at: str) -> None:
    # Oracle: the session was created 5 hours ago; the error names the moment asked for.
    before = datetime.now(timezone.utc)
    proc = run(sample, "replay", RECENT, "--at", at)
    after = datetime.now(timezone.utc)
    assert_one_line_error(proc)
    assert "did not exist yet" in proc.stderr, proc.stderr
    unit = {
        "y": timedelta(days=365),
        "w": timedelta(weeks=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
    }
    ago = float(at[1:-1]) * unit[at[-1].lower()]
    assert any(f"{(t - ago).date().isoformat()}T" in proc.stderr for t in (before, after)), proc.stderr


def test_main_reads_an_amount_ago_as_the_value_of_at(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(sample), "replay", RECENT, "--at", "-2H", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["content"] for m in doc["messages"]] == ["r1", "r2"]


def test_a_bad_point_is_named_with_the_accepted_forms(sample: Path) -> None:
    for args in (("replay", ALPHA, "--at", "-2x"), ("diff", ALPHA, "1", "-2x")):
        proc = run(sample, *args)
        assert_one_line_error(proc)
        assert "'-2x': unknown unit 'x'" in proc.stderr, proc.stderr
        assert "s, m, h, d, w, y" in proc.stderr, proc.stderr
    proc = run(sample, "replay", ALPHA, "--at", "later")
    assert_one_line_error(proc)
    for form in ("seq", "RFC 3339", "-2h", "-1y"):
        assert form in proc.stderr, proc.stderr


def test_an_id_that_looks_like_an_amount_ago_is_still_an_id(tmp_path: Path) -> None:
    # A word of "-" and a digit is a value wherever it stands: as a session id too.
    root = tmp_path / "journal"
    with Journal(root) as j:
        j.create("-2h")
        j.add_message("-2h", "user", "dashing")
    assert json_of(root, "show", "-2h")["id"] == "-2h"
    assert json_of(root, "replay", "-2h", "--at", "2")["messages"][0]["content"] == "dashing"
    assert json_of(root, "diff", "-2h", "1", "-0s")["to_version"] == 2
    assert [doc["seq"] for doc in jsonl_of(root, "log", "-2h")] == [1, 2]
    assert json.loads(ok(root, "show", "--json", "--", "-2h"))["id"] == "-2h"  # argparse's own escape


def assert_diff(doc: Any, root: Path, session_id: str, a: int | datetime, b: int | datetime) -> None:
    before, after = session_of(root, session_id, a), session_of(root, session_id, b)
    assert isinstance(doc, dict), doc
    for key in ("session_id", "from_version", "to_version", "events", "messages_added"):
        assert key in doc, (key, doc)
    assert {"settings_before", "settings_after"} <= set(doc), doc
    assert doc["session_id"] == session_id
    assert (doc["from_version"], doc["to_version"]) == (before.version, after.version)
    between = [e for e in events_of(root, session_id) if before.version < e.seq <= after.version]
    assert len(doc["events"]) == len(between), doc["events"]
    for got, event in zip(doc["events"], between, strict=True):
        assert_event_doc(got, event)
    added = [e for e in between if isinstance(e, MessageAdded)]
    if isinstance(doc["messages_added"], list):
        assert [m["content"] for m in doc["messages_added"]] == [e.content for e in added]
    else:
        assert doc["messages_added"] == len(added)
    assert doc["settings_before"] == plain(before.settings)
    assert doc["settings_after"] == plain(after.settings)


@pytest.mark.parametrize(("a", "b"), [("1", "4"), ("3", "7"), ("2", "2"), ("1", "7")])
def test_diff_between_seqs(sample: Path, a: str, b: str) -> None:
    assert_diff(json_of(sample, "diff", ALPHA, a, b), sample, ALPHA, int(a), int(b))


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "{sid}", "--at", "{past}"),
        ("diff", "{sid}", "1", "{past}"),
        ("diff", "{sid}", "{past}", "{far}"),
    ],
)
def test_a_seq_past_the_end_is_a_usage_error_naming_the_version(sample: Path, args: tuple[str, ...]) -> None:
    # Oracle: the library's version of the session; nothing is printed on stdout.
    version = session_of(sample, ALPHA, None).version
    values = {"sid": ALPHA, "past": str(version + 1), "far": str(version + 50)}
    proc = run(sample, *(a.format(**values) for a in args))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert f"it is at version {version}" in proc.stderr


def test_diff_between_times(sample: Path) -> None:
    a, b = "2026-01-01T10:07:00Z", "2026-01-01T15:55:00+05:30"
    doc = json_of(sample, "diff", OLD, a, b)
    assert_diff(doc, sample, OLD, when(a), when(b))
    assert [e["seq"] for e in doc["events"]] == [3, 4]
    assert doc["settings_before"] == {}
    assert doc["settings_after"] == {"model": "old-model"}


def test_diff_mixes_a_seq_and_a_time(sample: Path) -> None:
    doc = json_of(sample, "diff", OLD, "2", "2026-01-01T10:35:00Z")
    assert_diff(doc, sample, OLD, 2, when("2026-01-01T10:35:00Z"))
    assert [e["seq"] for e in doc["events"]] == [3, 4, 5]


def test_diff_between_relative_times(sample: Path) -> None:
    doc = json_of(sample, "diff", RECENT, "-210m", "-30s")
    assert (doc["from_version"], doc["to_version"]) == (2, 4)
    assert [e["content"] for e in doc["events"]] == ["r2", "r3"]


@pytest.mark.parametrize(
    "args",
    [
        ("diff", RECENT, "-210m", "-30s"),
        ("diff", RECENT, "-3.5h", "-0.5H"),
        ("diff", RECENT, "-210m", "--json", "-30s"),
        ("diff", "--json", RECENT, "-12600s", "--root", "{root}", "-0.5h"),
        ("diff", RECENT, "2", "-30s"),
        ("diff", RECENT, "-210m", "4"),
        ("--json", "diff", RECENT, "--", "-210m", "-30s"),
    ],
    ids=" ".join,
)
def test_diff_takes_amounts_ago_as_typed(sample: Path, args: tuple[str, ...]) -> None:
    # Oracle: 3.5 hours ago RECENT was at version 2, half an hour ago at 4.
    words = [a.format(root=sample) for a in args]
    doc = json.loads(ok(sample, *words, *(() if "--json" in words else ("--json",))))
    assert (doc["from_version"], doc["to_version"]) == (2, 4)
    assert [e["content"] for e in doc["events"]] == ["r2", "r3"]


def test_diff_human_between_amounts_ago(sample: Path) -> None:
    out = ok(sample, "diff", RECENT, "-4.5h", "-2h")
    assert out.startswith(f"{RECENT}: version 1 -> 3, 2 events, 2 messages added"), out
    assert "r1" in out
    assert "r2" in out
    assert "r3" not in out


def test_diff_refuses_the_later_point_first(sample: Path) -> None:
    proc = run(sample, "diff", RECENT, "-1h", "-2h")
    assert_one_line_error(proc)
    assert "give the earlier point first" in proc.stderr, proc.stderr


def test_diff_human_names_what_changed(sample: Path) -> None:
    out = ok(sample, "diff", ALPHA, "1", "4")
    assert "hello" in out
    assert "hi there" in out
    assert "m1" in out
    assert "after clear" not in out


# --- head, verify, repair ---------------------------------------------------------------------


def test_head_matches_the_library(sample: Path) -> None:
    for session_id in (ALPHA, GAMMA, OLD):
        with Journal(sample) as j:
            head = j.head(session_id)
        assert json_of(sample, "head", session_id) == msgspec.structs.asdict(head)
        out = ok(sample, "head", session_id)
        assert head.hash in out
        assert re.search(rf"\b{head.seq}\b", out)


def verify_doc(report: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(msgspec.json.encode(report))
    doc["ok"] = report.ok
    doc["heads"] = sorted(doc["heads"], key=lambda h: h["session_id"])
    return doc


def sorted_heads(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "heads": sorted(doc["heads"], key=lambda h: h["session_id"])}


def test_verify_clean_journal(sample: Path) -> None:
    with Journal(sample) as j:
        report = j.verify()
    doc = json_of(sample, "verify")
    assert set(doc) == {"ok", "sessions", "events", "problems", "heads"}
    assert sorted_heads(doc) == verify_doc(report)
    assert doc["ok"] is True
    assert doc["sessions"] == len(IDS)
    out = ok(sample, "verify")
    assert out.strip()
    assert re.search(rf"\b{report.sessions}\b", out), out
    assert re.search(rf"\b{report.events}\b", out), out
    single = json_of(sample, "verify", BETA)
    with Journal(sample) as j:
        assert sorted_heads(single) == verify_doc(j.verify(BETA))


def test_verify_reports_each_problem_with_file_line_offset_and_kind(damaged: Damaged) -> None:
    with Journal(damaged.root) as j:
        report = j.verify()
    assert [p.kind for p in report.problems] == ["edited"]
    proc = run(damaged.root, "verify")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    for problem in report.problems:
        matching = [
            line
            for line in lines
            if problem.kind in line
            and "events.jsonl" in line
            and re.search(rf"\b{problem.line}\b", line)
            and re.search(rf"\b{problem.offset}\b", line)
        ]
        assert len(matching) == 1, (problem, proc.stdout)

    json_proc = run(damaged.root, "verify", "--json")
    assert json_proc.returncode == 1, json_proc.stderr
    doc = json.loads(json_proc.stdout)
    assert doc["ok"] is False
    assert sorted_heads(doc) == verify_doc(report)

    assert run(damaged.root, "verify", "good").returncode == 0
    assert run(damaged.root, "verify", "bad").returncode == 1


def test_verify_with_anchors_finds_lost_events(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    with Journal(root) as j:
        j.create("s")
        for i in range(4):
            j.add_message("s", "user", f"m{i}")
    heads = json_of(root, "verify")["heads"]
    anchors = tmp_path / "anchors.json"
    anchors.write_text(json.dumps(heads))
    head_file = tmp_path / "head.json"
    head_file.write_text(json.dumps([json_of(root, "head", "s")]))
    assert run(root, "verify", "--anchors", str(anchors)).returncode == 0

    log = Layout(root).log_path("s")
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))  # the last event is gone; the log alone cannot tell
    assert run(root, "verify").returncode == 0
    with Journal(root) as j:
        report = j.verify(anchors=[Anchor(**heads[0])])
    assert [p.kind for p in report.problems] == ["truncated"]
    for file in (anchors, head_file):
        proc = run(root, "verify", "--anchors", str(file), "--json")
        assert proc.returncode == 1, proc.stderr
        assert sorted_heads(json.loads(proc.stdout)) == verify_doc(report)
        human = run(root, "verify", "s", "--anchors", str(file))
        assert human.returncode == 1
        assert "truncated" in human.stdout


@pytest.mark.parametrize("content", ["not json", '{"session_id": "s"}', '[{"seq": 1}]', None])
def test_verify_with_a_bad_anchors_file_is_a_usage_error(
    sample: Path, tmp_path: Path, content: str | None
) -> None:
    anchors = tmp_path / "anchors.json"
    if content is not None:
        anchors.write_text(content)
    assert_one_line_error(run(sample, "verify", "--anchors", str(anchors)))


def test_reading_a_damaged_session_fails_in_one_line(damaged: Damaged) -> None:
    for args in (("show", "bad"), ("log", "bad"), ("export", "bad", "--format", "md")):
        proc = run(damaged.root, *args)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("journal: ")
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "events.jsonl" in proc.stderr


def test_repair_dry_run_changes_nothing_and_exits_1(damaged: Damaged) -> None:
    with Journal(damaged.root) as j:
        plan = j.repair("bad", dry_run=True)
    assert plan.changed
    before = files(damaged.root)
    proc = run(damaged.root, "repair", "bad")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert files(damaged.root) == before
    for moved in plan.moved:
        assert "events.jsonl" in proc.stdout
        assert re.search(rf"\b{moved.offset}\b", proc.stdout), proc.stdout
        assert re.search(rf"\b{moved.size}\b", proc.stdout), proc.stdout
    assert run(damaged.root, "repair", "good").returncode == 0
    assert files(damaged.root) == before


def test_repair_apply_quarantines_and_verify_is_clean(damaged: Damaged) -> None:
    with Journal(damaged.root) as j:
        plan = j.repair("bad", dry_run=True)
    moved_bytes = damaged.log.read_bytes()[plan.moved[0].offset :]
    proc = run(damaged.root, "repair", "bad", "--apply")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.strip()
    quarantine = damaged.log.parent / "quarantine"
    kept = [p.read_bytes() for p in quarantine.rglob("*") if p.is_file() and p.name != "repair.json"]
    assert moved_bytes in kept
    assert run(damaged.root, "verify").returncode == 0
    with Journal(damaged.root) as j:
        assert j.verify().ok
        assert j.get("bad").version == plan.kept
        assert j.get("good").version == 2
    assert run(damaged.root, "repair", "bad").returncode == 0  # nothing left to do
    assert run(damaged.root, "repair", "bad", "--apply").returncode == 0


# --- compact, export, stats -------------------------------------------------------------------


def state_of(root: Path) -> dict[str, Any]:
    """Every session's state and events, as comparable values."""
    with Journal(root) as j:
        return {
            sid: (
                (s := j.get(sid)).version,
                plain(s.settings),
                [(m.id, m.seq, m.content, m.at) for m in s.messages],
                [event_facts(e) for e in j.events(sid)],
            )
            for sid in j.sessions()
        }


def test_compact_snapshots_every_session_and_sums_them_up(fresh: Path) -> None:
    # Oracle: the snapshot files on disk; the output is one summary line (a root of thousands
    # of sessions would print thousands), and --verbose names each session.
    before = state_of(fresh)
    out = ok(fresh, "compact")
    assert out.splitlines() == [f"compacted {len(IDS)} sessions: 0 events archived, 0 dropped"]
    for session_id in IDS:
        folder = Layout(fresh).session_dir(session_id)
        assert list(folder.glob("snapshot-*.snap")), session_id
    assert state_of(fresh) == before
    assert ok(fresh, "verify")
    verbose = ok(fresh, "compact", "--verbose")
    for session_id in IDS:
        assert session_id in verbose, verbose
    assert verbose.splitlines()[-1].startswith(f"compacted {len(IDS)} sessions")


def test_compact_one_session_with_prune_archives_it_only(fresh: Path) -> None:
    before = state_of(fresh)
    out = ok(fresh, "compact", ALPHA, "--prune")
    assert ALPHA in out
    assert list((Layout(fresh).session_dir(ALPHA) / "archive").glob("*.jsonl.gz"))
    assert not list(Layout(fresh).session_dir(BETA).glob("snapshot-*"))
    assert state_of(fresh) == before
    assert len(jsonl_of(fresh, "log", ALPHA)) == 7  # archived events are still shown
    assert_session_doc(json_of(fresh, "replay", ALPHA, "--at", "4"), session_of(fresh, ALPHA, 4))
    assert json_of(fresh, "verify")["ok"] is True


@pytest.mark.parametrize("session_id", [ALPHA, BETA, GAMMA])
def test_export_json_and_jsonl_match_show_and_log(sample: Path, session_id: str) -> None:
    exported_doc = json.loads(ok(sample, "export", session_id, "--format", "json"))
    assert exported_doc == json_of(sample, "show", session_id)
    assert_session_doc(exported_doc, session_of(sample, session_id))
    exported = [
        json.loads(line) for line in ok(sample, "export", session_id, "--format", "jsonl").splitlines()
    ]
    assert exported == jsonl_of(sample, "log", session_id)


def test_export_md_is_a_readable_transcript(sample: Path) -> None:
    out = ok(sample, "export", BETA, "--format", "md")
    assert re.search(r"^#", out, re.MULTILINE), out
    positions = [out.find(f"beta {i}") for i in range(4)]
    assert -1 not in positions
    assert positions == sorted(positions)
    assert "user" in out.lower()
    assert "assistant" in out.lower()
    assert not out.lstrip().startswith(("{", "["))


@pytest.mark.parametrize("fmt", ["md", "json", "jsonl"])
def test_export_to_a_file_is_private(sample: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    proc = run(sample, "export", ALPHA, "--format", fmt, "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8") == ok(sample, "export", ALPHA, "--format", fmt)
    assert fmt == "md" or "after clear" in target.read_text(encoding="utf-8")


def test_export_refuses_to_overwrite_a_file_without_force(sample: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "transcript.md"
    target.write_bytes(b"precious\n")
    target.chmod(0o644)
    proc = run(sample, "export", ALPHA, "--format", "md", "-o", str(target))
    assert_one_line_error(proc)
    assert str(target) in proc.stderr
    assert "--force" in proc.stderr
    assert target.read_bytes() == b"precious\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in folder.iterdir()) == ["transcript.md"]  # nothing left beside it


def test_export_refuses_a_dangling_symlink_too(sample: Path, tmp_path: Path) -> None:
    # The link would otherwise have the transcript written wherever it points.
    link = tmp_path / "out.md"
    link.symlink_to(tmp_path / "elsewhere.md")
    assert_one_line_error(run(sample, "export", ALPHA, "--format", "md", "-o", str(link)))
    assert not (tmp_path / "elsewhere.md").exists()
    assert link.is_symlink()


@pytest.mark.parametrize("fmt", ["md", "jsonl"])
def test_export_force_replaces_the_file_whole_and_private(sample: Path, tmp_path: Path, fmt: str) -> None:
    # Oracle: stdout of the same export; and the old file, held open, keeps its bytes: the new
    # one took its name in one rename, so no reader ever saw a truncated or half-written file.
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / f"transcript.{fmt}"
    target.write_bytes(b"old transcript\n")
    target.chmod(0o644)
    with target.open("rb") as old:
        proc = run(sample, "export", ALPHA, "--format", fmt, "-o", str(target), "--force")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""
        assert old.read() == b"old transcript\n"
    assert target.read_text(encoding="utf-8") == ok(sample, "export", ALPHA, "--format", fmt)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [target.name]


def test_export_force_to_a_new_file_creates_it(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    assert run(sample, "export", BETA, "--format", "json", "-o", str(target), "--force").returncode == 0
    assert json.loads(target.read_text(encoding="utf-8")) == json_of(sample, "show", BETA)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_export_into_what_cannot_hold_a_file_fails_cleanly(sample: Path, tmp_path: Path) -> None:
    # Oracle: exit 2, one line, and the folder exactly as it was (no claim, no temporary file).
    folder = tmp_path / "out"
    (folder / "a-folder").mkdir(parents=True)
    (folder / "a-folder" / "inside").write_text("kept", encoding="utf-8")
    before = files(folder)
    for args in (
        ("-o", str(folder / "missing" / "t.md")),
        ("-o", str(folder / "missing" / "t.md"), "--force"),
        ("-o", str(folder / "a-folder"), "--force"),
        ("-o", str(folder / "a-folder")),
    ):
        assert_one_line_error(run(sample, "export", ALPHA, "--format", "md", *args))
        assert files(folder) == before, args


def test_export_of_an_unknown_session_creates_no_file(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.md"
    assert_one_line_error(run(sample, "export", "nope", "--format", "md", "-o", str(target)))
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_stats_totals_match_the_journal(sample: Path) -> None:
    doc = json_of(sample, "stats")
    with Journal(sample) as j:
        events = sum(len(list(j.events(sid))) for sid in j.sessions())
    logs = sum(Layout(sample).log_path(sid).stat().st_size for sid in IDS)
    everything = sum(p.stat().st_size for p in sample.rglob("*") if p.is_file())
    assert doc["sessions"] == len(IDS)
    assert doc["events"] == events
    assert logs <= doc["bytes"] <= everything
    out = ok(sample, "stats")
    assert re.search(rf"\b{len(IDS)}\b", out)
    assert re.search(rf"\b{events}\b", out)
    assert "snapshot" in out.lower()


def test_output_into_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    with Journal(root, fsync="never") as j:
        j.create("long")
        for i in range(2000):
            j.add_message("long", "user", f"line {i} " + "x" * 100)
    for args in (("log", "long"), ("show", "long"), ("export", "long", "--format", "jsonl")):
        proc = subprocess.Popen(
            argv(root, args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()  # like `journal log long | head -1`
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        proc.wait(TIMEOUT)
        assert "Traceback" not in err, (args, err)
        assert "Exception ignored" not in err, (args, err)


# --- progress on a terminal -------------------------------------------------------------------


def run_with_tty_stderr(root: Path, *args: str) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (raw: no newline translation); stdout piped."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            argv(root, args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=child_env(),
        )
        os.close(slave)
        slave = -1
        out, _ = proc.communicate(timeout=TIMEOUT)
        reader.join(5)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return proc.returncode, out.decode("utf-8"), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("args", [("verify",), ("stats",), ("compact",), ("verify", "--json")])
def test_progress_shows_on_a_terminal_only(fresh: Path, args: tuple[str, ...]) -> None:
    code, out, err = run_with_tty_stderr(fresh, *args)
    assert code == 0, err
    assert "Traceback" not in err
    assert re.search(r"\r|\d+\s*/\s*\d+|%", err), repr(err)
    if "--json" in args:
        json.loads(out)  # the bar never leaks into stdout
    piped = run(fresh, *args)
    assert piped.returncode == 0
    assert piped.stderr == ""
    if "--json" in args:
        assert json.loads(piped.stdout) == json.loads(out)


# --- tail -------------------------------------------------------------------------------------


@dataclass
class Tail:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    pump: threading.Thread

    def next_line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None


@contextmanager
def tail_processes() -> Iterator[list[Tail]]:
    """A list for the tails a test starts: killed at the end if still running, pipes closed."""
    started: list[Tail] = []
    try:
        yield started
    finally:
        stop_tails(started)


def stop_tails(started: list[Tail]) -> None:
    for tail in started:
        if tail.proc.poll() is None:
            tail.proc.kill()
        tail.proc.wait(10)
        tail.pump.join(10)
        for stream in (tail.proc.stdout, tail.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    """Tails the test started (see ``tail_processes``)."""
    with tail_processes() as started:
        yield started


def start_tail(root: Path | str, tails: list[Tail], *args: str, interval: str = "0.05") -> Tail:
    proc = subprocess.Popen(
        argv(root, ["tail", *args, "--interval", interval]),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=child_env(),
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    tail = Tail(proc, lines, threading.Thread(target=pump, daemon=True))
    tail.pump.start()
    tails.append(tail)
    return tail


def finish(tail: Tail) -> tuple[list[str], str]:
    """Wait for the tail to exit; its remaining stdout lines and its stderr."""
    tail.proc.wait(TIMEOUT)
    out: list[str] = []
    while (line := tail.next_line(TIMEOUT)) is not None:
        out.append(line)
    assert tail.proc.stderr is not None
    return out, tail.proc.stderr.read()


@pytest.mark.parametrize("no_history", [(), ("-n", "0"), ("--lines=0",)], ids=" ".join)
def test_tail_json_prints_only_new_events_then_exits_after_count(
    fresh: Path, tails: list[Tail], no_history: tuple[str, ...]
) -> None:
    start_version = session_of(fresh, BETA).version
    tail = start_tail(fresh, tails, BETA, "--json", "--count", "3", *no_history)
    deadline = time.monotonic() + TIMEOUT
    with Journal(fresh) as j:
        i = 0
        while tail.proc.poll() is None and time.monotonic() < deadline:
            j.add_message(BETA, "user", f"tailed {i}", metadata={"i": i})
            i += 1
            time.sleep(0.2)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    docs = [json.loads(line) for line in lines]
    assert len(docs) == 3, docs
    seqs = [d["seq"] for d in docs]
    assert seqs[0] > start_version  # nothing from before it started
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    events = {e.seq: e for e in events_of(fresh, BETA)}
    for doc in docs:
        assert_event_doc(doc, events[doc["seq"]])


def test_tail_prints_each_event_as_it_arrives_and_stops_on_sigint(fresh: Path, tails: list[Tail]) -> None:
    tail = start_tail(fresh, tails, ALPHA)
    deadline = time.monotonic() + TIMEOUT
    seen: str | None = None
    with Journal(fresh) as j:
        i = 0
        while seen is None and time.monotonic() < deadline:
            assert tail.proc.poll() is None, tail.proc.stderr.read() if tail.proc.stderr else ""
            j.add_message(ALPHA, "assistant", f"streamed {i}")
            i += 1
            seen = tail.next_line(0.3)
        assert seen is not None, "no line while the tail was running"
        assert re.search(r"streamed \d+", seen), seen
        j.update_settings(ALPHA, {"colour": "blue"})
        j.clear(ALPHA)
    more: list[str] = []
    while len(more) < 20 and (line := tail.next_line(5)) is not None:
        more.append(line)
        if "clear" in line:
            break
    text = seen + "".join(more)
    assert "colour" in text, text
    assert "clear" in text, text
    assert tail.proc.poll() is None  # still following
    tail.proc.send_signal(signal.SIGINT)
    _, err = finish(tail)
    assert tail.proc.returncode in (0, 130), err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


def test_tail_all_follows_sessions_created_after_it_started(fresh: Path, tails: list[Tail]) -> None:
    tail = start_tail(fresh, tails, "--all", "--json", "--count", "4")
    deadline = time.monotonic() + TIMEOUT
    made: list[str] = []
    with Journal(fresh) as j:
        while tail.proc.poll() is None and time.monotonic() < deadline:
            sid = f"new-{len(made)}"
            j.create(sid)
            j.add_message(sid, "user", f"hello from {sid}")
            made.append(sid)
            time.sleep(0.25)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    docs = [json.loads(line) for line in lines]
    assert len(docs) == 4, docs
    created = [d for d in docs if d["type"] == "created"]
    assert created, docs  # at least one session that did not exist when tail started
    for doc in docs:
        if doc["type"] == "created":
            sid = doc["session_id"]
        else:
            assert doc["type"] == "message_added", doc
            sid = doc["content"].removeprefix("hello from ")
        assert sid in made, doc
        assert_event_doc(doc, events_of(fresh, sid)[doc["seq"] - 1])


def test_tail_all_human_names_the_session(fresh: Path, tails: list[Tail]) -> None:
    tail = start_tail(fresh, tails, "--all", "--count", "1")
    deadline = time.monotonic() + TIMEOUT
    with Journal(fresh) as j:
        while tail.proc.poll() is None and time.monotonic() < deadline:
            j.add_message(GAMMA, "user", "to gamma")
            time.sleep(0.2)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    assert len(lines) == 1, lines
    assert GAMMA in lines[0]
    assert "to gamma" in lines[0]


def read_lines(tail: Tail, n: int) -> list[str]:
    """The tail's next ``n`` lines (fewer only if it ended or hung)."""
    got: list[str] = []
    while len(got) < n and (line := tail.next_line(TIMEOUT)) is not None:
        got.append(line)
    return got


def append_until_exit(tail: Tail, root: Path, session_id: str) -> list[int]:
    """Append to the session until the tail exits; the seqs appended."""
    deadline = time.monotonic() + TIMEOUT
    appended: list[int] = []
    with Journal(root) as j:
        while tail.proc.poll() is None and time.monotonic() < deadline:
            appended.append(j.add_message(session_id, "user", f"new {len(appended)}").seq)
            time.sleep(0.2)
    return appended


@pytest.mark.parametrize("n", ["1", "3"])
def test_tail_n_prints_the_newest_events_then_follows(fresh: Path, tails: list[Tail], n: str) -> None:
    # Oracle: the library's events; history then new events, each seq once, none skipped.
    events = events_of(fresh, BETA)
    tail = start_tail(fresh, tails, BETA, "-n", n, "--json", "--count", "2")
    history = [json.loads(line) for line in read_lines(tail, int(n))]
    assert [d["seq"] for d in history] == [e.seq for e in events[-int(n) :]]
    for doc, event in zip(history, events[-int(n) :], strict=True):
        assert doc["session_id"] == BETA
        assert_event_doc(doc, event)
    appended = append_until_exit(tail, fresh, BETA)
    rest, err = finish(tail)
    assert tail.proc.returncode == 0, err
    new = [json.loads(line) for line in rest]
    assert [d["seq"] for d in new] == [len(events) + 1, len(events) + 2]  # --count: new ones only
    assert [d["seq"] for d in new] == appended[:2]


def test_tail_n_beyond_the_history_prints_all_of_it(fresh: Path, tails: list[Tail]) -> None:
    events = events_of(fresh, ALPHA)
    tail = start_tail(fresh, tails, ALPHA, "--lines", "1000", "--count", "1")
    history = read_lines(tail, len(events))
    assert len(history) == len(events)
    for line, event in zip(history, events, strict=True):
        assert line.startswith(f"{ALPHA} #{event.seq} "), line
    assert "hello" in history[1]
    assert "after clear" in history[-1]
    append_until_exit(tail, fresh, ALPHA)
    rest, err = finish(tail)
    assert tail.proc.returncode == 0, err
    assert len(rest) == 1
    assert rest[0].startswith(f"{ALPHA} #{len(events) + 1} "), rest
    assert "new 0" in rest[0]


def test_tail_all_n_prints_the_newest_events_of_every_session_by_time(
    tmp_path: Path, tails: list[Tail]
) -> None:
    # Sessions written with chosen times: "x" at minutes 0, 2, 4, 6 and "y" at 1, 3, 5,
    # interleaved; "z" long before. Oracle, by hand: the newest four are y#2 (minute 3), x#3
    # (4), y#3 (5), x#4 (6), in that order; then only what is appended.
    root = tmp_path / "journal"
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

    def written(sid: str, minutes: list[int]) -> list[Event]:
        made: list[Event] = [Created(seq=1, at=t0 + timedelta(minutes=minutes[0]), session_id=sid)]
        for seq, minute in enumerate(minutes[1:], start=2):
            at = t0 + timedelta(minutes=minute)
            made.append(
                MessageAdded(seq=seq, at=at, message_id=f"{sid}{seq}" * 8, role="user", content=f"{sid}{seq}")
            )
        return made

    write_log(root, "x", written("x", [0, 2, 4, 6]))
    write_log(root, "y", written("y", [1, 3, 5]))
    write_log(root, "z", written("z", [-10]))
    tail = start_tail(root, tails, "--all", "-n", "4", "--json", "--count", "1")
    history = [json.loads(line) for line in read_lines(tail, 4)]
    assert [(d["session_id"], d["seq"]) for d in history] == [("y", 2), ("x", 3), ("y", 3), ("x", 4)]
    append_until_exit(tail, root, "z")
    rest, err = finish(tail)
    assert tail.proc.returncode == 0, err
    assert [(d["session_id"], d["seq"], d["content"]) for d in map(json.loads, rest)] == [("z", 2, "new 0")]


def test_log_show_and_export_render_edits_removals_and_redactions(tmp_path: Path) -> None:
    root = tmp_path / "j"
    with Journal(root) as j:
        j.create("s")
        first = j.add_message("s", "user", "private words")
        j.add_message("s", "assistant", "kept words", before=first.id)
        j.edit_message("s", first.id, "private, edited")
        j.pop_message("s")
        j.redact_message("s", first.id, reason="asked to forget", actor="dpo")
        j.add_message("s", "user", "later")
    short = first.id[:8]
    lines = ok(root, "log", "s").splitlines()
    assert lines[1].endswith("message_added: user: [content erased by #6]")
    assert lines[2].endswith(f"message_added: assistant (before {short}): kept words")
    assert lines[3].endswith(f"message_edited: message {short}: [content erased by #6]")
    assert lines[4].endswith(f"message_removed: message {short} left the conversation")
    assert lines[5].endswith(f"message_redacted by dpo: message {short} erased: asked to forget")
    show = ok(root, "show", "s")
    assert "kept words" in show
    assert "private" not in show
    assert "[content erased]" not in show
    events = [json.loads(line) for line in ok(root, "export", "s", "--format", "jsonl").splitlines()]
    assert [e["type"] for e in events][3:6] == ["message_edited", "message_removed", "message_redacted"]
    assert (events[1]["content"], events[1]["redacted_by"], events[5]["reason"]) == ("", 6, "asked to forget")
    assert len(ok(root, "log", "s", "--type", "message_redacted").splitlines()) == 1
    replayed = ok(root, "replay", "s", "--at", "3")
    assert "[content erased]" in replayed
    assert "private" not in replayed


# --- copy and URL roots -----------------------------------------------------------------------


def heads_of(root: Path | str) -> dict[str, Anchor]:
    with Journal.from_url(root) as j:
        return {sid: j.head(sid) for sid in j.sessions()}


def test_copy_into_a_new_folder_copies_every_session_and_verifies_it(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "backup" / "journal"
    out = ok(None, "copy", "--from", str(sample), "--to", str(target)).splitlines()
    heads = heads_of(sample)
    # One line per session in the order the source lists them, then the summary.
    assert len(out) == len(IDS) + 1, out
    assert sorted(heads) == sorted(IDS)
    for line, sid in zip(out, heads, strict=False):
        head = heads[sid]
        events = len(events_of(sample, sid))
        assert line == f"{sid}: copied {events} events, verified at seq {head.seq} hash {head.hash}", out
    total = sum(len(events_of(sample, sid)) for sid in IDS)
    assert out[-1] == f"copied {len(IDS)} of {len(IDS)} sessions ({total} events) from {sample} to {target}"
    # The copy is the same history: the same heads (hash chains), events and states.
    assert heads_of(target) == heads
    for sid in IDS:
        assert events_of(target, sid) == events_of(sample, sid)
    with Journal(target) as j:
        assert j.verify().ok
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_copy_named_sessions_from_the_root_with_json(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    # --from defaults to the root; a session named twice is copied once.
    doc = json.loads(ok(sample, "copy", "--to", f"file://{target}", "--json", BETA, GAMMA, BETA))
    heads = heads_of(sample)
    assert doc["ok"] is True
    assert (doc["from"], doc["to"]) == (str(sample), str(target))
    assert (doc["copied"], doc["skipped"], doc["failed"]) == (2, 0, 0)
    assert [s["session_id"] for s in doc["sessions"]] == [BETA, GAMMA]
    for entry in doc["sessions"]:
        sid = entry["session_id"]
        assert entry["status"] == "copied"
        assert entry["events"] == len(events_of(sample, sid))
        assert msgspec.convert(entry["head"], Anchor) == heads[sid]
        assert entry["problems"] == []
    assert doc["events"] == sum(e["events"] for e in doc["sessions"])
    assert sorted(heads_of(target)) == sorted([BETA, GAMMA])


def test_copy_skips_a_session_the_target_has_and_exits_1(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    with Journal(target) as j:
        j.create(BETA)
        j.add_message(BETA, "user", "the target's own")
    before = files(target)
    proc = run(sample, "copy", "--to", str(target), ALPHA, BETA)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{ALPHA}: copied ")
    assert lines[1] == f"{BETA}: skipped: exists in the target"
    assert lines[2].startswith("copied 1 of 2 sessions"), lines
    assert lines[2].endswith(", 1 skipped"), lines
    # Never merged or overwritten.
    assert {k: v for k, v in files(target).items() if k.startswith(BETA)} == {
        k: v for k, v in before.items() if k.startswith(BETA)
    }
    doc = json.loads(run(sample, "copy", "--to", str(target), "--json", BETA).stdout)
    assert (doc["ok"], doc["sessions"][0]["status"], doc["sessions"][0]["head"]) == (False, "skipped", None)


@pytest.mark.parametrize(
    "args",
    [
        ("copy",),  # --to is required
        ("copy", "--to"),
        ("copy", "--to", "{tmp}/t", "nope"),  # an unknown session: nothing is copied
        ("copy", "--to", "{tmp}/t", "bad\x01id"),
        ("copy", "--to", "{sample}"),  # the same journal
        ("copy", "--to", "file://{sample}/"),
        ("copy", "--to", "{tmp}/a-file"),  # not a folder
        ("copy", "--from", "{tmp}/missing", "--to", "{tmp}/t"),
        ("copy", "--to", "ftp://example.com/j"),
        ("copy", "--from", "mysql://root@localhost/j", "--to", "{tmp}/t"),
        ("--root", "ftp://example.com/j", "ls"),
        ("--root", "file://otherhost/j", "ls"),
        ("--root", "file://{tmp}/missing", "ls"),
        ("demo", "--root", "postgresql://postgres@127.0.0.1:1/x"),
    ],
    ids=lambda a: " ".join(a),
)
def test_copy_and_url_usage_errors(sample: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "a-file").write_text("not a journal")
    filled = [a.format(tmp=tmp_path, sample=sample) for a in args]
    proc = run(sample, *filled, timeout=15)
    assert_one_line_error(proc)
    assert not (tmp_path / "t").exists()
    assert not (tmp_path / "missing").exists()


def test_a_file_url_is_a_root(sample: Path) -> None:
    by_url = json_of(f"file://{sample}", "ls")
    assert by_url == json_of(sample, "ls")
    assert json_of(f"file://localhost{sample}", "head", ALPHA) == json_of(sample, "head", ALPHA)


def test_root_comes_from_journal_url_before_journal_root(sample: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    with Journal(other) as j:
        j.create("only-here")
    both = {"JOURNAL_URL": f"file://{other}", "JOURNAL_ROOT": str(sample)}
    by_url = run(None, "ls", "--json", env=both, cwd=tmp_path)
    assert [row["id"] for row in json.loads(by_url.stdout)] == ["only-here"], by_url.stderr
    by_flag = run(sample, "ls", "--json", env=both, cwd=tmp_path)
    assert sorted(row["id"] for row in json.loads(by_flag.stdout)) == sorted(IDS)
    # The copy's source defaults to the root the same way.
    target = tmp_path / "copied"
    proc = run(None, "copy", "--to", str(target), env=both, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(heads_of(target)) == ["only-here"]
    missing = run(None, "ls", env={"JOURNAL_URL": str(tmp_path / "nope")}, cwd=tmp_path)
    assert_one_line_error(missing)
    assert "JOURNAL_URL" in missing.stderr


def test_copy_progress_shows_on_a_terminal_only(sample: Path, tmp_path: Path) -> None:
    code, out, err = run_with_tty_stderr(sample, "copy", "--to", str(tmp_path / "tty"))
    assert code == 0, err
    assert "Traceback" not in err
    assert re.search(r"copy \[#+\] 5/5", err), repr(err)
    assert len(out.splitlines()) == len(IDS) + 1  # the bar never leaks into stdout
    piped = run(sample, "copy", "--to", str(tmp_path / "piped"))
    assert (piped.returncode, piped.stderr) == (0, "")
    assert piped.stdout == out.replace(str(tmp_path / "tty"), str(tmp_path / "piped"))


# A chat user's content (and whatever reaches ids, roles and actors) can carry what a terminal
# acts on: clear the screen, recolour it, set the title, ring, return the cursor, reorder text.
HOSTILE = "\x1b[2J\x1b[31mred\x1b]0;title\x07\rback\u202eevil\x9b31m\x7f"
HOSTILE_ID = "id\x1b[1m\u202e"
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "hostile"
    with Journal(root) as j:
        j.create(HOSTILE_ID, actor="act\x1b[0m")
        j.add_message(HOSTILE_ID, "ro\x1b[5mle", HOSTILE, actor="act\x1b[0m")
        j.update_settings(HOSTILE_ID, {"k\x1b[2J": "v\u202eevil\x9b31m"})
    return root


@pytest.mark.parametrize(
    "args",
    [
        ("ls",),
        ("show", HOSTILE_ID),
        ("log", HOSTILE_ID),
        ("export", HOSTILE_ID, "--format", "md"),
        ("diff", HOSTILE_ID, "1", "3"),
        ("replay", HOSTILE_ID, "--at", "3"),
        ("head", HOSTILE_ID),
    ],
    ids=" ".join,
)
def test_human_output_shows_control_characters_instead_of_acting_on_them(
    hostile: Path, args: tuple[str, ...]
) -> None:
    # Oracle: no byte of stdout is a control character a terminal acts on (tab and line feed
    # aside), and what was there is shown as its escape.
    out = ok(hostile, *args)
    assert not CONTROLS.search(out), repr(out)
    assert "\\x1b[" in out
    if args[0] not in ("ls", "head"):
        assert "\\x1b[2J" in out
        assert "\\x07" in out
        assert "\\u202e" in out


def test_json_output_keeps_control_characters_exact(hostile: Path) -> None:
    # Oracle: the library's own values; JSON escapes the characters, so the bytes are safe too.
    out = ok(hostile, "show", HOSTILE_ID, "--json")
    assert "\x1b" not in out
    doc = json.loads(out)
    assert doc["id"] == HOSTILE_ID
    assert doc["messages"][0]["content"] == HOSTILE
    assert doc["messages"][0]["role"] == "ro\x1b[5mle"


def test_tail_shows_control_characters_of_new_events(hostile: Path, tails: list[Tail]) -> None:
    tail = start_tail(hostile, tails, HOSTILE_ID)
    deadline = time.monotonic() + TIMEOUT
    seen: str | None = None
    with Journal(hostile) as j:
        while seen is None and time.monotonic() < deadline:
            j.add_message(HOSTILE_ID, "user", HOSTILE)
            seen = tail.next_line(0.3)
    assert seen is not None, "no line while the tail was running"
    assert not CONTROLS.search(seen), repr(seen)
    assert "\\x1b[2J" in seen


def test_tail_all_reports_a_damaged_session_once_and_follows_the_others(
    tmp_path: Path, tails: list[Tail]
) -> None:
    # Oracle: the damaged session is named once on stderr though every read of it fails; the
    # appends to the healthy one are all printed; the exit status says a session was damaged.
    root = tmp_path / "j"
    with Journal(root) as j:
        for sid in ("bad", "good"):
            j.create(sid)
            j.add_message(sid, "user", "first")
            j.add_message(sid, "user", "second")
    log = Layout(root).log_path("bad")
    data = bytearray(log.read_bytes())
    data[data.index(b"first")] ^= 0x20  # line 2 no longer matches its hash
    log.write_bytes(bytes(data))
    tail = start_tail(root, tails, "--all", "--count", "3")
    assert tail.proc.stderr is not None
    first = tail.proc.stderr.readline()  # written once the tail has read where everything is
    assert "bad" in first
    assert "following the others" in first
    with Journal(root) as j:
        for n in range(3):
            time.sleep(0.2)  # several polls, each of which reads the damaged session again
            j.add_message("good", "user", f"later {n}")
    remaining, stderr = finish(tail)
    assert tail.proc.returncode == 1, stderr
    later = [line for line in remaining if "later" in line]
    assert len(later) == 3, remaining
    for n, line in enumerate(later):
        assert f"later {n}" in line
    assert "bad" not in stderr, stderr  # named once, not at every poll


@pytest.mark.parametrize("command", ["show", "replay"])
def test_last_n_prints_only_the_newest_messages(sample: Path, command: str) -> None:
    # Oracle: the library's session; the human output names how many it holds in all.
    state = session_of(sample, BETA)
    assert len(state.messages) >= 3
    args = (command, BETA, *(("--at", str(state.version)) if command == "replay" else ()), "--last", "2")
    out = ok(sample, *args)
    assert f"{len(state.messages)} messages, the newest 2 shown" in out
    shown = [m for m in state.messages if f"[#{m.seq} " in out]
    assert shown == list(state.messages[-2:])
    doc = json_of(sample, *args)
    assert [m["id"] for m in doc["messages"]] == [m.id for m in state.messages[-2:]]
    assert doc["message_count"] == len(state.messages)
    assert "message_count" not in json_of(sample, command, BETA, *args[2:-2])
