"""Adapters given a folder use the process's shared Journal on it: each test closes the ones it
opened, so hundreds of tests on their own temporary folders do not pile up open journals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from journal.integrations.shared import close_shared


@pytest.fixture(autouse=True)
def _close_shared_journals() -> Iterator[None]:
    yield
    close_shared()
