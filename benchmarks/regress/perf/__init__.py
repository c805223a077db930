"""pytest-benchmark suite for regression gating: compiled step cost, gradient work, accuracy.

Run with ``pytest benchmarks/regress/perf`` (not collected by the default ``pytest``, whose
testpaths is ``tests``); ``--perf-full`` (or ``SVI_PERF_FULL=1``) selects every model x method
instead of the small default selection. ``python -m svi_bench.benchmarks.regress`` runs it interleaved
base-vs-head and gates the result; see ``benchmarks/regress/gate.py``.
"""
