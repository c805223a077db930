"""What a compiled program costs by XLA's own account, and the memory its run took.

Two kinds of figure, both per program (every seed of a cell) and both on every row:

* **Static cost** (``static_cost``), from the compiled executable itself: XLA's cost analysis
  (floating-point operations, transcendental operations, bytes accessed) and memory analysis
  (argument, output, temporary and generated-code bytes, and the peak of the buffers alive at
  once). They do not depend on the machine's load, so the regression gate compares them exactly:
  a changed count means the work inside the program changed. XLA counts each operation of the
  program once: a loop's body counts once, not once per iteration, so these are a fingerprint of
  the program's work, not its total work (the total is the run time and ``grad_evals``).
* **Peak resident memory** (``PeakMemory``), of the process over the timed call: Linux's
  high-water mark (``VmHWM``), reset before the call through ``/proc/self/clear_refs``, and its
  growth over the resident size at the call's start. NaN where it cannot be measured (not
  Linux, or the reset refused).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: XLA's cost analysis key -> our column, in the order columns are declared.
COST_ANALYSIS = {"flops": "xla_flops", "transcendentals": "xla_transcendentals",
                 "bytes accessed": "xla_bytes_accessed"}
#: XLA's memory analysis attribute -> our column.
MEMORY_ANALYSIS = {"argument_size_in_bytes": "xla_argument_bytes",
                   "output_size_in_bytes": "xla_output_bytes",
                   "temp_size_in_bytes": "xla_temp_bytes",
                   "generated_code_size_in_bytes": "xla_code_bytes",
                   "peak_memory_in_bytes": "xla_peak_bytes"}
STATIC_COLUMNS = (*COST_ANALYSIS.values(), *MEMORY_ANALYSIS.values())
MEMORY_COLUMNS = ("peak_rss_bytes", "rss_growth_bytes")
COMPILE_LOAD = "compile_others_share"
"""The share of the host's CPU other processes used while the program compiled
(``host_load.others_share``): a compile time is comparable across commits only at a similar load."""
COLUMNS = (*STATIC_COLUMNS, *MEMORY_COLUMNS, COMPILE_LOAD)
PROCESS_STATE = (*MEMORY_COLUMNS, COMPILE_LOAD)
"""The columns that describe the process and host a run happened in, not the run: two runs of
the same program in two processes differ there (and only there, with the timings)."""


def static_cost(compiled: Any) -> dict[str, float]:
    """XLA's cost and memory analysis of a compiled executable; NaN for what it does not say
    (an executable loaded from the store may lack an analysis)."""
    out = dict.fromkeys(STATIC_COLUMNS, math.nan)
    try:
        analysis = compiled.cost_analysis()
        if isinstance(analysis, list | tuple):  # older JAX: one dict per computation
            analysis = analysis[0] if analysis else {}
        for key, column in COST_ANALYSIS.items():
            if key in (analysis or {}):
                out[column] = float(analysis[key])
    except Exception:  # an executable without the analysis: its figures stay NaN
        pass
    try:
        memory = compiled.memory_analysis()
        for attr, column in MEMORY_ANALYSIS.items():
            value = getattr(memory, attr, None)
            if value is not None:
                out[column] = float(value)
    except Exception:
        pass
    return out


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> float:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) * 1024  # kB
    return math.nan


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.columns()``: the process's peak resident
    bytes over the block and their growth over the resident bytes at its start."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = math.nan
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM to the current resident size
            self.start = _status_bytes("VmRSS")
        except OSError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if math.isfinite(self.start):
            try:
                self.peak = _status_bytes("VmHWM")
            except OSError:
                self.peak = math.nan

    def columns(self) -> dict[str, float]:
        return {"peak_rss_bytes": self.peak, "rss_growth_bytes": self.peak - self.start}
