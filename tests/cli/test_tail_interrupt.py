"""Ctrl-C ends ``journal tail`` between reads, never inside one.

A KeyboardInterrupt raised in the middle of a read can land between a lock's acquire and the
block that releases it, and closing the journal then waits for that lock forever: a tail that
ignores Ctrl-C. The race window is too narrow to hit on demand, so the mechanism is checked
directly, and real tails are interrupted at random moments while a writer keeps them busy.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from journal import Journal
from journal.cli.tail import _Interrupt


def test_sigint_during_a_read_is_noted_and_raised_at_the_next_wait() -> None:
    interrupt = _Interrupt()
    interrupt(signal.SIGINT, None)  # during a read: nothing is raised there
    assert interrupt.requested
    entered = []
    with pytest.raises(KeyboardInterrupt), interrupt.waiting():
        entered.append(True)  # pragma: no cover - the wait must not start once Ctrl-C was pressed
    assert entered == []


def test_sigint_during_a_wait_raises_at_once() -> None:
    interrupt = _Interrupt()
    seen_safe: list[bool] = []

    def wait_and_press() -> None:
        with interrupt.waiting():
            seen_safe.append(interrupt.safe)
            interrupt(signal.SIGINT, None)
            seen_safe.append(False)  # not reached

    with pytest.raises(KeyboardInterrupt):
        wait_and_press()
    assert seen_safe == [True]
    assert not interrupt.safe


def test_a_busy_tail_stops_on_sigint_at_any_moment(tmp_path: Path) -> None:
    root = tmp_path / "data"
    stop = threading.Event()
    with Journal(root, fsync="never") as j:
        j.create("busy")

        def write() -> None:
            i = 0
            while not stop.is_set():
                j.add_message("busy", "user", f"message {i}")
                i += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(6):
                tail = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "journal.cli",
                        "--root",
                        str(root),
                        "tail",
                        "busy",
                        "--interval",
                        "0.01",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                time.sleep(random.uniform(0.4, 0.9))
                assert tail.poll() is None, tail.communicate()[1]
                tail.send_signal(signal.SIGINT)
                try:
                    _, err = tail.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    tail.kill()
                    raise AssertionError("the tail ignored Ctrl-C") from None
                assert tail.returncode == 0, err
                assert "Traceback" not in err
        finally:
            stop.set()
            writer.join()
