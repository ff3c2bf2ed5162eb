"""``journal serve`` as a user runs it: a process that listens, answers, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx

from journal import Journal
from tests.web.helpers import CHAT


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_listens_on_loopback_and_stops_on_ctrl_c(store: Journal) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "journal.cli", "serve", store.root, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/sessions", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "journal serve did not start"
                time.sleep(0.1)
        assert CHAT in [row["id"] for row in answer.json()["sessions"]]
        assert answer.headers["x-frame-options"] == "DENY"
        assert "server" not in answer.headers
        # No token on loopback: only this machine's names are answered (DNS rebinding).
        rebound = httpx.get(f"http://127.0.0.1:{port}/", headers={"host": f"evil.example:{port}"}, timeout=2)
        assert rebound.status_code == 421
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"serving {store.root} at http://127.0.0.1:{port}/" in out
