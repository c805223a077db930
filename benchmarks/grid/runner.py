"""Run one cell: its method's program (one compiled program per (model, method)), one row per
seed, completed from what the ``RunResult`` has; artifacts and scores.

A failing program or seed becomes a ``failed`` row with its reason and the grid goes on. Nothing
here asks which method ran: the method's declaration (``benchmarks.methods``) and its result do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row, one_line
from svi_bench.benchmarks.inference import host_load, program_cost
from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.methods import registry
from svi_bench.benchmarks.methods.base import Method, RunResult
from svi_bench.benchmarks.scoring import arviz_adapter, diagnostics, predictive
from svi_bench.benchmarks.scoring.evaluate import evaluate
from svi_bench.benchmarks.scoring.references import (
    Reference,
    data_hash,
    source_hash,
)
from svi_bench.models import Dataset


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


ReferenceFn = Callable[[], Reference | None]


def _score(run: RunSpec, method: Method, ds: Dataset, row: dict, draws,
           reference_fn: ReferenceFn | None, log_weights=None,
           replicated: predictive.Replicates | None = None, out_dir=None) -> None:
    """Add the agreement metrics and verdict to an ok row; a scoring error is recorded, not raised.
    The reference's replicated data go to the results folder for the report."""
    if reference_fn is None or row["status"] != "ok":
        return

    def scoring() -> dict:
        reference = reference_fn()
        out = evaluate(run.spec, ds, run.method, row, draws, reference, log_weights, replicated,
                       psis=method.psis)
        if reference is not None and out_dir is not None:
            predictive.store_reference(out_dir, run.spec.model, ds.model_kwargs, reference)
        return out

    score_safely(row, scoring)


def _replicate(run: RunSpec, ds: Dataset, row: dict, draws) -> predictive.Replicates:
    """Replicated data of an ok run (posterior predictive check), kept in its artifact."""
    if row["status"] != "ok":
        return predictive.Replicates(reason="the run failed")
    flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in draws.items()}
    return predictive.replicate_run(run.spec.model, ds.model_kwargs, flat)


def nothing() -> None:
    """The finishing step of rows that are complete already (failed, not applicable)."""
    return None


def start_cell(run: RunSpec, ds: Dataset, info: LatentInfo, out_dir,
               reference_fn: ReferenceFn | None = None) -> tuple[list[dict], Callable[[], None]]:
    """Run one cell's program: its rows and the step that completes them (diagnostics, artifacts,
    scores), which may run later on another thread (``model_cells``). Neither raises
    for a failure of the method itself: it becomes a failed row."""
    rows = [base_row(run, s) for s in run.seeds]
    for row in rows:
        row["latent_dim"] = info.unconstrained_dim

    def failed(exc: Exception) -> None:  # a broken method or model must not stop the grid
        for row in rows:
            row.update(status="failed", error=one_line(exc))

    try:
        method = registry.resolve(run.method)
        reason = method.applicable(run.spec, info)
    except Exception as exc:
        failed(exc)
        return rows, nothing
    if reason:
        for row in rows:
            row.update(status="not_applicable", error=reason)
        return rows, nothing
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(run.seeds, dtype=np.uint32))
    try:
        program = method.build(run.spec, ds, run.settings, info,
                               program_key=_program_key(run, method, ds))
        result = program(keys)
    except Exception as exc:
        failed(exc)
        return rows, nothing

    def finish_safely() -> None:
        try:
            finish_rows(run, method, ds, result, rows, out_dir, reference_fn)
        except Exception as exc:
            failed(exc)

    return rows, finish_safely


def run_cell(run: RunSpec, ds: Dataset, info: LatentInfo, out_dir,
             reference_fn: ReferenceFn | None = None) -> list[dict]:
    """All rows of one cell; never raises for a failure of the method itself."""
    rows, finish = start_cell(run, ds, info, out_dir, reference_fn)
    finish()
    return rows


def run_checkpoints(runs: Sequence[RunSpec], ds: Dataset, info: LatentInfo, out_dir,
                    reference_fn: ReferenceFn | None = None) -> list[list[dict]]:
    """The rows of cells that differ only in their method's budget, from one run of the
    method's ``checkpoints`` program (the last cell's settings, every cell's budget): per cell,
    its rows, completed like ``run_cell``'s. Never raises for a failure of the method itself."""
    last = runs[-1]
    rows = [[base_row(run, s) | {"latent_dim": info.unconstrained_dim} for s in run.seeds]
            for run in runs]

    finished = 0

    def failed(exc: Exception) -> list[list[dict]]:  # the cells not yet finished
        for row in (r for cell in rows[finished:] for r in cell):
            row.update(status="failed", error=one_line(exc))
        return rows

    try:
        method = registry.resolve(last.method)
        if method.checkpoints is None:
            raise ValueError(f"method {last.method!r} has no checkpoints program")
        points = [getattr(run.settings, method.budget) for run in runs]
        program = method.checkpoints(last.spec, ds, last.settings, info, points,
                                     program_key=_program_key(last, method, ds))
        results = program(jax.vmap(jax.random.PRNGKey)(np.asarray(last.seeds, dtype=np.uint32)))
        for run, result, cell in zip(runs, results, rows, strict=True):
            finish_rows(run, method, ds, result, cell, out_dir, reference_fn)
            finished += 1
    except Exception as exc:
        return failed(exc)
    return rows


