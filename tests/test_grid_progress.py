"""The grid's progress: compile and run counted apart, a time left that counts both phases."""

from __future__ import annotations

import math

import pytest

from svi_bench.benchmarks.grid_progress import GridProgress


def _rows(compile_s: float, runs: list[float]) -> list[dict]:
    return [{"compile_s": compile_s, "run_s": r} for r in runs]


def test_time_left_shares_compiling_among_workers_and_runs_in_sequence():
    progress = GridProgress(cells=4, seeds=12, workers=2)
    assert math.isnan(progress.time_left_s()) and progress.postfix().endswith("left ?")
    progress.cell_done(_rows(40.0, [1.0, 2.0, 3.0]))  # one program per cell: counted once
    progress.cell_done(_rows(20.0, [1.0, 1.0, 4.0]))
    assert (progress.compile_s, progress.run_s) == (60.0, 12.0)
    # 2 cells left at 30 s of compiling each over 2 workers, 6 seeds left at 2 s each in turn
    assert progress.time_left_s() == pytest.approx(2 * 30.0 / 2 + 6 * 2.0)
    serial = GridProgress(cells=4, seeds=12, workers=1)
    serial.cell_done(_rows(40.0, [1.0, 2.0, 3.0]))
    serial.cell_done(_rows(20.0, [1.0, 1.0, 4.0]))
    assert serial.time_left_s() == pytest.approx(2 * 30.0 + 6 * 2.0)
    assert progress.postfix() == "compile 60 s, run 12 s, left 42 s"


def test_resumed_seeds_leave_the_plan_and_missing_times_count_zero():
    progress = GridProgress(cells=3, seeds=9)
    progress.skipped(3, 0)  # a whole cell done before
    progress.skipped(3, 1)  # two of a cell's seeds done before
    assert (progress.cells, progress.seeds) == (2, 4)
    progress.cell_done([{"compile_s": None, "run_s": float("nan")}, {"status": "failed"}])
    assert (progress.compile_s, progress.run_s, progress.seeds_done) == (0.0, 0.0, 2)


def test_the_summary_says_how_many_workers_and_the_compile_share():
    progress = GridProgress(cells=2, seeds=2, workers=2)
    progress.cell_done(_rows(30.0, [5.0]))
    progress.cell_done(_rows(50.0, [5.0]))
    text = progress.summary(100.0)
    assert text.startswith("2 workers, compiles overlapped, timed runs one at a time:")
    assert "80 s compiling (40% of the workers' 200 s) and 10 s in timed runs, 100 s wall" in text
    serial = GridProgress(cells=1, seeds=1)
    serial.cell_done(_rows(4.0, [1.0]))
    assert serial.summary(10.0) == ("serial: 4 s compiling (40% of the wall time) and 1 s in "
                                    "timed runs, 10 s wall")
