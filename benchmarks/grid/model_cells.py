"""One model's cells, run in order: shared data, latent info and reference; serially, each cell's
rows completed on a background thread beside the next cell's start (``run_cells_overlapped``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence

from svi_bench.benchmarks.grid.run_spec import RunSpec, failed_rows, one_line
from svi_bench.benchmarks.grid.runner import ReferenceFn, nothing, start_cell
from svi_bench.benchmarks.inference import host_lock, latent_record
from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.scoring.references import Reference, get_reference
from svi_bench.models import Dataset
from svi_bench.models.contract.precision_checks import cast_floats, precision_scope


class _ModelCells:
    """What the cells of one model share: its data and latent info per data key and precision,
    and its reference (fetched once, on first use)."""

    def __init__(self, out_dir, score: bool) -> None:
        self.out_dir, self.score = out_dir, score
        self.data: dict[str, tuple[Dataset, LatentInfo]] = {}
        self.references: dict[str, Reference | None] = {}

    def reference_for(self, cell: RunSpec, key: str) -> ReferenceFn:
        def fetch() -> Reference | None:
            if key not in self.references:
                ds, info = self.data[key]
                self.references[key] = get_reference(
                    cell.spec, ds, cell.data_key, info.sites, self.out_dir,
                    quality=cell.reference_quality, precision=cell.settings.precision)
            return self.references[key]
        return fetch

    def start(self, cell: RunSpec) -> tuple[list[dict], Callable[[], None], ReferenceFn | None]:
        """``start_cell`` with the model's shared data: rows, their finishing step, reference."""
        # data, reference, programs and scoring all in the cell's precision
        key = json.dumps([cell.data_key, cell.settings.precision], sort_keys=True)
        try:
            if key not in self.data:
                with host_lock.foreground():  # a model's data and latent info run its code
                    ds = cell.spec.data_for(cell.data_key)
                    if cell.settings.precision != cell.spec.precision:  # --set precision=...
                        ds = dataclasses.replace(ds, model_kwargs=cast_floats(
                            ds.model_kwargs, cell.settings.precision))
                    self.data[key] = (ds, latent_record.run_latent_info(cell.spec,
                                                                        ds.model_kwargs))
            ds, info = self.data[key]
        except Exception as exc:  # a broken user model: record it, go on with the grid
            return failed_rows(cell, f"model or data failed: {one_line(exc)}"), nothing, None
        reference = self.reference_for(cell, key) if self.score else None
        rows, finish = start_cell(cell, ds, info, self.out_dir, reference)
        return rows, finish, reference


def run_model_cells(
    cells: Sequence[RunSpec], out_dir, score: bool = True,
    before: Callable[[RunSpec], None] | None = None,
) -> Iterator[tuple[RunSpec, list[dict]]]:
    """Run the cells of one model in order, sharing its data and reference; yield their rows."""
    model = _ModelCells(out_dir, score)
    for cell in cells:
        if before:
            before(cell)
        with precision_scope(cell.settings.precision):  # left before yielding: no leak
            rows, finish, _ = model.start(cell)
            finish()
        yield cell, rows


def run_cells_overlapped(
    cells: Sequence[RunSpec], out_dir, record: Callable[[RunSpec, list[dict]], None],
    score: bool = True, before: Callable[[RunSpec], None] | None = None,
) -> None:
    """``run_model_cells`` with each cell's rows completed (diagnostics, artifacts, scores) and
    recorded on a background thread while the next cell's stored executable is loaded or its
    lowered program compiled. ``host_lock.foreground`` keeps that thread off every timed run and
    all model code, so timings and numbers are those of ``run_model_cells``; a kill loses at
    most the cell being completed and the one being started. ``record`` runs on that thread."""
    from concurrent.futures import ThreadPoolExecutor

    models: dict[str, _ModelCells] = {}
    pending = None

    def complete(cell: RunSpec, rows: list[dict], finish: Callable[[], None]) -> None:
        with host_lock.background(), precision_scope(cell.settings.precision):
            finish()
            record(cell, rows)

    with ThreadPoolExecutor(1, thread_name_prefix="svi-bench-finish") as pool:
        for cell in cells:
            if before:
                before(cell)
            model = models.setdefault(cell.spec.name, _ModelCells(out_dir, score))
            with precision_scope(cell.settings.precision):
                rows, finish, reference = model.start(cell)
                if reference is not None and any(r["status"] == "ok" for r in rows):
                    with contextlib.suppress(Exception):  # the finishing step records the error
                        reference()  # built, if at all, here: not beside the next cell
            if pending is not None:
                pending.result()  # done already if this cell ran a timed program
            pending = pool.submit(complete, cell, rows, finish)
        if pending is not None:
            pending.result()
