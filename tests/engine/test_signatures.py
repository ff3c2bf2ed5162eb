"""The public API is stated three times: ``Journal``, its coroutine twin ``AsyncJournal`` and
the reference model ``InMemoryJournal``. These tests hold the three to one signature each.

Oracle: ``Journal``'s own signatures (``inspect``). ``AsyncJournal`` repeats every public
method with the same parameters; the model repeats every method it models with the same
parameters in the same order, plus keyword-only ones of its own (``now``, ids) that a test
passes to make it deterministic. A method added to ``Journal`` fails here until it has its
twin, and until it is modelled or listed below as outside the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from journal import Journal
from journal.aio import AsyncJournal
from journal.testing.model import InMemoryJournal

# What the model leaves out, each for a reason: it is a plain in-memory list, so there is
# nothing to close, store byte for byte, compact, anchor, verify or repair.
NOT_MODELLED = {
    "close": "nothing to release",
    "export_session": "no stored bytes",
    "import_session": "no stored bytes",
    "compact": "no snapshots or archive (drop_history plays retention)",
    "head": "no hash chain",
    "verify": "no stored data to damage",
    "repair": "no stored data to damage",
}

# Model-only keyword-only parameters: the time and the ids a test hands the model.
MODEL_EXTRAS = {"now", "message_id", "message_ids"}


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


JOURNAL = public_methods(Journal)


@pytest.mark.parametrize("name", sorted(JOURNAL))
def test_every_journal_method_has_a_coroutine_twin_with_the_same_parameters(name: str) -> None:
    twin = getattr(AsyncJournal, name, None)
    assert twin is not None, f"AsyncJournal has no {name}"
    assert parameters(twin) == parameters(JOURNAL[name])


@pytest.mark.parametrize("name", sorted(set(JOURNAL) - set(NOT_MODELLED)))
def test_every_modelled_method_takes_the_journals_parameters_in_order(name: str) -> None:
    twin = getattr(InMemoryJournal, name, None)
    assert twin is not None, f"InMemoryJournal models no {name} (model it or list it in NOT_MODELLED)"
    want = parameters(JOURNAL[name])
    names = {p[0] for p in want}
    got = parameters(twin)
    assert [p for p in got if p[0] in names] == want
    extras = [p for p in got if p[0] not in names]
    assert {p[0] for p in extras} <= MODEL_EXTRAS, "the model takes a parameter Journal does not"
    assert all(kind is inspect.Parameter.KEYWORD_ONLY and default is None for _, kind, default in extras)


def test_the_list_of_unmodelled_methods_names_only_journal_methods() -> None:
    # A stale exclusion would hide a method the model should have: each must still exist on
    # Journal and be absent from the model.
    for name in NOT_MODELLED:
        assert name in JOURNAL, f"{name} is no longer a Journal method"
        assert not hasattr(InMemoryJournal, name), f"InMemoryJournal now models {name}"
