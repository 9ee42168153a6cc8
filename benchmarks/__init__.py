"""Benchmarks of labpower (scripts/benchmark); not part of the test suite."""
