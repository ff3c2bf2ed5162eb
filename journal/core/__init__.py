"""The pure core: events, the fold, the line and snapshot codecs, value checks, the chain.

Nothing here does I/O or imports from ``journal.engine``, ``journal.backends`` or the outer
rings (an ``import-linter`` contract in ``pyproject.toml`` holds it to that).
"""
