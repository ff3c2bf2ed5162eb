"""The core imports no framework, no test library and no database driver."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("langchain_core", "agents", "llama_index", "flask", "hypothesis", "psycopg", "psycopg_pool")


def test_the_core_modules_import_no_optional_dependency() -> None:
    # A fresh interpreter: this one already imported the frameworks for their own tests.
    code = (
        "import sys, journal, journal.aio, journal.compat, journal.cli, journal.integrations\n"
        f"loaded = sorted(m for m in {OPTIONAL!r} if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
