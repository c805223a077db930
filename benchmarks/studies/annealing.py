"""``annealing`` (000, "Live variational inference"): does annealing the Dirichlet concentration
help SVI reach the final posterior?

The document fits ``dirichlet_categorical`` while lowering ``alpha_scale`` from 1.0 to 0.02 on a
geometric schedule, each stage running 100-step jitted batches of ``SVI.update`` until the loss
changes by less than 2% over a batch, the guide's parameters carried from stage to stage. Against
it: a direct fit at 0.02 from scratch with the same total number of steps as that seed's annealed
run. Every stage is scored against its exact posterior Dirichlet(alpha + counts) on theta's draws
(moments and W1 in reference sd, with the noise floor of exact draws against exact draws; never
log densities of exact draws, which underflow in float32). The programs are
``benchmarks.inference.annealing``: one executable per guide serves every stage and the direct fit.
Rows: one per (guide, seed, stage) of the annealed run (variant ``annealed``) and one per (guide,
seed) for the direct fit (variant ``direct``, stage = the last stage). A seed's run is a chain, so
``--resume`` skips a (guide, seed) only when all its rows are stored ok. The programs run in the
model's declared precision (``ModelSpec.precision``) unless the profile's ``Schedule`` names one:
a guide that goes non-finite as alpha falls in float32 may only be meeting round-off, and a
float64 schedule tells the two apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import jax
import numpy as np

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row, one_line
from svi_bench.benchmarks.grid.runner import finish_rows
from svi_bench.benchmarks.inference.annealing import (
    BATCH_STEPS,
    NEVER,
    RULE_TOLERANCE,
    AnnealingPrograms,
    schedule,
    stage_settings,
)
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.methods import numpyro_guides, registry
from svi_bench.benchmarks.methods.base import Method, RunResult
from svi_bench.benchmarks.scoring.references import Reference, data_hash
from svi_bench.benchmarks.studies.annealing_answer import ANNEALED, DIRECT, answer, derive, figure
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.models import REGISTRY
from svi_bench.models.contract.precision_checks import precision_scope

MODEL, SITE, FINAL_ALPHA = "dirichlet_categorical", "theta", 0.02
REF_SEED, FLOOR_REPEATS = 20251015, 5


@dataclass(frozen=True)
class Schedule:
    """What one profile runs besides its guides and seeds: the stages, the batch cap per stage,
    the document's Adam 1e-3, the draws scored per stage and the exact draws they are scored on."""

    n_stages: int
    max_batches: int
    num_draws: int
    n_ref: int
    learning_rate: float = 1e-3
    elbo_particles: int = 200
    precision: str = ""
    """float32 or float64; "" (the default): the model's declared ``ModelSpec.precision``."""

    def settings(self) -> SVISettings:
        """The SVI settings of every stage, in ``precision`` (or the model's)."""
        return stage_settings(self.learning_rate, self.num_draws,
                              precision=self.precision or REGISTRY[MODEL].precision)


GUIDES = ("autonormal", "autodiagonalnormal", "automvn", "autodais", "autoiaf", "autobnaf")
SCHEDULES = {
    "smoke": Schedule(n_stages=5, max_batches=20, num_draws=400, n_ref=4000, elbo_particles=100),
    # scoring every stage is the cost that grows fastest (agreement of 2000 vs 10000 draws: 0.4 s)
    "quick": Schedule(n_stages=100, max_batches=50, num_draws=1000, n_ref=5000),
    "paper": Schedule(n_stages=100, max_batches=100, num_draws=2000, n_ref=10000),
}
_VARIANTS = (Variant(ANNEALED, {"variant": ANNEALED}), Variant(DIRECT, {"variant": DIRECT}))
SCOPES = {
    "smoke": Scope((MODEL,), ("autonormal",), 1, _VARIANTS),
    # AutoDiagonalNormal is AutoNormal's parameterisation here (same losses to float32 round-off)
    "quick": Scope((MODEL,), tuple(g for g in GUIDES if g != "autodiagonalnormal"), 4,
                   _VARIANTS),
    "paper": Scope((MODEL,), GUIDES, 10, _VARIANTS),
}


def run_hash(method: str, variant: str, stage: int, sched: Schedule) -> str:
    """A row's settings hash: guide, variant, stage and every schedule setting (not the seed).
    The precision is the settings' (so float32 rows keep the hashes they had before it was a
    schedule setting)."""
    schedule_ = {k: v for k, v in asdict(sched).items() if k != "precision"}
    return settings_hash(MODEL, method, sched.settings(), None, study="annealing",
                         variant=variant, stage=stage, schedule=schedule_,
                         tolerance=RULE_TOLERANCE, batch_steps=BATCH_STEPS)


