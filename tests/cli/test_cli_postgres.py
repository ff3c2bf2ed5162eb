"""The ``journal`` command on PostgreSQL roots, driven as a person or a script drives it.

As in ``test_cli``, every test runs the installed console script in a subprocess. Each gets a
fresh schema (the ``pg_url`` fixture: skipped without a server, failed where PostgreSQL is
required). The oracles are the library's own answers about the same sessions, and, for
``copy``, the exact stored bytes of each session (``export_session``: retention base and every
line), which must be equal in the source, in PostgreSQL and in the folder copied back.

The tests of an unreachable server need no server: they name a port nothing listens on.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from journal import Anchor, Journal
from tests.cli.test_cli import (
    ALPHA,
    BETA,
    GAMMA,
    IDS,
    TIMEOUT,
    Tail,
    assert_event_doc,
    assert_one_line_error,
    assert_session_doc,
    build_sample,
    events_of,
    finish,
    json_of,
    jsonl_of,
    ok,
    run,
    session_of,
    start_tail,
    tail_processes,
)

PLAIN, SNAPSHOTTED, PRUNED, REDACTED = "plain", "snapshotted", "pruned", "redacted"
SECRET = "s3cret-pw"  # noqa: S105 (made up, to check that no message prints it)
UNREACHABLE = f"postgresql://postgres:{SECRET}@127.0.0.1:1/journal"


def raw(root: str | Path) -> dict[str, tuple[bytes | None, list[bytes]]]:
    """Every session's stored bytes: its retention base and its lines, oldest first."""
    with Journal.from_url(root) as j:
        return {sid: j.export_session(sid) for sid in j.sessions()}


def heads(root: str | Path) -> dict[str, Anchor]:
    with Journal.from_url(root) as j:
        return {sid: j.head(sid) for sid in j.sessions()}


def build_varied(root: Path) -> None:
    """Sessions in every shape a copy must carry: snapshotted, archived, erased, plain."""
    build_sample(root)
    with Journal(root) as j:
        j.create(PLAIN)
        j.add_message(PLAIN, "user", "one")
        j.create(SNAPSHOTTED)
        for i in range(12):
            j.add_message(SNAPSHOTTED, "user", f"s{i}")
        j.create(PRUNED)
        for i in range(10):
            j.add_message(PRUNED, "user", f"p{i}")
        j.create(REDACTED)
        secret = j.add_message(REDACTED, "user", "my card is 4111")
        j.add_message(REDACTED, "assistant", "noted")
    with Journal(root) as j:
        j.compact(SNAPSHOTTED)
        j.compact(PRUNED, prune=True)
        j.add_message(PRUNED, "user", "after the prune")
        j.redact_message(REDACTED, secret.id, reason="erasure request", actor="dpo")


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    with tail_processes() as started:
        yield started


