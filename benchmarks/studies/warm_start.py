"""``warm_start`` (001, "Pre-Training SVI"): how much does starting from a previous fit save on a
new data set, for SVI and for NUTS?

The document fits ``linreg_outliers`` on ``gen_data(12)``, then on ``gen_data(123)`` starting from
the first solution (``init_params``). Here every method fits the document's data, then a sequence
of new data sets, each twice: from scratch and warm (SVI: the previous warm fit's parameters;
NUTS: a short warm-up, ``REUSE_FRACTION`` of the fresh one, from the previous run's last position,
adapted step size and inverse mass matrix). SVI's cost is the steps to the loss plateau
(``scoring.convergence.plateau_step``) and the wall time to it (run time x plateau step / steps);
NUTS's is its whole run (warm-up plus the same number of draws), in leapfrog steps and seconds.
Each fit becomes rows through the grid's runner (``runner.finish_rows``: diagnostics, artifact,
scores against the new data set's own NUTS reference). Programs:
``benchmarks.inference.warm_start``. A (method, seed) is one chain of fits, so ``--resume`` skips
it only when all its rows are stored ok. Derived table and answer: ``warm_start_answer``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

import jax
import numpy as np

from svi_bench.benchmarks.grid import runner, store
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row, one_line
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.warm_start import NUTSPrograms, SVIPrograms, seed_keys
from svi_bench.benchmarks.methods import numpyro_guides, registry
from svi_bench.benchmarks.methods.base import RunResult
from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.scoring import convergence
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.benchmarks.studies.warm_start_answer import (
    BASE,
    SCRATCH,
    WARM,
    answer,
    derive,
    figure,
)
from svi_bench.models import REGISTRY

MODEL, BASE_DATA = "linreg_outliers", 12
SITES = ("Q", "b_perp", "bg_mean", "bg_sigma", "theta")
METHODS = ("automvn", "autodiagonalnormal", "manual:independent", NUTS)
REUSE_FRACTION = 0.1
TRACE_POINTS = 200  # loss-trace points kept per row for the figure


@dataclass(frozen=True)
class Schedule:
    """What one profile runs: the new data seeds, SVI and NUTS settings and reference quality."""

    new_data: tuple[int, ...]
    svi: SVISettings
    nuts: NUTSSettings
    reference_quality: str

    @property
    def reuse_warmup(self) -> int:
        return max(1, round(REUSE_FRACTION * self.nuts.num_warmup))


def _svi(steps: int, lr: float, draws: int) -> SVISettings:
    return SVISettings(num_steps=steps, num_particles=1, learning_rate=lr, num_draws=draws)


SCHEDULES = {
    "smoke": Schedule((123,), _svi(1000, 1e-2, 400),
                      NUTSSettings(num_warmup=200, num_samples=200, num_chains=1), "smoke"),
    "quick": Schedule((123, 1, 2), _svi(4000, 5e-3, 2000),
                      NUTSSettings(num_warmup=1000, num_samples=1000, num_chains=1), "full"),
    "paper": Schedule((123, 1, 2, 3, 4, 5), _svi(10000, 5e-3, 4000),
                      NUTSSettings(num_warmup=2000, num_samples=2000, num_chains=1), "full"),
}
_VARIANTS = (Variant(SCRATCH, {"start": SCRATCH}), Variant(WARM, {"start": WARM}))
SCOPES = {
    "smoke": Scope((MODEL,), METHODS, 2, _VARIANTS),
    "quick": Scope((MODEL,), METHODS, 4, _VARIANTS),
    "paper": Scope((MODEL,), METHODS, 8, _VARIANTS),
}


def _settings(method: str, sched: Schedule):
    return sched.nuts if method == NUTS else sched.svi


def run_hash(method: str, start: str, sched: Schedule) -> str:
    """A row's settings hash: method, start and every schedule setting (not the seed)."""
    return settings_hash(MODEL, method, _settings(method, sched), None, study="warm_start",
                         start=start, schedule=dataclasses.asdict(sched),
                         reuse_fraction=REUSE_FRACTION)


