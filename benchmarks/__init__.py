"""Benchmarks for journal: ``python -m benchmarks [--quick]`` (not part of the test suite)."""
