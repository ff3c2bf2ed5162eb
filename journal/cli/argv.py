"""Command-line words that begin with ``-`` but are values: ``-2h``, ``-1.5d``, ``-1``.

argparse reads every word that starts with ``-`` as an option, unless it is a plain negative
number (``-1``, ``-1.5``), so ``replay s --at -2h`` fails with "expected one argument" and
``diff s -2h -1h`` with "unrecognized arguments". ``values_first`` rewrites such words,
before argparse sees them, into the two forms its documentation gives for a value that
begins with ``-``:

- the value of an option is joined to it: ``--at -2h`` becomes ``--at=-2h`` (``-o -2h``
  becomes ``-o-2h``);
- a positional is put after ``--``, with the command's options moved in front of it in
  their order: ``diff s -2h -1h --json`` becomes ``diff --json -- s -2h -1h``.

A value here is a word of a ``-`` then a digit or a dot: no option of ``journal`` looks like
that. A ``--`` typed by the user is kept, and nothing after it is touched. Which options take
a value is read from the parser itself (``Grammar``), so a new option needs nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Grammar", "values_first"]

_VALUE = re.compile(r"-[0-9.]")


@dataclass(frozen=True)
class Grammar:
    """The options of one parser: all of them, and those that take one value; and whether
    it takes positionals at all."""

    options: frozenset[str]
    takes_value: frozenset[str]
    positionals: bool = True

    def option(self, word: str) -> str | None:
        """The option ``word`` names, as argparse resolves it (exact, or an unambiguous
        prefix of a long option); None when it names none or carries its own value."""
        if word in self.options:
            return word
        if word.startswith("--") and "=" not in word:
            found = [o for o in self.options if o.startswith(word)]
            if len(found) == 1:
                return found[0]
        return None


def values_first(argv: Sequence[str], top: Grammar, commands: Mapping[str, Grammar]) -> list[str]:
    """``argv`` with every value that begins with ``-`` where argparse takes it as a value.

    Args:
        argv: the words after the program name.
        top: the options before the command.
        commands: each command's options (those it shares with ``top`` included).
    """
    words = list(argv)
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return out + words[i:]
        if _is_option(word):
            i = _option(words, i, top, out)
            continue
        grammar = commands.get(word)
        if grammar is None:  # not a command: argparse says so
            return out + words[i:]
        return [*out, word, *_command(words[i + 1 :], grammar)]
    return out


def _command(words: list[str], grammar: Grammar) -> list[str]:
    ordered: list[str] = []  # as typed, values joined to their options
    options: list[str] = []
    positionals: list[str] = []
    typed_escape: list[str] = []  # a "--" of the user's and what follows it
    dashed = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            typed_escape = words[i:]
            positionals += words[i + 1 :]
            break
        if _is_option(word):
            start = len(options)
            i = _option(words, i, grammar, options)
            ordered += options[start:]
            continue
        positionals.append(word)
        ordered.append(word)
        dashed = dashed or _VALUE.match(word) is not None
        i += 1
    # With no positional to take them, a "--" would only show up in argparse's complaint.
    if dashed and grammar.positionals:
        return [*options, "--", *positionals]
    return ordered + typed_escape


def _option(words: list[str], i: int, grammar: Grammar, out: list[str]) -> int:
    """Append the option at ``words[i]`` with its value, if it takes one; the next index."""
    word = words[i]
    name = grammar.option(word)
    if name is None or name not in grammar.takes_value or i + 1 == len(words):
        out.append(word)
        return i + 1
    value = words[i + 1]
    if _VALUE.match(value):
        out.append(f"{word}={value}" if word.startswith("--") else f"{word}{value}")
    else:
        out += [word, value]  # an ordinary value, or an option (argparse reports the gap)
    return i + 2


def _is_option(word: str) -> bool:
    return len(word) > 1 and word.startswith("-") and not _VALUE.match(word)
