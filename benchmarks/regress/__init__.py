"""The regression gate: the pytest-benchmark suite (``perf/``), the interleaved comparator and the
runtime-history page."""

from benchmarks.regress.gate import Run, RunError, compare, main

__all__ = ["Run", "RunError", "compare", "main"]
