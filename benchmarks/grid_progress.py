"""What a grid run shows while it works and says when it ends: how much went to compiling and
how much to timed runs, and a time left that counts both.

Compiles overlap on every worker while timed runs go one at a time (``host_lock``), so the time
left is the compiling still to do shared among the workers plus the running still to do in
sequence, each estimated from the cells done so far: its own mean per cell (compile, one program
per cell) and per seed (run). Until a cell has finished there is no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class GridProgress:
    """Counts for ``cells`` cells of ``seeds`` runs in all on ``workers`` worker processes."""

    cells: int
    seeds: int
    workers: int = 1
    cells_done: int = 0
    seeds_done: int = 0
    compile_s: float = 0.0  # worker seconds getting executables (one program per cell)
    run_s: float = 0.0  # seconds of timed runs

    def skipped(self, planned: int, todo: int) -> None:
        """A cell of ``planned`` seeds of which ``--resume`` left ``todo`` to run."""
        self.seeds -= planned - todo
        if not todo:
            self.cells -= 1

    def cell_done(self, rows: Sequence[dict]) -> None:
        """Count a finished cell from its rows (``compile_s`` is the cell's one program's, on
        every row; ``run_s`` each seed's)."""
        self.cells_done += 1
        self.seeds_done += len(rows)
        self.compile_s += max((_seconds(r.get("compile_s")) for r in rows), default=0.0)
        self.run_s += sum(_seconds(r.get("run_s")) for r in rows)

    def time_left_s(self) -> float:
        """Compiling left over the workers plus running left, at the means so far; NaN before
        the first cell."""
        if not self.cells_done or not self.seeds_done:
            return math.nan
        compile_left = self.compile_s / self.cells_done * max(self.cells - self.cells_done, 0)
        run_left = self.run_s / self.seeds_done * max(self.seeds - self.seeds_done, 0)
        return compile_left / max(self.workers, 1) + run_left

    def postfix(self) -> str:
        """The progress bar's tail: the two phases apart and the time left."""
        left = self.time_left_s()
        return (f"compile {self.compile_s:.0f} s, run {self.run_s:.0f} s, "
                f"left {'?' if math.isnan(left) else _duration(left)}")

    def summary(self, wall_s: float) -> str:
        """The run's last line but one: how many workers, and how the wall time was spent."""
        share = self.compile_s / (wall_s * self.workers) if wall_s > 0 else math.nan
        if self.workers == 1:
            how, of = "serial", "the wall time"
        else:
            how = f"{self.workers} workers, compiles overlapped, timed runs one at a time"
            of = f"the workers' {wall_s * self.workers:.0f} s"
        return (f"{how}: {self.compile_s:.0f} s compiling ({share:.0%} of {of}) and "
                f"{self.run_s:.0f} s in timed runs, {wall_s:.0f} s wall")


def _seconds(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
