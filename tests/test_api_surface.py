"""The public surface: one curated, sorted __all__, every name documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import journal


def test_all_is_sorted_unique_and_complete() -> None:
    names = journal.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(journal, name), name
    public = {n for n in vars(journal) if not n.startswith("_") and not inspect.ismodule(getattr(journal, n))}
    assert public - {"annotations"} <= set(names)


def test_every_public_name_has_a_docstring() -> None:
    for name in journal.__all__:
        obj = getattr(journal, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), name
    for name, member in inspect.getmembers(journal.Journal, inspect.isfunction):
        if not name.startswith("_"):
            assert (member.__doc__ or "").strip(), f"Journal.{name}"


def test_importing_journal_does_not_import_test_or_cli_dependencies() -> None:
    code = "import sys, journal; print(sorted(m for m in ('hypothesis', 'pytest') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
