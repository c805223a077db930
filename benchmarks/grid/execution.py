"""Run a slice of the grid: every RunSpec, serially or on Dask, rows saved after each cell.

Rows are saved after every (model, method), so a kill loses at most the work in flight. Run
serially, a cell's rows are completed beside the loading or compiling of the next cell's
program, never beside a timed run (``model_cells.run_cells_overlapped``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row

JOBS_ENV = "SVI_BENCH_JOBS"
"""Worker processes of ``run`` when ``--jobs`` is not given (default: one per core)."""


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def max_jobs() -> int:
    """The most worker processes a run may ask for, by ``--jobs`` or ``$SVI_BENCH_JOBS``."""
    return usable_cores() * 4


def default_jobs(cells: Sequence[RunSpec], user_code: Sequence[str],
                 environ: Mapping[str, str] = os.environ) -> tuple[int, str]:
    """``(workers, why)`` for a run that did not say ``--jobs``: ``$SVI_BENCH_JOBS`` if set, else
    one per usable core, but no more than the cells, and 1 where the grid has a user's model or
    method (worker processes could not import it). ``why`` is empty unless that last rule chose.

    A bad ``$SVI_BENCH_JOBS`` raises ``ValueError`` naming what is valid."""
    limit = max_jobs()
    text = environ.get(JOBS_ENV, "")
    if text:
        try:
            asked = int(text)
        except ValueError:
            asked = 0
        if not 1 <= asked <= limit:
            raise ValueError(f"{JOBS_ENV}={text!r}; valid: an integer from 1 to {limit}")
    else:
        asked = usable_cores()
    workers = max(1, min(asked, len(cells)))
    if workers > 1 and user_code:
        return 1, (f"serial: worker processes cannot import {', '.join(user_code)} "
                   "(user models and methods run in this process)")
    return workers, ""


def run_grid(
    cells: Sequence[RunSpec],
    results: store.ResultsStore,
    resume: bool = False,
    on_cell: Callable[[RunSpec, int], None] | None = None,
    on_done: Callable[[RunSpec, list[dict]], None] | None = None,
    score: bool = True,
    jobs: int = 1,
    scheduler: str | None = None,
) -> None:
    """Run every cell, saving after each; ``on_cell``/``on_done`` drive the progress display.

    With ``jobs > 1`` or a Dask ``scheduler`` address the cells run as Dask tasks
    (``benchmarks.grid.distributed``): compiles overlap, each timed run holds the per-host lock
    (``timing_lock``), and results are still written only by this process, after every cell.
    With neither, everything runs here in order and Dask is never imported.
    """
    groups: dict[str, list[RunSpec]] = {}
    for cell in cells:
        todo = [
            s for s in cell.seeds
            if not (resume and results.done(
                store.identity(base_row(cell, s))))
        ]
        if on_cell and len(todo) < len(cell.seeds):  # --resume: the seeds already done
            on_cell(cell, len(todo))
        if todo:
            groups.setdefault(cell.spec.name, []).append(dataclasses.replace(cell, seeds=tuple(todo)))

    def record(cell: RunSpec, rows: list[dict], workers: int = 1) -> None:
        for row in rows:
            row["jobs"] = workers
            row.setdefault("timing_lock", False)  # serial: nothing else runs, no lock needed
            row.setdefault("lock_wait_s", 0.0)
        results.add(rows)
        if on_done:
            on_done(cell, rows)

    if jobs == 1 and scheduler is None:
        announce = (lambda c: on_cell(c, len(c.seeds))) if on_cell else None
        from svi_bench.benchmarks.grid.model_cells import run_cells_overlapped

        run_cells_overlapped([c for group in groups.values() for c in group],
                             results.out_dir, record, score, announce)
        return
    from svi_bench.benchmarks.grid import distributed

    distributed.run_cells(list(groups.values()), results.out_dir, score, record,
                          jobs=jobs, scheduler=scheduler)
