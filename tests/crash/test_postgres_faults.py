"""Faults between a Journal and its PostgreSQL server, on real connections to a real server.

The Journal talks to the server through ``Proxy``, a small threaded TCP forwarder written here,
so a test can cut one connection at a chosen byte or protocol message: before the client's
``COMMIT`` reaches the server, right after it did, before its reply comes back, or once the
client heard it. ``pg_terminate_backend`` from another connection kills the writer's server
process at the same moments (the proxy holds the stream still while it happens).

The promise under test is the module docstring of ``journal.pgstore``: an append that returned
is stored exactly once; one that raised is stored at most once; the next append continues at
the right seq; nothing is ever stored twice; ``verify`` stays clean.

A server restart (``pg_ctlcluster <version> main restart``, as root) ends every connection of
every client of the server, so that test runs only when ``JOURNAL_TEST_PG_RESTART=1`` is set.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import NamedTuple, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from journal import ConflictError, Journal, MessageAdded, StorageError
from journal.core.state import Message

CTX = multiprocessing.get_context("spawn")
# Only turn a hang into a failure; never a speed assertion.
JOIN_TIMEOUT = 60.0
HIDDEN = "hunter2-not-shown"  # a password put in URLs, never to be shown

# Byte patterns of the wire protocol. psycopg sends COMMIT as an extended-protocol Parse whose
# query text is b"COMMIT\0"; the server answers with CommandComplete: b"C", int32 length 11, tag.
COMMIT_QUERY = b"COMMIT\x00"
COMMIT_REPLY = b"C\x00\x00\x00\x0bCOMMIT\x00"
# A warm append (the cache is current) is one autocommit statement, with no BEGIN or COMMIT: its
# text (in the Parse message), the Sync ending the request, the statement's CommandComplete,
# and the ReadyForQuery that ends the reply.
APPEND_QUERY = b"UPDATE journal_sessions SET last_seq"
SYNC = b"S\x00\x00\x00\x04"
APPEND_REPLY = b"C\x00\x00\x00\x0dSELECT 1\x00"
READY = b"Z\x00\x00\x00\x05"


# -- the proxy ----------------------------------------------------------------------------


class Rule(NamedTuple):
    """Where to cut the next connection that gets there (one cut per arming).

    ``direction`` is "up" (client to server) or "down". With a ``pattern`` the cut falls ``at``
    bytes from its start (searched only after ``after``, if given); without one, ``at`` bytes
    after arming. ``hold`` stops the stream there until ``Proxy.release`` instead of cutting.
    """

    direction: str
    pattern: bytes | None = None
    at: int = 0
    after: bytes | None = None
    hold: bool = False


class Link:
    """One client connection and its connection to the server."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = False
        self.epoch = -1
        self.seen = {"up": bytearray(), "down": bytearray()}

    def cut(self) -> None:
        """Drop the client's side; the server gets a FIN after what it was already sent.

        A half-close rather than a reset: a reset could discard bytes already delivered to the
        server's socket, and "COMMIT forwarded, then the client vanished" must mean the server
        does read that COMMIT.
        """
        self.dead = True
        for sock, how in ((self.client, socket.SHUT_RDWR), (self.upstream, socket.SHUT_WR)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


class Proxy:
    """A TCP forwarder to ``host:port`` on a free local port; see ``Rule``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.guard = threading.Lock()
        self.rule: Rule | None = None
        self.epoch = 0
        self.counted = {"up": 0, "down": 0}
        self.fired = threading.Event()
        self.resumed = threading.Event()
        self.forward_rest = True
        self.held: Link | None = None
        self.links: list[Link] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def arm(self, rule: Rule | None) -> None:
        """Cut (or hold) where ``rule`` says; byte counts start now, for every connection."""
        with self.guard:
            self.epoch += 1
            self.rule = rule
            self.counted = {"up": 0, "down": 0}
            self.fired.clear()
            self.resumed.clear()

    def release(self, forward_rest: bool) -> None:
        """Let a held stream go on, forwarding the held bytes or dropping them."""
        self.forward_rest = forward_rest
        self.resumed.set()

    def close(self) -> None:
        # shutdown, not only close: close would leave the accept() in progress listening.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.resumed.set()
        with self.guard:
            links = list(self.links)
        for link in links:
            link.cut()
        for thread in self.threads:
            thread.join(JOIN_TIMEOUT)
        for link in links:
            link.client.close()
            link.upstream.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            link = Link(client, upstream)
            with self.guard:
                self.links.append(link)
                for direction in ("up", "down"):
                    thread = threading.Thread(target=self._pump, args=(link, direction), daemon=True)
                    self.threads.append(thread)
                    thread.start()

    def _where(self, link: Link, direction: str, data: bytes) -> tuple[int, Rule] | None:
        """Where in ``data`` the armed rule cuts, if it does."""
        with self.guard:
            if link.epoch != self.epoch:
                link.epoch = self.epoch
                link.seen = {"up": bytearray(), "down": bytearray()}
            seen = link.seen[direction]
            before = len(seen)
            seen += data
            self.counted[direction] += len(data)
            rule = self.rule
            if rule is None or rule.direction != direction:
                return None
            start = 0
            if rule.after is not None:
                found = seen.find(rule.after)
                if found < 0:
                    return None
                start = found + len(rule.after)
            if rule.pattern is None:
                where = rule.at
            else:
                found = seen.find(rule.pattern, start)
                if found < 0:
                    return None
                where = found + rule.at
            if where > len(seen):
                return None
            self.rule = None
            return max(where - before, 0), rule

    def _pump(self, link: Link, direction: str) -> None:
        src, dst = (link.client, link.upstream) if direction == "up" else (link.upstream, link.client)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if link.dead:
                    continue  # drain the server's last words so it sees an orderly close
                hit = self._where(link, direction, data)
                if hit is None:
                    dst.sendall(data)
                    continue
                cut, rule = hit
                dst.sendall(data[:cut])
                if not rule.hold:
                    link.cut()
                    continue
                self.held = link
                self.fired.set()
                self.resumed.wait(JOIN_TIMEOUT)
                if self.forward_rest:
                    dst.sendall(data[cut:])
        except OSError:
            pass  # the other side is gone: that is what this proxy is for
        finally:
            link.cut()


def proxied(url: str, port: int, password: str | None = None) -> str:
    """``url`` pointed at the proxy on ``port`` (with ``password`` in it, if given)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    auth = user if password is None else f"{user}:{password}"
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{port}"))


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def terminate(admin_url: str, link: Link) -> None:
    """pg_terminate_backend on the server process behind ``link``, from another connection."""
    port = link.upstream.getsockname()[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = %s", [port]
        ).fetchone()
    assert row is not None, f"no backend behind proxy port {port}"
    assert row[0], f"could not terminate the backend behind proxy port {port}"


# -- the oracle ---------------------------------------------------------------------------


class Ledger:
    """What the test asked for and what it was told, per message content."""

    def __init__(self) -> None:
        self.returned: dict[str, int] = {}  # content -> seq the append returned
        self.raised: dict[str, BaseException] = {}

    def append(self, journal: Journal, sid: str, content: str) -> Message | BaseException:
        try:
            message = journal.add_message(sid, "user", content)
        except Exception as exc:
            self.raised[content] = exc
            return exc
        self.returned[content] = message.seq
        return message


def check(url: str, sid: str, ledger: Ledger) -> list[str]:
    """The session's stored message contents, after asserting the promise holds for them."""
    with psycopg.connect(url, autocommit=True) as conn:
        seqs = [
            row[0]
            for row in conn.execute(
                "SELECT seq FROM journal_events WHERE session_id = %s ORDER BY seq", [sid]
            )
        ]
        last = conn.execute("SELECT last_seq FROM journal_sessions WHERE id = %s", [sid]).fetchone()
    assert seqs == list(range(1, len(seqs) + 1)), "seqs are not contiguous"
    assert last is not None
    assert last[0] == len(seqs)
    with Journal.from_url(url) as fresh:
        events = list(fresh.events(sid))
        report = fresh.verify()
    assert report.problems == ()
    contents = [e.content for e in events if isinstance(e, MessageAdded)]
    at = {e.content: e.seq for e in events if isinstance(e, MessageAdded)}
    assert len(contents) == len(set(contents)), "a message was stored twice"
    for content, seq in ledger.returned.items():
        assert at.get(content) == seq, f"{content!r} returned seq {seq}, stored at {at.get(content)}"
    assert not set(ledger.raised) & set(ledger.returned)
    return contents


@pytest.fixture
def silence_retries() -> Iterator[None]:
    # A dropped append logs a warning by design; here every test drops connections on purpose.
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def run_fault(pg_url: str, rule: Rule, *, kill: bool = False, forward_rest: bool = True, cold: bool) -> None:
    """One append cut (or its backend killed) where ``rule`` says, then the promise checked.

    ``cold``: the append comes from a Journal that has not read the session, so it catches up
    holding the session (advisory lock, transaction, COMMIT, unlock: the path of every write
    that is not a warm append); otherwise from the Journal that wrote before (one statement).
    """
    sid, ledger = "s", Ledger()
    with (
        Proxy(*target(pg_url)) as proxy,
        Journal.from_url(proxied(pg_url, proxy.port)) as journal,
        Journal.from_url(proxied(pg_url, proxy.port)) as other,
    ):
        journal.create(sid)
        ledger.append(journal, sid, "before")
        other.sessions()  # connected, the session not read
        victim = other if cold else journal
        proxy.arm(rule)
        worker = threading.Thread(target=ledger.append, args=(victim, sid, "victim"))
        worker.start()
        if kill:
            assert proxy.fired.wait(JOIN_TIMEOUT), "the append never got to the cut"
            assert proxy.held is not None
            terminate(pg_url, proxy.held)
            proxy.release(forward_rest)
        worker.join(JOIN_TIMEOUT)
        assert not worker.is_alive()
        fired = proxy.fired.is_set() or proxy.rule is None
        proxy.arm(None)
        assert fired, "the rule never fired: the test did not test anything"
        after = ledger.append(journal, sid, "after")
        assert isinstance(after, Message), f"the append after the fault failed: {after!r}"
        assert journal.get(sid).version == after.seq
    contents = check(pg_url, sid, ledger)
    assert contents[0] == "before"
    assert contents[-1] == "after"
    assert after.seq == len(contents) + 1  # + the "created" event


# Where a plain connection drop falls, relative to the append's transaction.
DROPS = {
    "up: COMMIT never sent": Rule("up", COMMIT_QUERY, at=0),
    "up: half the COMMIT message sent": Rule("up", COMMIT_QUERY, at=3),
    "up: COMMIT sent, then the client is gone": Rule("up", COMMIT_QUERY, at=len(COMMIT_QUERY)),
    "down: committed, reply lost": Rule("down", COMMIT_REPLY, at=0),
    "down: reply cut in the middle": Rule("down", COMMIT_REPLY, at=5),
    "up: reply heard, next query lost": Rule("up", b"SELECT", after=COMMIT_QUERY),
}


@pytest.mark.parametrize("rule", list(DROPS.values()), ids=list(DROPS))
def test_connection_dropped_around_commit(pg_url: str, rule: Rule, silence_retries: None) -> None:
    # Oracle: see ``check`` and ``run_fault``: exactly once if returned, at most once if
    # raised, and the next append lands at the next seq.
    run_fault(pg_url, rule, cold=True)


# The same points for a warm append: one statement, committed as it completes.
WARM_DROPS = {
    "up: statement never sent": Rule("up", APPEND_QUERY, at=0),
    "up: half the statement sent": Rule("up", APPEND_QUERY, at=3),
    "up: whole request sent, then the client is gone": Rule("up", SYNC, after=APPEND_QUERY, at=len(SYNC)),
    "down: committed, reply lost": Rule("down", APPEND_REPLY, at=0),
    "down: reply cut in the middle": Rule("down", APPEND_REPLY, at=5),
    "down: reply heard, then the connection is gone": Rule(
        "down", READY, after=APPEND_REPLY, at=len(READY) + 1
    ),
}


@pytest.mark.parametrize("rule", list(WARM_DROPS.values()), ids=list(WARM_DROPS))
def test_connection_dropped_around_a_warm_append(pg_url: str, rule: Rule, silence_retries: None) -> None:
    run_fault(pg_url, rule, cold=False)


# Where the server process is terminated: the proxy holds the stream still at the moment.
KILLS = {
    "before the COMMIT reaches the server": (Rule("up", COMMIT_QUERY, hold=True), True),
    "committed, before the reply (reply dropped)": (Rule("down", COMMIT_REPLY, hold=True), False),
    "after the client heard the COMMIT": (Rule("up", b"SELECT", after=COMMIT_QUERY, hold=True), True),
    "while taking the session lock": (Rule("up", b"pg_advisory_lock", hold=True), True),
}


@pytest.mark.parametrize(("rule", "forward_rest"), list(KILLS.values()), ids=list(KILLS))
def test_backend_terminated_around_commit(
    pg_url: str, rule: Rule, forward_rest: bool, silence_retries: None
) -> None:
    run_fault(pg_url, rule, kill=True, forward_rest=forward_rest, cold=True)


WARM_KILLS = {
    "before the statement reaches the server": (Rule("up", APPEND_QUERY, hold=True), True),
    "committed, before the reply (reply dropped)": (Rule("down", APPEND_REPLY, hold=True), False),
    "after the client heard the reply": (
        Rule("down", READY, after=APPEND_REPLY, at=len(READY) + 1, hold=True),
        True,
    ),
}


@pytest.mark.parametrize(("rule", "forward_rest"), list(WARM_KILLS.values()), ids=list(WARM_KILLS))
def test_backend_terminated_around_a_warm_append(
    pg_url: str, rule: Rule, forward_rest: bool, silence_retries: None
) -> None:
    run_fault(pg_url, rule, kill=True, forward_rest=forward_rest, cold=False)


@pytest.mark.parametrize("cold", [True, False], ids=["held", "warm"])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_connection_cut_at_every_point_of_an_append(
    pg_url: str, direction: str, cold: bool, silence_retries: None
) -> None:
    # Oracle: as above, for cuts every ~1/24 of the bytes one append exchanges in one direction.
    # Held (from a Journal whose cached view another writer moved past): the statement refused,
    # the lock, the catch-up read, the transaction and the unlock all get hit. Warm: the one
    # statement, before, during and after its commit.
    sid, ledger = "s", Ledger()
    with Proxy(*target(pg_url)) as proxy, Journal.from_url(proxied(pg_url, proxy.port)) as journal:
        journal.create(sid)

        @contextlib.contextmanager
        def writer() -> Iterator[Journal]:
            if not cold:
                yield journal
                return
            with Journal.from_url(proxied(pg_url, proxy.port)) as other:
                other.get(sid)
                # Another writer moves on: other's cached view is behind, its append must catch up.
                journal.add_message(sid, "user", f"ahead {len(ledger.returned)} {len(ledger.raised)}")
                yield other

        with writer() as measured:
            proxy.arm(None)
            ledger.append(measured, sid, "measure")
            total = proxy.counted[direction]
        points = sorted({*range(0, total, max(total // 24, 1)), total - 1})
        for n, point in enumerate(points):
            with writer() as victim:
                proxy.arm(Rule(direction, at=point))
                ledger.append(victim, sid, f"victim {n} at byte {point}")
                proxy.arm(None)
            follow = ledger.append(journal, sid, f"follow {n}")
            assert isinstance(follow, Message), f"append after a cut at byte {point} failed: {follow!r}"
            assert journal.get(sid).version == follow.seq
    contents = check(pg_url, sid, ledger)
    assert [c for c in contents if c.startswith("follow")] == [f"follow {n}" for n in range(len(points))]
    # Not an assertion on which way each cut went (that depends on timing), but the sweep must
    # have hit both outcomes to have tested anything. A warm append is one statement, and a
    # single cut of it is always settled (found stored, or made again): every one returns.
    if cold:
        assert ledger.raised
    else:
        assert not ledger.raised
    assert len(ledger.returned) > len(points) + 1


# -- defects found here, fixed: regression tests -----------------------------------------


def test_a_failed_append_raises_storage_error(pg_url: str, silence_retries: None) -> None:
    # A writer that has not read the session catches up holding it: cut while it takes the lock.
    with (
        Proxy(*target(pg_url)) as proxy,
        Journal.from_url(proxied(pg_url, proxy.port)) as journal,
        Journal.from_url(proxied(pg_url, proxy.port)) as cold,
    ):
        journal.create("s")
        cold.sessions()
        proxy.arm(Rule("up", b"pg_advisory_lock"))
        with pytest.raises(StorageError):
            cold.add_message("s", "user", "victim")
        assert proxy.rule is None


@pytest.mark.parametrize(
    ("rule", "cold"),
    [
        (Rule("up", b"SELECT", after=COMMIT_QUERY), True),
        (Rule("down", READY, after=APPEND_REPLY, at=len(READY) + 1), False),
    ],
    ids=["held: the next query lost", "warm: the connection lost after the reply"],
)
def test_an_append_whose_commit_was_acknowledged_returns(
    pg_url: str, rule: Rule, cold: bool, silence_retries: None
) -> None:
    with (
        Proxy(*target(pg_url)) as proxy,
        Journal.from_url(proxied(pg_url, proxy.port)) as journal,
        Journal.from_url(proxied(pg_url, proxy.port)) as other,
    ):
        journal.create("s")
        other.sessions()
        proxy.arm(rule)
        message = (other if cold else journal).add_message("s", "user", "victim")
        assert message.seq == 2
        assert proxy.rule is None  # the cut happened


# -- the server unreachable -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def within(seconds: float, fn: object) -> BaseException | None:
    """Run ``fn`` in a thread; its exception, or a failure if it takes longer than ``seconds``.

    The bound only separates "gives up after connect_timeout" from "waits for a pool's 30 s or
    forever": it is several times the timeout asked for.
    """
    assert callable(fn)
    caught: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    return caught[0] if caught else None


def shown_everywhere(journal: Journal, error: BaseException) -> str:
    """Everything a user could see: repr, root, the error and its whole traceback."""
    return "\n".join(
        [
            repr(journal),
            str(journal.root),
            str(error),
            repr(error),
            repr(error.args),
            *traceback.format_exception(type(error), error, error.__traceback__),
        ]
    )


def test_unreachable_server_raises_storage_error_naming_the_url_without_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there: connection refused
    caplog.set_level(logging.DEBUG)
    journal = Journal.from_url(f"postgresql://app:{HIDDEN}@127.0.0.1:{port}/chat")
    try:
        error = within(15, lambda: journal.create("s"))
        assert isinstance(error, StorageError), repr(error)
        assert f"postgresql://app:***@127.0.0.1:{port}/chat" in str(error)
        assert "refused" in str(error)
        assert HIDDEN not in shown_everywhere(journal, error)
        assert HIDDEN not in caplog.text
    finally:
        journal.close()


def test_password_in_url_never_shown_through_faults(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # The server trusts local connections, so a URL with any password connects: every log
    # record and error of a faulty run must still keep it out of sight.
    caplog.set_level(logging.DEBUG)
    with Proxy(*target(pg_url)) as proxy:
        url = proxied(pg_url, proxy.port, HIDDEN)
        with Journal.from_url(url) as journal:
            assert HIDDEN not in repr(journal) + journal.root
            journal.create("s")
            proxy.arm(Rule("up", APPEND_QUERY))
            journal.add_message("s", "user", "victim")  # retried after the cut
            proxy.arm(Rule("down", READY, after=APPEND_REPLY, at=len(READY) + 1))
            outcome = Ledger().append(journal, "s", "victim 2")
            if isinstance(outcome, BaseException):
                assert HIDDEN not in shown_everywhere(journal, outcome)
        proxy.close()
        unreachable = Journal.from_url(url)
        try:
            error = within(15, lambda: unreachable.create("t"))
        finally:
            unreachable.close()
        assert isinstance(error, StorageError)
        assert HIDDEN not in shown_everywhere(unreachable, error)
    assert "connection lost during an append" in caplog.text  # the faults did happen
    assert HIDDEN not in caplog.text


def test_connect_timeout_in_the_url_is_honoured() -> None:
    # A listener that never accepts: the TCP handshake completes, the server never speaks.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        journal = Journal.from_url(f"postgresql://app@127.0.0.1:{port}/chat?connect_timeout=1")
        try:
            error = within(6, lambda: journal.create("s"))
        finally:
            journal.close()
    assert isinstance(error, StorageError)


# -- contention across processes ------------------------------------------------------------

VERSIONS = 40  # appends the processes race for


def conflict_worker(url: str, who: str, barrier: Barrier, results: Queue[object]) -> None:
    """Append with expected_version until the session reaches VERSIONS messages.

    Reports ([expected versions it won], conflicts seen, unexpected errors as text).
    """
    won: list[int] = []
    conflicts, errors = 0, []
    with Journal.from_url(url) as journal:
        journal.get_or_create("s")
        barrier.wait(JOIN_TIMEOUT)
        while True:
            version = journal.get("s").version
            if version > VERSIONS:
                break
            try:
                message = journal.add_message("s", "user", f"{who}@{version}", expected_version=version)
            except ConflictError:
                conflicts += 1
                continue
            except Exception as exc:
                errors.append(repr(exc))
                break
            if message.seq != version + 1:
                errors.append(f"won version {version} but got seq {message.seq}")
            won.append(version)
    results.put((who, won, conflicts, errors))


def test_expected_version_under_contention_one_winner_per_version(
    pg_url: str, spawned: list[BaseProcess]
) -> None:
    # Oracle: each version is won by exactly one process (no two successful appends expected
    # the same version, none is missing); the stored message at seq v + 1 is the winner's
    # "<who>@<v>"; seqs are contiguous; every other attempt raised ConflictError.
    with Journal.from_url(pg_url) as journal:
        journal.create("s")
    processes = 4
    barrier = CTX.Barrier(processes)
    results: Queue[object] = CTX.Queue()
    for p in range(processes):
        process = CTX.Process(target=conflict_worker, args=(pg_url, f"p{p}", barrier, results))
        process.start()
        spawned.append(process)
    reports = [results.get(timeout=JOIN_TIMEOUT) for _ in range(processes)]
    for child in spawned:
        child.join(JOIN_TIMEOUT)
        assert child.exitcode == 0
    winners: dict[int, str] = {}
    for report in reports:
        who, won, _conflicts, errors = cast("tuple[str, list[int], int, list[str]]", report)
        assert errors == [], errors
        for version in won:
            assert version not in winners, f"version {version} won by {winners[version]} and {who}"
            winners[version] = who
    assert sorted(winners) == list(range(1, VERSIONS + 1))
    ledger = Ledger()
    contents = check(pg_url, "s", ledger)
    assert contents == [f"{winners[v]}@{v}" for v in range(1, VERSIONS + 1)]


# -- a server restart (opt-in) --------------------------------------------------------------


def pg_cluster() -> tuple[str, str] | None:
    """(version, name) of the local cluster on port 5432, if pg_lsclusters knows it."""
    command = shutil.which("pg_lsclusters")
    if command is None:
        return None
    out = subprocess.run([command, "--no-header"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "5432":
            return fields[0], fields[1]
    return None


@pytest.mark.skipif(
    os.environ.get("JOURNAL_TEST_PG_RESTART") != "1",
    reason="restarts the local PostgreSQL server (ends every client's connections): "
    "set JOURNAL_TEST_PG_RESTART=1 to run",
)
def test_server_restart_while_appending(pg_url: str, silence_retries: None) -> None:
    # Oracle: a writer appends throughout a fast restart; appends that returned are stored
    # exactly once, those that raised (StorageError only) at most once, and once the server is
    # back the same Journal appends again at the next seq without being reopened.
    cluster, control = pg_cluster(), shutil.which("pg_ctlcluster")
    if cluster is None or control is None or os.geteuid() != 0 or target(pg_url) != ("127.0.0.1", 5432):
        pytest.skip("needs root and the local pg_ctlcluster-managed server at 127.0.0.1:5432")
    ledger, stop = Ledger(), threading.Event()
    with Journal.from_url(pg_url) as journal:
        journal.create("s")

        def write() -> None:
            n = 0
            while not stop.is_set():
                ledger.append(journal, "s", f"m{n}")
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            time.sleep(0.3)
            subprocess.run([control, *cluster, "restart", "-m", "fast"], check=True, timeout=60)
            time.sleep(0.3)
        finally:
            stop.set()
            writer.join(JOIN_TIMEOUT)
        assert all(isinstance(e, StorageError) for e in ledger.raised.values()), ledger.raised
        after = ledger.append(journal, "s", "after")
        assert isinstance(after, Message), repr(after)
    contents = check(pg_url, "s", ledger)
    assert contents[-1] == "after"
    assert after.seq == len(contents) + 1
