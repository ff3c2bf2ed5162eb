"""Fixtures of the contract suite: a Journal and raw storage access on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from journal import Journal
from tests.contract.stored import Stored, stored_at


@pytest.fixture
def stored(store_url: str) -> Stored:
    """The storage behind ``store_url``, read around the library."""
    return stored_at(store_url)


@pytest.fixture
def journal(store_url: str) -> Iterator[Journal]:
    """A Journal on ``store_url`` with the default options, closed after the test."""
    with Journal.from_url(store_url) as opened:
        yield opened