def _data(seed: int) -> str:
    return json.dumps(REGISTRY[MODEL].data_key(seed), sort_keys=True)


def _plan(sched: Schedule) -> list[tuple[str, int, int]]:
    """(start, data seed, stage) of every fit of a chain, in order: base, then per new data
    set the scratch and the warm fit."""
    out = [(BASE, BASE_DATA, 0)]
    for i, d in enumerate(sched.new_data):
        out += [(SCRATCH, d, 2 * i + 1), (WARM, d, 2 * i + 2)]
    return out


def _identities(method: str, seed: int, sched: Schedule) -> list[tuple]:
    return [store.identity({"model": MODEL, "method": method, "seed": seed, "data": _data(d),
                            "settings_hash": run_hash(method, start, sched)})
            for start, d, _ in _plan(sched)]


def _run_spec(method: str, start: str, data_seed: int, seeds: list[int], sched: Schedule,
              profile: str) -> RunSpec:
    """One fit of the chain as a cell of the grid's runner, under the study's identity."""
    spec = REGISTRY[MODEL]
    return RunSpec(spec, method, _settings(method, sched), tuple(seeds),
                   spec.data_key(data_seed), run_hash(method, start, sched), profile,
                   registry.resolve(method).family)


def _rows(run: RunSpec, start: str, data_seed: int, stage: int) -> list[dict]:
    return [{**base_row(run, s), "variant": start, "start": start, "data_seed": data_seed,
             "fit_index": stage, "latent_dim": len(SITES)} for s in run.seeds]


def _trace(losses: np.ndarray) -> str:
    """The loss trace as ``TRACE_POINTS`` [last step, mean of the finite losses] segments."""
    out = []
    for chunk in np.array_split(np.arange(len(losses)), min(TRACE_POINTS, len(losses))):
        finite = losses[chunk][np.isfinite(losses[chunk])]
        out.append([int(chunk[-1]), round(float(finite.mean()), 4) if finite.size else None])
    return json.dumps(out)


def _svi_result(params, losses, draws, run_s: float, compile_s: float, sched: Schedule
                ) -> RunResult:
    """An SVI fit of the chain as the runner's result: one chain of draws per seed, its loss
    trace (plateau, final loss) and the study's cost columns."""
    losses = np.asarray(losses)
    seeds, steps = losses.shape
    plateau = np.array([convergence.plateau_step(x) for x in losses])
    return RunResult(
        draws={k: np.asarray(v)[:, None] for k, v in draws.items()},
        grad_evals=np.full(seeds, float(steps)), compile_s=compile_s, run_s=run_s,
        losses=losses, params_finite=np.array([_finite(params, i) for i in range(seeds)]),
        columns={"num_steps": steps, "num_draws": sched.svi.num_draws},
        seed_columns={"time_to_plateau_s": run_s / seeds * plateau / steps,
                      "first_loss": losses[:, 0]})


def _nuts_result(draws, steps, warmup: int, run_s: float, compile_s: float, sched: Schedule
                 ) -> RunResult:
    """A NUTS run of the chain (one chain per seed) as the runner's result: its leapfrog steps
    (warm-up and sampling) are its cost; its whole run is its time."""
    steps = np.asarray(steps)
    seeds = steps.shape[0]
    return RunResult(
        draws={k: np.asarray(v)[:, None] for k, v in draws.items()},
        grad_evals=steps.sum(axis=1).astype(float), compile_s=compile_s, run_s=run_s,
        sample_stats={"num_steps": steps[:, None, warmup:],
                      "num_steps_warmup": steps[:, None, :warmup]},
        columns={"num_warmup": warmup, "num_steps": warmup + sched.nuts.num_samples,
                 "num_draws": sched.nuts.num_samples},
        seed_columns={"time_to_plateau_s": np.full(seeds, run_s / seeds)})


def _reference_fn(data_seed: int, sched: Schedule, out_dir):
    """The new data set's own reference, fetched when the first fit on it is scored."""
    spec = REGISTRY[MODEL]
    key = spec.data_key(data_seed)
    return functools.cache(lambda: get_reference(spec, spec.data_for(key), key, SITES, out_dir,
                                                 quality=sched.reference_quality,
                                                 log=lambda msg: None))