@pytest.fixture
def varied(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    build_varied(root)
    return root


@pytest.fixture
def filled(pg_url: str, varied: Path) -> str:
    """The varied sessions copied into a fresh schema."""
    ok(None, "copy", "--from", str(varied), "--to", pg_url)
    return pg_url


# --- copy ------------------------------------------------------------------------------------


def test_copy_files_to_postgres_and_back_keeps_every_byte(varied: Path, pg_url: str, tmp_path: Path) -> None:
    source = raw(varied)
    assert {PLAIN, SNAPSHOTTED, PRUNED, REDACTED} <= set(source)
    assert any(base is not None or len(lines) > 1 for base, lines in source.values())

    into = ok(None, "copy", "--from", str(varied), "--to", pg_url).splitlines()
    source_heads = heads(varied)
    for line, (sid, head) in zip(into, source_heads.items(), strict=False):
        events = len(source[sid][1])
        assert line == f"{sid}: copied {events} events, verified at seq {head.seq} hash {head.hash}"
    assert into[-1].startswith(f"copied {len(source)} of {len(source)} sessions")
    assert SECRET not in into[-1]
    assert "postgresql://postgres@127.0.0.1" in into[-1]
    assert raw(pg_url) == source

    back = tmp_path / "back"
    doc = json.loads(ok(None, "copy", "--from", pg_url, "--to", str(back), "--json"))
    assert (doc["ok"], doc["copied"], doc["skipped"], doc["failed"]) == (True, len(source), 0, 0)
    assert {e["session_id"]: msgspec.convert(e["head"], Anchor) for e in doc["sessions"]} == source_heads
    assert raw(back) == source
    assert heads(back) == heads(pg_url) == source_heads

    # Each copy reads like the original, and the erased content stayed erased.
    for root in (pg_url, str(back)):
        assert json_of(root, "verify")["ok"] is True
        for sid in source:
            assert jsonl_of(root, "log", sid) == jsonl_of(varied, "log", sid)
        assert "4111" not in ok(root, "export", REDACTED, "--format", "jsonl")


def test_copy_into_postgres_skips_a_session_it_has_and_exits_1(varied: Path, pg_url: str) -> None:
    with Journal.from_url(pg_url) as j:
        j.create(PLAIN)
        j.add_message(PLAIN, "user", "the database's own")
    before = raw(pg_url)[PLAIN]
    proc = run(None, "copy", "--from", str(varied), "--to", pg_url, PLAIN, BETA)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{PLAIN}: skipped: exists in the target"
    assert lines[1].startswith(f"{BETA}: copied ")
    assert lines[2].startswith("copied 1 of 2 sessions")
    assert lines[2].endswith(", 1 skipped")
    assert raw(pg_url)[PLAIN] == before  # never merged or overwritten
    assert raw(pg_url)[BETA] == raw(varied)[BETA]


def test_copy_between_two_schemas(filled: str, pg_url: str) -> None:
    from tests.pg import fresh_schema, need_server

    with fresh_schema(need_server()) as other:
        ok(None, "copy", "--from", filled, "--to", other)
        assert raw(other) == raw(filled)
        same = run(None, "copy", "--from", filled, "--to", filled)
        assert_one_line_error(same)


# --- reading and operating a PostgreSQL root ----------------------------------------------------


def test_verify_show_log_and_friends_on_a_postgres_root(filled: str) -> None:
    verify = ok(filled, "verify")
    assert verify.startswith(f"checked {len(IDS) + 4} sessions"), verify
    assert verify.rstrip().endswith(": ok")
    with Journal.from_url(filled) as j:
        for sid in (ALPHA, GAMMA, PRUNED, REDACTED):
            assert_session_doc(json_of(filled, "show", sid), j.get(sid))
            docs = jsonl_of(filled, "log", sid)
            events = list(j.events(sid))
            assert len(docs) == len(events)
            for doc, event in zip(docs, events, strict=True):
                assert_event_doc(doc, event)
            assert json_of(filled, "head", sid) == msgspec.to_builtins(j.head(sid))
        assert_session_doc(json_of(filled, "replay", ALPHA, "--at", "4"), j.replay(ALPHA, at=4))
    assert "[content erased by #" in ok(filled, "log", REDACTED)
    assert sorted(row["id"] for row in json_of(filled, "ls")) == sorted(heads(filled))
    assert json_of(filled, "diff", ALPHA, "1", "4")["to_version"] == 4
    stats = json_of(filled, "stats")
    assert (stats["sessions"], stats["bytes"]) == (len(IDS) + 4, None)
    assert ok(filled, "repair", ALPHA).startswith(f"{ALPHA}: nothing to repair")
    compacted = jsonl_of(filled, "compact", BETA, "--prune")
    assert compacted[0]["session_id"] == BETA
    assert json_of(filled, "verify", "--anchors", "/dev/null")["ok"] is True
    assert_one_line_error(run(filled, "show", "nope"))


def test_journal_url_names_a_postgres_root(filled: str, tmp_path: Path) -> None:
    env = {"JOURNAL_URL": filled, "JOURNAL_ROOT": str(tmp_path)}
    proc = run(None, "ls", "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(row["id"] for row in json.loads(proc.stdout)) == sorted(heads(filled))


# --- an unreachable server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--root", UNREACHABLE, "ls"),
        ("--root", UNREACHABLE, "show", ALPHA),
        ("--root", UNREACHABLE, "verify"),
        ("--root", UNREACHABLE, "tail", ALPHA, "--count", "1"),
        ("--root", UNREACHABLE, "tail", "--all"),
        ("copy", "--from", UNREACHABLE, "--to", "{tmp}/copy"),
        ("copy", "--from", "{tmp}/source", "--to", UNREACHABLE),
    ],
    ids=lambda a: " ".join(x for x in a if x != UNREACHABLE).replace("{tmp}/", ""),
)
def test_an_unreachable_server_is_one_line_without_the_password(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    build_sample(tmp_path / "source")
    proc = run(None, *(a.format(tmp=tmp_path) for a in args), timeout=60)
    # Exit 1 (a storage error) where the driver is installed; 2 (what to install) otherwise.
    assert_one_line_error(proc, 1 if importlib.util.find_spec("psycopg") else 2)
    assert SECRET not in proc.stderr
    assert "127.0.0.1:1" in proc.stderr or "psycopg" in proc.stderr
    assert not (tmp_path / "copy").exists()


# --- tail -----------------------------------------------------------------------------------------


def test_tail_follows_appends_by_notification(filled: str, tails: list[Tail]) -> None:
    # An hour between timed reads: the lines can only arrive in time through LISTEN/NOTIFY.
    start = session_of(filled, BETA).version
    tail = start_tail(filled, tails, BETA, "--json", "--count", "3", interval="3600")
    deadline = time.monotonic() + TIMEOUT
    with Journal.from_url(filled) as j:
        i = 0
        while tail.proc.poll() is None and time.monotonic() < deadline:
            j.add_message(BETA, "user", f"notified {i}")
            i += 1
            time.sleep(0.2)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    docs = [json.loads(line) for line in lines]
    seqs = [d["seq"] for d in docs]
    # Appends made before the tail was listening are not its to print: only consecutive seqs.
    assert seqs[0] > start, docs
    assert seqs == list(range(seqs[0], seqs[0] + 3)), docs
    events = events_of(filled, BETA)
    for doc in docs:
        assert_event_doc(doc, events[doc["seq"] - 1])


def test_tail_n_prints_the_newest_events_then_follows(filled: str, tails: list[Tail]) -> None:
    # PRUNED keeps most of its history in the archive: the newest events come from both parts.
    events = events_of(filled, PRUNED)
    tail = start_tail(filled, tails, PRUNED, "-n", "3", "--json", "--count", "1", interval="3600")
    history: list[Any] = []
    while len(history) < 3 and (line := tail.next_line(TIMEOUT)) is not None:
        history.append(json.loads(line))
    for doc, event in zip(history, events[-3:], strict=True):
        assert_event_doc(doc, event)
    deadline = time.monotonic() + TIMEOUT
    with Journal.from_url(filled) as j:
        while tail.proc.poll() is None and time.monotonic() < deadline:
            j.add_message(PRUNED, "user", "after the history")
            time.sleep(0.2)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    assert [json.loads(line)["seq"] for line in lines] == [len(events) + 1]


def test_tail_all_follows_new_sessions_by_notification(filled: str, tails: list[Tail]) -> None:
    tail = start_tail(filled, tails, "--all", "--count", "2", interval="3600")
    deadline = time.monotonic() + TIMEOUT
    with Journal.from_url(filled) as j:
        n = 0
        while tail.proc.poll() is None and time.monotonic() < deadline:
            j.create(f"late-{n}")
            j.add_message(f"late-{n}", "user", f"hello from late-{n}")
            n += 1
            time.sleep(0.2)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    assert len(lines) == 2, lines
    # Sessions created after the tail started (the first may have been created just before it
    # listened: then its later events are printed, not its creation).
    for line in lines:
        sid = line.split(" ", 1)[0]
        assert sid.startswith("late-"), lines
        assert " created" in line or line.rstrip().endswith(f"hello from {sid}"), lines
    assert any(" created" in line for line in lines), lines


def test_tail_reads_on_its_timer_what_no_notification_announced(
    filled: str, tails: list[Tail], tmp_path: Path
) -> None:
    # A copy stores a whole session in one transaction without notifying, like a notification
    # lost on the way: the timed catch-up read must still find every event.
    other = tmp_path / "other"
    with Journal(other) as j:
        j.create("copied-in")
        for i in range(3):
            j.add_message("copied-in", "user", f"c{i}")
    tail = start_tail(filled, tails, "--all", "--json", "--count", "4", interval="0.2")
    time.sleep(0.5)  # let it start listening and read once; the test holds without this too
    ok(None, "copy", "--from", str(other), "--to", filled)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    docs = [json.loads(line) for line in lines]
    assert [(d["session_id"], d["seq"]) for d in docs] == [("copied-in", s) for s in (1, 2, 3, 4)]


def test_tail_survives_losing_its_listening_connection(filled: str, tails: list[Tail]) -> None:
    import psycopg

    # A name of its own, so that only this tail's listening connection is ended.
    name = f"tail-{uuid.uuid4().hex[:12]}"
    url = f"{filled}&application_name={name}"
    tail = start_tail(url, tails, ALPHA, "--count", "2", interval="0.2")
    deadline = time.monotonic() + TIMEOUT
    ended = 0
    with psycopg.connect(filled, autocommit=True) as admin:
        while not ended and time.monotonic() < deadline:
            row: Any = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s AND query = 'LISTEN journal'",
                [name],
            ).fetchone()
            ended = row[0]
            time.sleep(0.1)
    assert ended, "the tail never listened"
    with Journal.from_url(filled) as j:
        while tail.proc.poll() is None and time.monotonic() < deadline:
            j.add_message(ALPHA, "user", "after the reconnect")
            time.sleep(0.2)
    lines, err = finish(tail)
    assert tail.proc.returncode == 0, err
    assert "Traceback" not in err
    assert len(lines) == 2, (lines, err)
    assert all("after the reconnect" in line for line in lines), (lines, err)
    assert "(listening again)" in err, err
