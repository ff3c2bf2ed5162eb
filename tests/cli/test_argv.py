"""``values_first``: words that begin with ``-`` put where argparse takes them as values.

The end-to-end proof is in ``test_cli`` (the console script given ``--at -2h``); these pin the
rewriting itself on a small grammar, and that any command line without such a word is left
exactly as typed.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from journal.cli.argv import Grammar, values_first

TOP = Grammar(frozenset({"-h", "--help", "--root", "--json", "--version"}), frozenset({"--root"}), False)
COMMANDS = {
    "replay": Grammar(
        frozenset({"-h", "--help", "--root", "--json", "--at", "--last"}),
        frozenset({"--root", "--at", "--last"}),
    ),
    "diff": Grammar(frozenset({"-h", "--help", "--root", "--json"}), frozenset({"--root"})),
    "export": Grammar(
        frozenset({"-h", "--help", "--root", "--json", "-o", "--output", "--format"}),
        frozenset({"--root", "-o", "--output", "--format"}),
    ),
    "ls": Grammar(frozenset({"-h", "--help", "--root", "--json", "--wide"}), frozenset({"--root"}), False),
}


@pytest.mark.parametrize(
    ("typed", "rewritten"),
    [
        ("replay s --at -2h", "replay s --at=-2h"),
        ("replay s --at -1.5H --json", "replay s --at=-1.5H --json"),
        ("replay s --a -2h", "replay s --a=-2h"),  # argparse's abbreviation of --at
        ("replay s --at=-2h", "replay s --at=-2h"),
        ("replay s --at -h", "replay s --at -h"),  # -h is an option: argparse says --at lacks a value
        ("--root -2h replay s --at 3", "--root=-2h replay s --at 3"),
        ("diff s -2h -1h", "diff -- s -2h -1h"),
        ("diff s -2h -1h --json", "diff --json -- s -2h -1h"),
        ("diff --json s -2h --root r -1h", "diff --json --root r -- s -2h -1h"),
        ("diff s -2h -- -1h", "diff -- s -2h -1h"),
        ("diff s 3 -- -2h", "diff s 3 -- -2h"),  # the user's own -- already says it
        ("diff s -- --json", "diff s -- --json"),
        ("export s -o -2h --format md", "export s -o-2h --format md"),
        ("ls -2h", "ls -2h"),  # no positional to take it: argparse names it unrecognized
        ("-- diff s -2h", "-- diff s -2h"),
        ("frobnicate -2h", "frobnicate -2h"),
    ],
)
def test_values_are_joined_or_put_after_double_dash(typed: str, rewritten: str) -> None:
    assert values_first(typed.split(), TOP, COMMANDS) == rewritten.split()


words = st.lists(
    st.sampled_from(["replay", "diff", "s", "3", "--at", "--json", "--root", "r", "-x", "--", "a-b"]),
    max_size=8,
)


@given(words)
def test_a_command_line_without_dashed_values_is_left_as_typed(typed: list[str]) -> None:
    assert values_first(typed, TOP, COMMANDS) == typed
