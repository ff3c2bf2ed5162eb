"""The distribution is `chat-journal` (the name `journal` on the package index is another
project's): what pyproject declares, what installs, and what every install line names."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import journal

ROOT = Path(__file__).resolve().parents[1]
# Every place a user reads an install command: the docs, the README, and the package's own
# messages (errors naming an extra, module docstrings).
READ_BY_USERS = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("journal/**/*.py")]


def test_pyproject_declares_chat_journal() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^name = "chat-journal"$', text, re.MULTILINE)


def test_the_installed_distribution_provides_the_journal_package() -> None:
    dist = importlib.metadata.distribution("chat-journal")
    assert dist.version == journal.__version__
    assert dist.entry_points.select(group="console_scripts", name="journal")


def test_no_install_line_names_the_other_projects_package() -> None:
    wrong = re.compile(r"""pip install\s+(?:-e\s+)?["']?journal(?:\[|["'\s]|$)""", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in READ_BY_USERS if wrong.search(p.read_text("utf-8"))]
    assert offenders == []
    extras = [p for p in READ_BY_USERS if "chat-journal[" in p.read_text("utf-8")]
    assert len(extras) >= 5  # the extras are named, and named right, where users look