def _data(alpha: float) -> str:
    return json.dumps(REGISTRY[MODEL].data_key(alpha_scale=float(alpha)), sort_keys=True)


def _identities(method: str, seed: int, sched: Schedule) -> list[tuple]:
    """Every row identity of one (guide, seed) chain: its stages, then the direct fit."""
    alphas = schedule(sched.n_stages, FINAL_ALPHA)
    keys = [(ANNEALED, i, a) for i, a in enumerate(alphas)]
    keys.append((DIRECT, sched.n_stages - 1, alphas[-1]))
    return [store.identity({"model": MODEL, "method": method, "seed": seed, "data": _data(a),
                            "settings_hash": run_hash(method, v, i, sched)}) for v, i, a in keys]


@lru_cache(maxsize=256)
def exact_reference(alpha: float, n_ref: int) -> Reference:
    """Exact draws of theta at ``alpha``: the posterior Dirichlet(alpha + counts) a stage is
    scored against (``evaluate`` gives its noise floor at the stage's number of draws)."""
    spec = REGISTRY[MODEL]
    ds = spec.make_data(alpha_scale=float(alpha))
    rng = np.random.default_rng([REF_SEED, round(alpha * 1e12), n_ref])
    draws = {SITE: spec.exact_sampler(rng, n_ref, ds)[SITE]}
    return Reference(MODEL, "exact", draws, {
        "ok": True, "kind": "exact", "method": "exact sampler", "seed": REF_SEED,
        "draws": n_ref, "data_hash": data_hash(ds), "quality": f"annealing-{n_ref}",
        "built_at": f"alpha={alpha!r}", "checks": {}, "failed_checks": []})


def _stage_run(method: str, seeds: list[int], variant: str, stage: int, alpha: float,
               sched: Schedule, profile: str) -> RunSpec:
    return RunSpec(REGISTRY[MODEL], method, sched.settings(), tuple(seeds),
                   REGISTRY[MODEL].data_key(alpha_scale=float(alpha)),
                   run_hash(method, variant, stage, sched), profile, "vi")


def _finish_stage(run: RunSpec, method: Method, out, rows: list[dict], sched: Schedule,
                  inner: int, cap: np.ndarray, compile_s: float, cache: str) -> None:
    """One stage's output into its rows through the runner (scored against the stage's exact
    posterior, no draws kept), then what only the study has: how the stage ended, theta's mean."""
    end = out.end
    batches = end.batches.astype(int)
    result = RunResult(
        draws={SITE: out.draws[:, None]}, grad_evals=(batches * BATCH_STEPS * inner).astype(float),
        compile_s=compile_s, run_s=out.run_s, cache=cache, log_weights=out.particle_elbos,
        params_finite=out.params_finite,
        columns={"num_draws": sched.num_draws, "num_particles": 1},
        seed_columns={"stage_batches": batches, "num_steps": batches * BATCH_STEPS,
                      "stage_capped": ~end.converged.astype(bool) & (batches >= cap),
                      "stage_loss": end.loss, "stage_loss_before": end.loss_before,
                      "stage_loss_mean": end.batch_loss_mean,
                      "nan_count": end.nonfinite_losses.astype(int)})
    ref = exact_reference(float(run.data_key["alpha_scale"]), sched.n_ref)
    finish_rows(run, method, REGISTRY[MODEL].data_for(run.data_key), result, rows, None,
                lambda: ref, keep_draws=False)
    for i, row in enumerate(rows):
        notes = []
        if row["stage_capped"] and row["variant"] == ANNEALED:
            notes.append(f"the batch cap ({int(cap[i])}), not the 2% rule, ended the stage")
        if not end.converged[i] and batches[i] < cap[i]:
            notes.append("a batch of only non-finite losses ended the stage")
        if row["nan_count"]:
            notes.append(f"{row['nan_count']} non-finite step losses")
        key = "error" if row["status"] == "failed" else "warning"
        row[key] = "; ".join(n for n in (row[key], *notes) if n)
        row["theta_mean"] = json.dumps([round(float(v), 6) for v in out.draws[i].mean(axis=0)])


