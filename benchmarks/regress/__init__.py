"""The regression gate: the pytest-benchmark suite (``perf/``), the interleaved comparator and the
runtime-history page. ``benchmarks.regress.cli`` lists the modules."""

from svi_bench.benchmarks.regress.cli import main
from svi_bench.benchmarks.regress.comparator import compare
from svi_bench.benchmarks.regress.runs import Run, RunError

__all__ = ["Run", "RunError", "compare", "main"]
