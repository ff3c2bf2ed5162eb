import pytest

# The storage contract's asserts live in the package (journal.testing.contract): rewritten
# like a test module's, a failure shows the values compared. Registered before it is imported.
pytest.register_assert_rewrite("journal.testing.contract")
