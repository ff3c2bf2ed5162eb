"""``journal serve``: a read-only audit viewer for the browser, and its JSON API (extra ``web``).

An outer ring beside ``journal.cli``: it reads a journal through the library (``get``,
``events``, ``replay``, ``verify``, ``head``) and writes nothing to it, and shows what the
command shows through ``journal.documents``, importing nothing of the command. ``create_app``
builds the Starlette application; ``journal serve`` (``journal.cli.serve``) checks the address
and runs it under uvicorn.
"""

from __future__ import annotations

from journal.web.app import create_app

__all__ = ["create_app"]