def run_chain(method: str, seeds: list[int], sched: Schedule, profile: str, out_dir,
              progress=lambda text: None) -> list[dict]:
    """Every fit of one method for ``seeds`` (together under vmap): base, then scratch and warm
    per new data set, each finished by the grid's runner (diagnostics, artifact, scores against
    the data set's own reference) into rows. An exception fails the rows not yet filled."""
    spec = REGISTRY[MODEL]
    declared = registry.resolve(method)
    done: list[dict] = []
    runs = {(start, d): _run_spec(method, start, d, seeds, sched, profile)
            for start, d, _ in _plan(sched)}
    pending = {(start, d): _rows(runs[(start, d)], start, d, stage)
               for start, d, stage in _plan(sched)}
    try:
        if method == NUTS:
            programs = NUTSPrograms(spec.model, sched.nuts, sched.reuse_warmup, SITES)
        else:
            programs = SVIPrograms(spec.model, numpyro_guides.guide_factory(spec, method, {}),
                                   sched.svi, SITES)
        previous, references = None, {}
        for start, d, stage in _plan(sched):
            ds = spec.make_data(d)
            keys = seed_keys(seeds, stage)
            progress(f"{method}: {start} fit on data {d}")
            if method == NUTS:
                warmup = sched.reuse_warmup if start == WARM else sched.nuts.num_warmup
                (draws, carry, steps), run_s = (programs.reuse(keys, previous, ds.model_kwargs)
                                                if start == WARM else
                                                programs.fresh(keys, ds.model_kwargs))
                result = _nuts_result(draws, steps, warmup, run_s, programs.compile_s, sched)
            else:
                (params, losses, draws), run_s = (programs.warm(keys, previous, ds.model_kwargs)
                                                  if start == WARM else
                                                  programs.scratch(keys, ds.model_kwargs))
                carry = params
                result = _svi_result(params, losses, draws, run_s, programs.compile_s, sched)
            rows = pending.pop((start, d))
            if d not in references:
                references[d] = _reference_fn(d, sched, out_dir)
            runner.finish_rows(runs[(start, d)], declared, ds, result, rows, out_dir,
                               references[d])
            if result.losses is not None:
                for i, row in enumerate(rows):
                    row["loss_trace"] = _trace(result.losses[i])
            done += rows
            if start != SCRATCH:  # the chain continues from the base and the warm fits
                previous = carry
        for row in done:
            row["compile_s"] = programs.compile_s
    except Exception as exc:
        reason = one_line(exc)
        for rows in pending.values():
            for row in rows:
                row.update(status="failed", error=reason)
            done += rows
    return done


def _finite(tree, i: int) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)[i])))
               for leaf in jax.tree_util.tree_leaves(tree))


def execute(run: StudyRun) -> None:
    """Every method of the profile; seeds whose whole chain is stored ok are skipped on resume."""
    scope, sched = SCOPES[run.profile], SCHEDULES[run.profile]
    for method in scope.methods:
        seeds = run.seeds_to_run(scope, lambda s, m=method: _identities(m, s, sched))
        if seeds:
            run.store.add(run_chain(method, seeds, sched, run.profile, run.out_dir,
                                    run.progress))


STUDY = Study(
    name="warm_start",
    question="How much does pre-training (starting from the previous fit) save per new data set, "
             "for SVI and for NUTS?",
    document="001",
    section="Pre-Training SVI",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Left: loss traces on the first new data set (median over seeds) from scratch "
                   "(solid) and warm-started from the previous fit (dashed). Right: the fraction "
                   "of the cost saved by the warm start per method (SVI: steps to the loss "
                   "plateau; NUTS: leapfrog steps of warm-up plus sampling), mean over (seed, data "
                   "set) pairs; bars: standard error.",
    execute=execute,
    program_settings=lambda profile: SCHEDULES[profile],
)

__all__ = ["SCHEDULES", "SCOPES", "STUDY", "Schedule", "execute", "run_chain"]
