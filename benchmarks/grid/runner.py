"""Run a slice of the grid: one compiled program per (model, method), one row per seed.

A failing program or seed becomes a ``failed`` row with its reason and the grid goes on; rows are
saved after every (model, method), so a kill loses at most the work in flight. Run serially, a
cell's rows are completed beside the loading or compiling of the next cell's program, never
beside a timed run (``model_cells.run_cells_overlapped``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import numpyro

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.profiles import settings_for, settings_hash, with_overrides
from svi_bench.benchmarks.inference import host_load, methods
from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.inference.nuts import run_nuts
from svi_bench.benchmarks.inference.settings import NUTSSettings, Settings
from svi_bench.benchmarks.inference.svi import fit_svi
from svi_bench.benchmarks.scoring import arviz_adapter, diagnostics, predictive
from svi_bench.benchmarks.scoring.evaluate import evaluate
from svi_bench.benchmarks.scoring.references import (
    Reference,
    data_hash,
    source_hash,
)
from svi_bench.models import Dataset, ModelSpec


@dataclass(frozen=True)
class Cell:
    """One (model, method) cell of the grid with its settings and seeds."""

    spec: ModelSpec
    method: str
    settings: Settings
    seeds: tuple[int, ...]
    data_key: dict[str, Any]
    hash: str


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def _base_row(cell: Cell, seed: int, profile: str) -> dict[str, Any]:
    return {
        "model": cell.spec.name,
        "method": cell.method,
        "seed": seed,
        "profile": profile,
        "settings_hash": cell.hash,
        "settings": json.dumps(dataclasses.asdict(cell.settings), sort_keys=True),
        "precision": cell.settings.precision,
        "optimizer": getattr(cell.settings, "optimizer", ""),
        "data": json.dumps(cell.data_key, sort_keys=True),
        "status": "ok",
        "error": "",
        "warning": "",
        "artifact": "",
        **run_provenance(),
        "seeds_in_program": len(cell.seeds),
    }


def run_provenance() -> dict[str, str]:
    """When a row was started and with which JAX, NumPyro and XLA flags (every row has them)."""
    return {"started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "jax_version": jax.__version__, "numpyro_version": numpyro.__version__,
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def fit_problems(params_finite: bool, draws: Any) -> list[str]:
    """Why a fit's output cannot be scored: non-finite guide parameters or posterior draws
    (``draws`` a dict of arrays or one array)."""
    values = draws.values() if isinstance(draws, dict) else [draws]
    problems = [] if params_finite else ["non-finite guide parameters"]
    if not all(np.all(np.isfinite(v)) for v in values):
        problems.append("non-finite posterior draws")
    return problems


def score_safely(row: dict, scoring: Callable[[], Any]) -> None:
    """``row.update(scoring())``; a scoring error is recorded in the row, never raised."""
    try:
        row.update(scoring())
    except Exception as exc:
        row.update(verdict="", verdict_reason=f"evaluation failed: {one_line(exc)}")


def plan(
    specs: Sequence[ModelSpec],
    method_names: Sequence[str] | None,
    seeds: Sequence[int],
    profile: str,
    overrides: dict[str, Any] | None = None,
    sizes: dict[str, dict[str, Any]] | None = None,
) -> Iterator[Cell]:
    """The grid as data: every (model, method) cell, settings resolved and validated."""
    overrides = overrides or {}
    for spec in specs:
        size = (sizes or {}).get(spec.name, {})
        data_key = spec.data_key(**size)
        for method in method_names or methods.methods_for(spec):
            settings = dataclasses.replace(settings_for(profile, spec.name, method),
                                           precision=spec.precision)
            kind_overrides = {
                k: v for k, v in overrides.items()
                if k in {f.name for f in dataclasses.fields(settings)}
            }
            settings = with_overrides(settings, kind_overrides)
            yield Cell(spec, method, settings, tuple(seeds), data_key,
                       settings_hash(spec.name, method, settings, data_key))


ReferenceFn = Callable[[], Reference | None]


def _score(cell: Cell, ds: Dataset, row: dict, draws, reference_fn: ReferenceFn | None,
           particle_elbos=None, replicated: predictive.Replicates | None = None,
           out_dir=None) -> None:
    """Add the agreement metrics and verdict to an ok row; a scoring error is recorded, not raised.
    The reference's replicated data go to the results folder for the report."""
    if reference_fn is None or row["status"] != "ok":
        return

    def scoring() -> dict:
        reference = reference_fn()
        out = evaluate(cell.spec, ds, cell.method, row, draws, reference, particle_elbos,
                       replicated)
        if reference is not None and out_dir is not None:
            predictive.store_reference(out_dir, cell.spec.model, ds.model_kwargs, reference)
        return out

    score_safely(row, scoring)


