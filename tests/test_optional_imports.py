"""The core imports no framework, no test library and no database driver."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = (
    "langchain_core",
    "langgraph",
    "agents",
    "llama_index",
    "flask",
    "hypothesis",
    "psycopg",
    "psycopg_pool",
    "starlette",
    "uvicorn",
    "jinja2",
)


def test_the_core_modules_import_no_optional_dependency() -> None:
    # A fresh interpreter: this one already imported the frameworks for their own tests.
    code = (
        "import sys, journal, journal.aio, journal.compat, journal.cli, journal.integrations\n"
        f"loaded = sorted(m for m in {OPTIONAL!r} if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_the_postgres_backend_loads_no_module_of_the_files_backend() -> None:
    # import-linter checks the imports written in the code; this checks what loading really pulls
    # in (package __init__ files, lazy imports run at import time).
    code = (
        "import sys, journal.backends.postgres.storage\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('journal.backends.files'))\n"
        "assert not loaded, loaded\n"
        "assert 'journal.backends.postgres.storage' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
