"""``warm_start`` (001, "Pre-Training SVI"): how much does starting from a previous fit save on a
new data set, for SVI and for NUTS?

The document fits ``linreg_outliers`` on ``gen_data(12)``, then on ``gen_data(123)`` starting from
the first solution (``init_params``). Here every method fits the document's data, then a sequence
of new data sets, each twice: from scratch and warm (SVI: the previous warm fit's parameters;
NUTS: a short warm-up, ``REUSE_FRACTION`` of the fresh one, from the previous run's last position,
adapted step size and inverse mass matrix). SVI's cost is the steps to the loss plateau
(``scoring.convergence.plateau_step``) and the wall time to it (run time x plateau step / steps);
NUTS's is its whole run (warm-up plus the same number of draws), in leapfrog steps and seconds.
Each fit is scored against the new data set's own NUTS reference. Programs:
``benchmarks.inference.warm_start``. A (method, seed) is one chain of fits, so ``--resume`` skips
it only when all its rows are stored ok. Derived table and answer: ``warm_start_answer``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import jax
import numpy as np

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import one_line, run_provenance
from svi_bench.benchmarks.grid.runner import fit_problems, score_safely
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.warm_start import NUTSPrograms, SVIPrograms, seed_keys
from svi_bench.benchmarks.methods import numpyro_guides
from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.scoring import arviz_adapter, convergence, metrics
from svi_bench.benchmarks.scoring.draws import chain_components, flatten_draws
from svi_bench.benchmarks.scoring.evaluate import with_verdict
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


def _row(method: str, seed: int, start: str, data_seed: int, sched: Schedule,
         profile: str) -> dict:
    settings = _settings(method, sched)
    return {"model": MODEL, "method": method, "seed": seed, "profile": profile, "variant": start,
            "start": start, "data_seed": data_seed,
            "settings_hash": run_hash(method, start, sched),
            "settings": json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str),
            "precision": "float32", "data": _data(data_seed), "status": "ok", "error": "",
            "warning": "", "artifact": "",
            **run_provenance(), "latent_dim": len(SITES)}


def score(draws: dict[str, np.ndarray], data_seed: int, method: str, n_eff: int,
          out_dir, quality: str, extra: dict | None = None) -> dict:
    """Agreement of one fit's draws with the data set's own reference, its noise floor for
    ``n_eff`` draws and the verdict (a failed reference gate is named in the reason)."""
    spec = REGISTRY[MODEL]
    key = spec.data_key(data_seed)
    ref = get_reference(spec, spec.data_for(key), key, SITES, out_dir, quality=quality,
                        log=lambda msg: None)
    names, q = flatten_draws(draws)
    _, r = flatten_draws(ref.draws)
    out = {**metrics.agreement(q, r, names),
           **metrics.noise_floor(r, int(max(2, min(n_eff, len(r) // 2))),
                                 np.random.default_rng(7), 5)}
    with_verdict(out, method, None if ref.ok else ref.failure, extra)
    out.update(reference_ok=ref.ok)
    return out


def _trace(losses: np.ndarray) -> str:
    """The loss trace as ``TRACE_POINTS`` [last step, mean of the finite losses] segments."""
    out = []
    for chunk in np.array_split(np.arange(len(losses)), min(TRACE_POINTS, len(losses))):
        finite = losses[chunk][np.isfinite(losses[chunk])]
        out.append([int(chunk[-1]), round(float(finite.mean()), 4) if finite.size else None])
    return json.dumps(out)


def _fill_svi(row: dict, params_ok: bool, losses: np.ndarray, draws: dict, run_s: float,
              seeds: int, sched: Schedule, out_dir) -> None:
    steps = len(losses)
    plateau = convergence.plateau_step(losses)
    per_seed = run_s / seeds
    mean, sd = convergence.final_loss(losses)
    row.update(num_steps=steps, converged_step=plateau, run_s=per_seed, program_run_s=run_s,
               time_to_plateau_s=per_seed * plateau / steps, first_loss=float(losses[0]),
               final_loss_mean=mean, final_loss_sd=sd, grad_evals=float(steps),
               nan_count=int(np.sum(~np.isfinite(losses))), loss_trace=_trace(losses),
               num_draws=sched.svi.num_draws)
    if np.isnan(plateau):
        row["warning"] = "the loss showed no plateau within the steps run"
    bad = fit_problems(params_ok, draws)
    if bad:
        row.update(status="failed", error="; ".join(bad))
        return
    score_safely(row, lambda: score(draws, row["data_seed"], row["method"],
                                    sched.svi.num_draws, out_dir, sched.reference_quality))


def _fill_nuts(row: dict, draws: dict, steps: np.ndarray, warmup: int, run_s: float,
               seeds: int, sched: Schedule, out_dir) -> None:
    comps = chain_components({k: v[None] for k, v in draws.items()})  # one chain per seed
    finite = all(np.all(np.isfinite(c)) for c in comps)
    health = {"max_rhat": max(arviz_adapter.rhat(c) for c in comps) if finite else np.nan,
              "min_ess_bulk": min(arviz_adapter.ess_bulk(c) for c in comps) if finite else np.nan,
              "min_ess_tail": min(arviz_adapter.ess_tail(c) for c in comps) if finite else np.nan}
    row.update(num_warmup=warmup, num_steps=warmup + sched.nuts.num_samples,
               grad_evals=float(np.sum(steps)), run_s=run_s / seeds, program_run_s=run_s,
               time_to_plateau_s=run_s / seeds, num_draws=sched.nuts.num_samples, **health)
    if not all(np.all(np.isfinite(v)) for v in draws.values()):
        row.update(status="failed", error="non-finite posterior draws")
        return
    n_eff = health["min_ess_bulk"] if np.isfinite(health["min_ess_bulk"]) else 2
    score_safely(row, lambda: score(draws, row["data_seed"], NUTS, int(n_eff), out_dir,
                                    sched.reference_quality, health))


def _finite(tree, i: int) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)[i])))
               for leaf in jax.tree_util.tree_leaves(tree))


def run_chain(method: str, seeds: list[int], sched: Schedule, profile: str, out_dir,
              progress=lambda text: None) -> list[dict]:
    """Every fit of one method for ``seeds`` (together under vmap): base, then scratch and warm
    per new data set. An exception fails the rows not yet filled, with its reason."""
    spec = REGISTRY[MODEL]
    plan = _plan(sched)
    rows = {(start, d): [{**_row(method, s, start, d, sched, profile), "fit_index": stage}
                         for s in seeds] for start, d, stage in plan}
    n = len(seeds)
    try:
        if method == NUTS:
            programs = NUTSPrograms(spec.model, sched.nuts, sched.reuse_warmup, SITES)
        else:
            programs = SVIPrograms(spec.model, numpyro_guides.guide_factory(spec, method, {}),
                                   sched.svi, SITES)
        previous = None
        for start, d, stage in plan:
            data = spec.make_data(d).model_kwargs
            keys = seed_keys(seeds, stage)
            progress(f"{method}: {start} fit on data {d}")
            if method == NUTS:
                if start == WARM:
                    (draws, carry, steps), run_s = programs.reuse(keys, previous, data)
                else:
                    (draws, carry, steps), run_s = programs.fresh(keys, data)
                warmup = sched.reuse_warmup if start == WARM else sched.nuts.num_warmup
                for i, row in enumerate(rows[(start, d)]):
                    _fill_nuts(row, {k: np.asarray(v[i]) for k, v in draws.items()},
                               np.asarray(steps[i]), warmup, run_s, n, sched, out_dir)
            else:
                if start == WARM:
                    (params, losses, draws), run_s = programs.warm(keys, previous, data)
                else:
                    (params, losses, draws), run_s = programs.scratch(keys, data)
                carry = params
                for i, row in enumerate(rows[(start, d)]):
                    _fill_svi(row, _finite(params, i), np.asarray(losses[i]),
                              {k: np.asarray(v[i]) for k, v in draws.items()}, run_s, n,
                              sched, out_dir)
            if start != SCRATCH:  # the chain continues from the base and the warm fits
                previous = carry
        for group in rows.values():
            for row in group:
                row["compile_s"] = programs.compile_s
    except Exception as exc:
        reason = one_line(exc)
        for group in rows.values():
            for row in group:
                if "run_s" not in row:
                    row.update(status="failed", error=reason)
    return [row for group in rows.values() for row in group]


def execute(run: StudyRun) -> None:
    """Every method of the profile; seeds whose whole chain is stored ok are skipped on resume."""
    scope, sched = SCOPES[run.profile], SCHEDULES[run.profile]
    for method in scope.methods:
        seeds = [s for s in run.seed_list(scope) if not (
            run.resume and all(run.store.done(k) for k in _identities(method, s, sched)))]
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

__all__ = ["SCHEDULES", "SCOPES", "STUDY", "Schedule", "execute", "run_chain", "score"]
