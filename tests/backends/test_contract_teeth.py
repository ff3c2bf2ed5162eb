"""The storage contract has teeth: run against storages that each break one promise, it fails.

Oracle: ``tests/backends/broken.py`` (each broken storage is the reference ``MemoryStorage``
with one defect). The contract runs in a nested pytest session (``pytester``) for each; the
reference storage itself, run the same way, passes every test, so each failure is the
defect's. For each defect, the test that states the broken promise is among the failures.
"""

from __future__ import annotations

import pytest

from tests.backends.broken import BROKEN

MODULE = """
import pytest

from journal.backends.memory import MemoryStorage
from journal.testing.contract import StorageContract
from tests.backends.broken import BROKEN


class TestUnderContract(StorageContract):
    @pytest.fixture
    def storage(self):
        return {make}
"""

# The test that states the promise each storage breaks.
WITNESS = {
    "drops-an-append": "test_the_stamp_moves_with_every_append_and_the_delete",
    "reorders-events": "test_appended_lines_read_back_in_order_with_their_heads",
    "serves-a-stale-head": "test_a_journal_catches_up_with_another_writer",
    "ignores-conflicts": "test_an_append_after_a_stale_head_is_refused_and_stores_nothing",
}


def run_contract(pytester: pytest.Pytester, make: str) -> tuple[dict[str, int], set[str]]:
    pytester.makepyfile(test_under_contract=MODULE.format(make=make))
    # In process, so without the plugins that hold per-test state of their own (pytest-playwright's
    # soft assertions refuse to nest in the outer run's).
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-p", "no:playwright", "-rf")
    failed = {line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")}
    return result.parseoutcomes(), failed


def test_the_reference_storage_passes_the_contract_when_run_the_same_way(pytester: pytest.Pytester) -> None:
    outcomes, failed = run_contract(pytester, "MemoryStorage()")
    assert failed == set()
    assert outcomes.get("passed", 0) >= 20
    assert "failed" not in outcomes
    assert "error" not in outcomes


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_storage_fails_the_contract(pytester: pytest.Pytester, name: str) -> None:
    outcomes, failed = run_contract(pytester, f"BROKEN[{name!r}]()")
    assert outcomes.get("failed", 0) >= 1, outcomes
    assert WITNESS[name] in failed, sorted(failed)