def _replicate(cell: Cell, ds: Dataset, row: dict, draws, chains: int) -> predictive.Replicates:
    """Replicated data of an ok run (posterior predictive check), kept in its artifact."""
    if row["status"] != "ok":
        return predictive.Replicates(reason="the run failed")
    flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[chains:]) for k, v in draws.items()}
    return predictive.replicate_run(cell.spec.model, ds.model_kwargs, flat)


def _nothing() -> None:
    return None


def start_cell(cell: Cell, ds: Dataset, info: LatentInfo, profile: str, out_dir,
               reference_fn: ReferenceFn | None = None) -> tuple[list[dict], Callable[[], None]]:
    """Run one cell's program: its rows and the step that completes them (diagnostics, artifacts,
    scores), which may run later on another thread (``model_cells``). Neither raises
    for a failure of the method itself: it becomes a failed row."""
    rows = [_base_row(cell, s, profile) for s in cell.seeds]
    for row in rows:
        row["latent_dim"] = info.unconstrained_dim
    reason = methods.not_applicable_reason(cell.spec, cell.method, info.unconstrained_dim)
    if reason:
        for row in rows:
            row.update(status="not_applicable", error=reason)
        return rows, _nothing

    def failed(exc: Exception) -> None:  # a broken method or model must not stop the grid
        for row in rows:
            row.update(status="failed", error=one_line(exc))

    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(cell.seeds, dtype=np.uint32))
    try:
        run = _run_nuts_cell if isinstance(cell.settings, NUTSSettings) else _run_svi_cell
        finish = run(cell, ds, info, keys, rows, out_dir, reference_fn)
    except Exception as exc:
        failed(exc)
        return rows, _nothing

    def finish_safely() -> None:
        try:
            finish()
        except Exception as exc:
            failed(exc)

    return rows, finish_safely


def run_cell(cell: Cell, ds: Dataset, info: LatentInfo, profile: str, out_dir,
             reference_fn: ReferenceFn | None = None) -> list[dict]:
    """All rows of one cell; never raises for a failure of the method itself."""
    rows, finish = start_cell(cell, ds, info, profile, out_dir, reference_fn)
    finish()
    return rows


def _program_key(cell: Cell, ds: Dataset) -> dict[str, str]:
    """What defines the cell's program besides what fit_svi/run_nuts see: a warm run with the same
    key loads the stored executable instead of tracing (benchmarks/inference/executables.py)."""
    return {"cell": cell.hash, "model": cell.spec.name, "method": cell.method,
            "source_hash": source_hash(cell.spec), "data_hash": data_hash(ds)}


def _load_columns(run: Any) -> dict[str, Any]:
    """How busy the rest of the host was during the cell's timed run (``host_load``)."""
    return {"host_others_share": run.host_others_share,
            "contended": host_load.contended(run.host_others_share, run.run_s)}


def _run_nuts_cell(cell, ds, info, keys, rows, out_dir, reference_fn) -> Callable[[], None]:
    s: NUTSSettings = cell.settings
    sites = info.sites + tuple(cell.spec.extra_sites)  # postprocessing gives deterministic sites
    run = run_nuts(keys, cell.spec.model, ds.model_kwargs, sites, s, _program_key(cell, ds))
    return lambda: _finish_nuts_rows(cell, ds, run, rows, out_dir, reference_fn)


def _finish_nuts_rows(cell, ds, run, rows, out_dir, reference_fn) -> None:
    s: NUTSSettings = cell.settings
    for i, row in enumerate(rows):
        draws = {k: v[i] for k, v in run.draws.items()}
        diag = diagnostics.nuts_diagnostics(draws, run.diverging[i], run.energy[i])
        row.update(
            compile_s=run.compile_s, cache_hit=run.cache_hit, cache=run.cache,
            program_run_s=run.run_s, run_s=run.run_s / len(rows), **_load_columns(run),
            grad_evals=float(run.num_steps_warmup[i].sum() + run.num_steps[i].sum()),
            num_draws=s.num_chains * s.num_samples, **diag,
        )
        warnings = []
        if diag["divergences"]:
            warnings.append(f"{diag['divergences']} divergent transitions after warm-up")
        if not all(np.all(np.isfinite(v)) for v in draws.values()):
            row.update(status="failed", error="non-finite NUTS draws")
        replicated = _replicate(cell, ds, row, draws, chains=2)
        _save_run(out_dir, cell, row, draws, replicated, nuts={
            "energy": run.energy[i], "diverging": run.diverging[i],
            "num_steps": run.num_steps[i], "num_steps_warmup": run.num_steps_warmup[i]})
        row["warning"] = "; ".join(warnings)
        _score(cell, ds, row, draws, reference_fn, replicated=replicated, out_dir=out_dir)