def run_chains(method: str, seeds: list[int], sched: Schedule, profile: str,
               progress=lambda text: None) -> list[dict]:
    """The annealed run and the direct fit of one guide for ``seeds`` (together under vmap): every
    row, failures included (an exception fails every row not yet finished with its reason)."""
    spec = REGISTRY[MODEL]
    alphas = schedule(sched.n_stages, FINAL_ALPHA)
    last = sched.n_stages - 1
    runs = [_stage_run(method, seeds, ANNEALED, i, a, sched, profile)
            for i, a in enumerate(alphas)]
    runs.append(_stage_run(method, seeds, DIRECT, last, alphas[-1], sched, profile))
    rows = [[base_row(run, s) | {"variant": variant, "stage": stage, "stage_alpha": float(a),
                                 "latent_dim": 11}
             for s in seeds]
            for run, (variant, stage, a) in zip(runs, [(ANNEALED, i, a) for i, a in enumerate(alphas)]
                                                 + [(DIRECT, last, alphas[-1])], strict=True)]
    finished = 0
    try:
        with precision_scope(sched.settings().precision):  # the caller's mode after
            declared = registry.resolve(method)
            inner = numpyro_guides.inner_steps(method, {})
            programs = AnnealingPrograms(spec.model,
                                         numpyro_guides.guide_factory(spec, method, {}),
                                         sched.settings(), SITE,
                                         elbo_particles=sched.elbo_particles)
            keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds, dtype=np.uint32))
            draw_keys = jax.vmap(lambda k: jax.random.split(k, sched.n_stages + 1))(
                jax.vmap(jax.random.fold_in, (0, None))(keys, 1))
            state, _ = programs.init(keys, float(alphas[0]))
            cap = np.full(len(seeds), sched.max_batches)
            total = np.zeros(len(seeds), dtype=np.int64)
            for stage, alpha in enumerate(alphas):
                state, out = programs.stage(state, float(alpha), RULE_TOLERANCE, cap,
                                            draw_keys[:, stage])
                total += out.end.batches
                _finish_stage(runs[stage], declared, out, rows[stage], sched, inner, cap,
                              programs.compile_s, programs.cache)
                for i, row in enumerate(rows[stage]):
                    row["cumulative_steps"] = int(total[i]) * BATCH_STEPS
                finished += 1
                progress(f"{method} stage {stage + 1}/{sched.n_stages} alpha {alpha:.3g} loss "
                         f"{np.nanmedian(out.end.loss):.4g} ({int(out.end.batches.max())} batches)")
            progress(f"{method} direct fit at alpha {alphas[-1]:.3g}: {int(total.max())} batches")
            state, _ = programs.init(keys, float(alphas[-1]))
            _, out = programs.stage(state, float(alphas[-1]), NEVER, total, draw_keys[:, -1])
            _finish_stage(runs[-1], declared, out, rows[-1], sched, inner, total,
                          programs.compile_s, programs.cache)
            for i, row in enumerate(rows[-1]):
                row["cumulative_steps"] = int(total[i]) * BATCH_STEPS
            finished += 1
    except Exception as exc:  # a guide that cannot run: every row not yet finished says why
        for row in (r for stage_rows in rows[finished:] for r in stage_rows):
            row.update(status="failed", error=one_line(exc))
    return [row for s in range(len(seeds)) for stage_rows in rows for row in stage_rows[s:s + 1]]


def execute(run: StudyRun) -> None:
    """Every guide of the profile, the seeds not already stored ok (``--resume``) together."""
    scope, sched = SCOPES[run.profile], SCHEDULES[run.profile]
    for method in scope.methods:
        seeds = run.seeds_to_run(scope, lambda s, m=method: _identities(m, s, sched))
        if seeds:
            run.store.add(run_chains(method, seeds, sched, run.profile, run.progress))


STUDY = Study(
    name="annealing",
    question="Does annealing the Dirichlet concentration (live SVI) reach the final posterior "
             "better than a direct fit with the same number of steps?",
    document="000",
    section="Live variational inference",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="The document's figure redrawn per guide (median over seeds): top, the loss "
                   "at the end of each stage, with -log Z (the smallest loss possible) dashed; "
                   "middle, the posterior mean of the two observed categories (theta[2], "
                   "theta[5]) per stage against the exact Dirichlet(alpha + counts) mean (black "
                   "dashed); bottom, the marginal W1 (max over components, reference sd) per "
                   "stage with the exact-draws noise floor (grey). Crosses: the direct fit at "
                   "alpha 0.02 with the same number of steps.",
    execute=execute,
    program_settings=lambda profile: SCHEDULES[profile],
)

__all__ = ["SCHEDULES", "SCOPES", "STUDY", "Schedule", "execute", "exact_reference", "run_chains"]
