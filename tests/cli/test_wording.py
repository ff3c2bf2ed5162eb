"""Counts in the CLI's human output read as English: 1 problem, 2 problems, 1 session."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal import Journal
from journal.cli import main
from journal.cli.render import counted


@pytest.mark.parametrize(("n", "text"), [(0, "0 events"), (1, "1 event"), (2, "2 events")])
def test_counted(n: int, text: str) -> None:
    assert counted(n, "event") == text


def test_verify_and_compact_count_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    with Journal(root) as j:
        j.create("s")
    assert main(["--root", str(root), "verify"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "checked 1 session, 1 event: ok"
    log = next(root.glob("sessions/*/events.jsonl"))
    log.write_bytes(log.read_bytes().replace(b'"created"', b'"creAted"'))
    assert main(["--root", str(root), "verify"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "checked 1 session, 1 event: 1 problem"
    other = tmp_path / "other"
    with Journal(other) as j:
        j.create("s")
    assert main(["--root", str(other), "compact"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "compacted 1 session: 0 events archived, 0 dropped"
