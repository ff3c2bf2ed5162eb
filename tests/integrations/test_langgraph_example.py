"""The LangGraph example (``examples/langgraph_chat``): the tour, then another process resuming.

The example is imported by name (the repository root is put on ``sys.path``), as its README
says to run it from the root.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph.graph", reason="langgraph is installed by the dev extra")

from journal import Journal

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def test_the_tour_then_another_process_resumes_the_thread(tmp_path: Path) -> None:
    example = importlib.import_module("examples.langgraph_chat")
    said: list[str] = []
    final = example.tour(str(tmp_path), "t-1", said.append)
    # The fork rewrote the first message and went on from there.
    assert final == ["Hi, I am Cy.", "Hello Ada.", "What is my name?", "You told me: Cy."]
    assert "time travel to the end of the first turn:" in said

    done = subprocess.run(
        [sys.executable, "-m", "examples.langgraph_chat", str(tmp_path), "--thread", "t-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "resumed:\n  human: Hi, I am Cy." in out
    assert "  ai: Still here." in out
    assert "checked 1 session" in out
    assert out.rstrip().endswith("ok")
    with Journal(tmp_path) as journal:
        shown = [(m.role, m.content) for m in journal.get("t-1").messages]
        assert shown[-2:] == [("user", "Are you still there?"), ("assistant", "Still here.")]
        assert journal.verify().ok
