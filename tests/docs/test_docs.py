"""Every Python and shell block of ``README.md`` and ``docs/*.md`` runs, so the docs cannot drift.

A page's blocks run in order, as a reader would type them: Python blocks share one namespace
(a later block uses what an earlier one defined), shell blocks run with ``bash -euo pipefail``
(with this environment's ``journal`` first on PATH), all in one fresh folder per page. A block
fails the page's test with its location in the page. Blocks in other languages (``text``,
``json``, ``jsonl``) are output or formats, not commands, and are only parsed where a test
elsewhere checks them.

A block that cannot run here says why in a comment on the line before it,
``<!-- docs-test: skip: follows forever (Ctrl-C ends it) -->``; the reason is part of the
page, and a Python block skipped that way must still compile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.requirements import need_programs

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON = {"python", "py"}
SHELL = {"sh", "bash", "shell"}
# Programs the shell blocks may call besides journal, and how to get them.
PROGRAMS = {"jq": "apt-get install jq"}
BASH = shutil.which("bash") or "/bin/bash"

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<reason>.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the first line of code, 1-based
    language: str
    code: str
    skip: str | None  # the reason given in the page, or None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, in order."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        previous = next((text for text in reversed(lines[:index]) if text.strip()), "")
        skip = _SKIP.search(previous)
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].lstrip().startswith(fence):
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"{page.relative_to(ROOT)}: a block opened with {fence} never closes")
        start = index - len(body) + 1 - 1
        found.append(
            Block(page, start, opening["info"].lower(), "\n".join(body) + "\n", skip and skip["reason"])
        )
        index += 1
    return found


def run_python(block: Block, namespace: dict[str, object]) -> None:
    # Padded so that tracebacks name the line of the page.
    code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
    if block.skip is None:
        # Warnings (a framework deprecating an API) are the reader's to see, not a broken page.
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            exec(code, namespace)  # noqa: S102 - the project's own documentation, run as documented


def run_shell(block: Block, folder: Path) -> None:
    if block.skip is not None:
        return
    # Installing would change the environment the suite runs in: show install lines as text.
    assert not re.search(r"\bpip\b.*\binstall\b", block.code), f"{block.where}: label install commands text"
    for program, how in PROGRAMS.items():
        if re.search(rf"\b{program}\b", block.code):
            need_programs(program, reason=how)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [BASH, "-euo", "pipefail", "-c", block.code],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{block.where}: the shell block exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    )


# ``doc``, not ``page``: pytest-playwright (a dev dependency) owns a fixture of that name.
@pytest.mark.parametrize("doc", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_block_of_the_page_runs(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = doc
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    ran = 0
    for block in blocks(page):
        if block.language in PYTHON:
            try:
                run_python(block, namespace)
            except Exception as error:
                raise AssertionError(f"{block.where}: the Python block raised {error!r}") from error
        elif block.language in SHELL:
            run_shell(block, tmp_path)
        else:
            continue
        ran += block.skip is None
    assert ran or not any(b.language in PYTHON | SHELL for b in blocks(page))


def test_unlabelled_blocks_say_what_they_are() -> None:
    # A block without a language is neither run nor highlighted: say text if it is output.
    bare = [b.where for page in PAGES for b in blocks(page) if not b.language]
    assert bare == []


def test_skipped_blocks_are_few_and_give_reasons() -> None:
    skipped = [b for page in PAGES for b in blocks(page) if b.skip is not None]
    for block in skipped:
        assert len(block.skip or "") >= 10, f"{block.where}: say why the block cannot run here"
    runnable = [b for page in PAGES for b in blocks(page) if b.language in PYTHON | SHELL]
    assert len(skipped) * 5 <= len(runnable), [b.where for b in skipped]
