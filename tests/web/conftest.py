"""The viewer's fixtures: a populated folder journal and a test client on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason='the viewer needs the web extra: pip install "chat-journal[web]"')

from starlette.testclient import TestClient

from journal import Journal
from journal.web import create_app
from tests.web.helpers import damage, populate


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Journal]:
    root = tmp_path / "root"
    with Journal(root) as j:
        populate(j)
        damage(j)
    with Journal(root) as j:
        yield j


@pytest.fixture
def client(store: Journal) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as c:
        yield c
