"""Inference methods behind one protocol (``base.Method``, ``base.RunResult``) and one registry.

A user's method file needs only ``from svi_bench.benchmarks.methods import Method, RunResult,
timed`` (see ``docs/my_method.py``).
"""

from svi_bench.benchmarks.methods.base import (
    FAMILIES,
    Method,
    Program,
    RunResult,
    Timing,
    always_applicable,
    timed,
)

__all__ = ["FAMILIES", "Method", "Program", "RunResult", "Timing", "always_applicable", "timed"]