def _program_key(run: RunSpec, method: Method, ds: Dataset) -> dict[str, str]:
    """What defines the cell's program besides what the method's program sees: a warm run with
    the same key loads the stored executable instead of tracing (``inference/executables.py``).
    The method's own source is part of it, so an edited method file never loads a stale program."""
    return {"cell": run.hash, "model": run.spec.name, "method": run.method,
            "source_hash": source_hash(run.spec), "data_hash": data_hash(ds),
            "method_source": method.source_hash()}


def _timing_columns(result: RunResult, seeds: int) -> dict[str, Any]:
    """How long the program took, which cache served it, how busy the rest of the host was
    during its timed run (``host_load``), and what the program costs (``program_cost``: XLA's
    static figures, the process's peak memory over the run), per program."""
    return {"compile_s": result.compile_s, "cache_hit": result.cache_hit, "cache": result.cache,
            "program_run_s": result.run_s, "run_s": result.run_s / seeds,
            "host_others_share": result.host_others_share,
            "contended": host_load.contended(result.host_others_share, result.run_s),
            **{c: float(result.cost.get(c, np.nan)) for c in program_cost.COLUMNS}}


DRAWS_NOT_KEPT = "the study keeps no draws of this run (no artifact, no replicated data)"


def finish_rows(run: RunSpec, method: Method, ds: Dataset, result: RunResult, rows: list[dict],
                out_dir, reference_fn: ReferenceFn | None, keep_draws: bool = True) -> None:
    """Complete each seed's row from what the result has: sampler diagnostics for a run with
    sample statistics, the loss trace's summary for a fitted one; then its artifact and scores.
    ``keep_draws=False`` (a study's many intermediate runs) scores the draws but writes no
    artifact and makes no replicated data, so the predictive check says why it has no figure."""
    stats, losses = result.sample_stats, result.losses
    for i, row in enumerate(rows):
        draws = {k: v[i] for k, v in result.draws.items()}  # (chain, draw, *shape)
        row.update(**_timing_columns(result, len(rows)), grad_evals=float(result.grad_evals[i]),
                   **result.columns, **{k: np.asarray(v)[i].item()
                                        for k, v in result.seed_columns.items()})
        problems, warnings = [], []
        if stats is not None:
            diag = diagnostics.nuts_diagnostics(draws, *(None if stats.get(k) is None else
                                                         stats[k][i] for k in ("diverging", "energy")))
            row.update(diag)
            if diag["divergences"] and np.isfinite(diag["divergences"]):
                warnings.append(f"{diag['divergences']} divergent transitions after warm-up")
        log_weights = None if result.log_weights is None else result.log_weights[i]
        if losses is None and log_weights is not None:  # no loss trace: its ELBO all the same
            pe = np.asarray(log_weights, dtype=float)
            row.update(final_elbo=float(np.mean(pe)), final_elbo_se=float(np.std(pe) / np.sqrt(pe.size)))
        if losses is not None:
            trace = np.asarray(losses[i])
            summary = diagnostics.svi_trace_summary(trace, log_weights)
            row.update(summary)
            steps = len(trace)
            if summary["nan_count"]:
                nan_note = (f"{summary['nan_count']} of {steps} losses non-finite, "
                            f"first at step {int(summary['first_nan_step'])}")
                # A few infinite losses (a guide drawing outside the prior's support, as
                # documents' guides do) are recorded, not fatal, while the fit stays finite.
                tail = trace[-max(1, steps // 10):]
                (problems if not np.any(np.isfinite(tail)) else warnings).append(nan_note)
        finite = True if result.params_finite is None else bool(result.params_finite[i])
        problems += fit_problems(finite, draws)
        if problems:
            row.update(status="failed", error="; ".join(problems + warnings))
        else:
            if losses is not None and np.isnan(row["converged_step"]):
                warnings.append("loss shows no plateau by the plateau rule")
            row["warning"] = "; ".join(warnings)
        if not keep_draws:
            replicated = predictive.Replicates(reason=DRAWS_NOT_KEPT)
        else:
            replicated = _replicate(run, ds, row, draws)
            groups: dict[str, Any] = {}
            if stats is not None:
                groups["nuts"] = {k: v[i] for k, v in stats.items()}
            else:
                groups["svi"] = {"losses": None if losses is None else losses[i],
                                 "particle_elbos": log_weights}
            save_run(out_dir, run, row, draws, replicated, **groups)
        _score(run, method, ds, row, draws, reference_fn, log_weights, replicated, out_dir)


_ATTRS = ("model", "method", "seed", "profile", "settings_hash", "settings", "data", "status")


def save_run(out_dir, run: RunSpec, row: dict, draws,
             replicated: predictive.Replicates | None = None, **groups) -> None:
    """The run's draws (chain, draw, *shape) as InferenceData netCDF (path in
    ``row["artifact"]``), with its replicated data when it has them; a failed re-run never
    overwrites the artifact of an ok run."""
    path = store.artifact_path(out_dir, run.spec.name, run.method, row["seed"], run.hash)
    if row["status"] != "ok" and path.is_file() and arviz_adapter.run_status(path) == "ok":
        return
    attrs = {k: str(row[k]) for k in _ATTRS}
    if replicated is not None and replicated.ok:
        groups["predictive"] = (replicated.draws, replicated.observed)
    arviz_adapter.save_run(path, draws, attrs, chains=True, **groups)
    row["artifact"] = path.relative_to(out_dir).as_posix()
