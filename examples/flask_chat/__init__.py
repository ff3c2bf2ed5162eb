"""A Flask chat app whose sessions are journal sessions; see README.md beside this file."""

from __future__ import annotations

from .app import Reply, create_app, echo, journal_for

__all__ = ["Reply", "create_app", "echo", "journal_for"]
