"""Run a study: its cells through the grid runner into the results store, then its table.

The same machinery as ``svi-bench run``: one compiled program per cell, rows saved after every
cell, ``resume`` skipping exactly the identities already stored ok, failures kept as rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from svi_bench.benchmarks.grid import execution, store
from svi_bench.benchmarks.grid.run_spec import RunSpec
from svi_bench.benchmarks.studies.base import (
    OwnRowsStore,
    PlannedCell,
    Study,
    StudyRun,
    TaggingStore,
    plan_study,
    select_own_rows,
    select_rows,
    write_outputs,
)


def run_study(
    study: Study,
    profile: str,
    out_dir: Path,
    seeds: Sequence[int] | None = None,
    resume: bool = False,
    on_cell: Callable[[RunSpec, int], None] | None = None,
    on_done: Callable[[RunSpec, list[dict]], None] | None = None,
    score: bool = True,
    planned: Sequence[PlannedCell] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, str, store.ResultsStore]:
    """Run every cell of ``study`` at ``profile`` into ``out_dir``; (derived table, answer, store).

    Rows land in ``out_dir/results.parquet`` with ``study`` and ``variant`` columns; the table in
    ``out_dir/studies/NAME.parquet``. ``store.ResultsError`` propagates (a corrupt results file).
    """
    results = store.ResultsStore(Path(out_dir))
    if study.execute is not None:
        study.execute(StudyRun(profile, tuple(seeds) if seeds is not None else None,
                               OwnRowsStore(results, study.name, study.fingerprint(profile)), resume,
                               progress or (lambda text: None), results.out_dir))
        rows = select_own_rows(study, profile, results.frame())
        derived, answer = write_outputs(study, profile, rows, results.out_dir)
        return derived, answer, results
    planned = list(planned) if planned is not None else plan_study(study, profile, seeds)
    tagged = TaggingStore(results, study.name, planned)
    execution.run_grid([p.cell for p in planned], tagged, resume=resume, on_cell=on_cell,
                    on_done=on_done, score=score)
    rows = select_rows(study, study.scopes[profile].variants, results.frame(), planned)
    derived, answer = write_outputs(study, profile, rows, results.out_dir)
    return derived, answer, results
