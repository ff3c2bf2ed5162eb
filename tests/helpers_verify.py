"""What verify reports of a session with a retention base, checked against an exported head."""

from __future__ import annotations

from journal import VerifyReport

__all__ = ["clean_but_the_base"]


def clean_but_the_base(report: VerifyReport) -> bool:
    """Whether ``report`` names nothing but the one thing an exported head always meets in a
    session with a retention base: no stored event vouches for the base's state
    ("unverifiable"; see ``docs/audit.md``), and at least one session has such a base."""
    return bool(report.problems) and all(p.kind == "unverifiable" for p in report.problems)