def _run_svi_cell(cell, ds, info, keys, rows, out_dir, reference_fn) -> Callable[[], None]:
    s = cell.settings
    make_guide = methods.guide_factory(cell.spec, cell.method, s.guide_options)
    fit = fit_svi(keys, cell.spec.model, make_guide, ds.model_kwargs, info.sites, s,
                  tuple(cell.spec.extra_sites), _program_key(cell, ds))
    return lambda: _finish_svi_rows(cell, ds, fit, rows, out_dir, reference_fn)


def _finish_svi_rows(cell, ds, fit, rows, out_dir, reference_fn) -> None:
    s = cell.settings
    inner = methods.inner_steps(cell.method, s.guide_options)  # K for AutoDAIS, else 1
    for i, row in enumerate(rows):
        draws = {k: v[i] for k, v in fit.draws.items()}
        summary = diagnostics.svi_trace_summary(fit.losses[i], fit.particle_elbos[i])
        row.update(
            compile_s=fit.compile_s, cache_hit=fit.cache_hit, cache=fit.cache,
            program_run_s=fit.run_s, run_s=fit.run_s / len(rows), **_load_columns(fit),
            grad_evals=float(s.num_steps * s.num_particles * inner),
            num_draws=s.num_draws, num_steps=s.num_steps, num_particles=s.num_particles, **summary,
        )
        problems, warnings = [], []
        if summary["nan_count"]:
            nan_note = (f"{summary['nan_count']} of {s.num_steps} losses non-finite, "
                        f"first at step {int(summary['first_nan_step'])}")
            # A few infinite losses (a guide drawing outside the prior's support, as documents'
            # guides do) are recorded, not fatal, while the fit itself stays finite.
            tail = fit.losses[i][-max(1, s.num_steps // 10):]
            (problems if not np.any(np.isfinite(tail)) else warnings).append(nan_note)
        problems += fit_problems(fit.params_finite[i], draws)
        if problems:
            row.update(status="failed", error="; ".join(problems + warnings))
        else:
            if np.isnan(summary["converged_step"]):
                warnings.append("loss shows no plateau by the plateau rule")
            row["warning"] = "; ".join(warnings)
        replicated = _replicate(cell, ds, row, draws, chains=1)
        _save_run(out_dir, cell, row, draws, replicated,
                  svi={"losses": fit.losses[i], "particle_elbos": fit.particle_elbos[i]})
        _score(cell, ds, row, draws, reference_fn, fit.particle_elbos[i], replicated, out_dir)


_ATTRS = ("model", "method", "seed", "profile", "settings_hash", "settings", "data", "status")


def _save_run(out_dir, cell: Cell, row: dict, draws,
              replicated: predictive.Replicates | None = None, **groups) -> None:
    """The run's draws as InferenceData netCDF (path in ``row["artifact"]``), with its replicated
    data when it has them; a failed re-run never overwrites the artifact of an ok run."""
    path = store.artifact_path(out_dir, cell.spec.name, cell.method, row["seed"], cell.hash)
    if row["status"] != "ok" and path.is_file() and arviz_adapter.run_status(path) == "ok":
        return
    attrs = {k: str(row[k]) for k in _ATTRS}
    if replicated is not None and replicated.ok:
        groups["predictive"] = (replicated.draws, replicated.observed)
    arviz_adapter.save_run(path, draws, attrs, **groups)
    row["artifact"] = path.relative_to(out_dir).as_posix()


def run_grid(
    cells: Sequence[Cell],
    profile: str,
    results: store.ResultsStore,
    resume: bool = False,
    on_cell: Callable[[Cell, int], None] | None = None,
    on_done: Callable[[Cell, list[dict]], None] | None = None,
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
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        todo = [
            s for s in cell.seeds
            if not (resume and results.done(
                store.identity({**_base_row(cell, s, profile), "seed": s})))
        ]
        if on_cell and not todo:
            on_cell(cell, 0)
        if todo:
            groups.setdefault(cell.spec.name, []).append(dataclasses.replace(cell, seeds=tuple(todo)))

    def record(cell: Cell, rows: list[dict], workers: int = 1) -> None:
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

        run_cells_overlapped([c for group in groups.values() for c in group], profile,
                             results.out_dir, record, score, announce)
        return
    from svi_bench.benchmarks.grid import distributed

    distributed.run_cells(list(groups.values()), profile, results.out_dir, score, record,
                          jobs=jobs, scheduler=scheduler)
