"""The storage contract (``journal.testing.contract``) on every backend the project ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal.backends.files.storage import FileStorage
from journal.backends.memory import MemoryStorage
from journal.engine.storage import Storage
from journal.testing.contract import StorageContract


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()


class TestFileStorage(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> FileStorage:
        return FileStorage(tmp_path / "journal", fsync="never")


class TestPostgresStorage(StorageContract):
    @pytest.fixture
    def storage(self, pg_url: str) -> Storage:
        from journal.backends.postgres.storage import PgStorage

        return PgStorage(pg_url)
