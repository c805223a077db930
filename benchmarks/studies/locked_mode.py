"""``locked_mode`` (000, "Live variational inference"): easing out of a locked mode by tempering.

The document's second use of changing a model argument during SVI: "your multimodal distributions
get locked into a specific mode that the optimiser cannot escape and are looking for a way to
'ease into' the right mode". The target is ``multimodal_2d`` (two equal modes at u1 = (x + y)/√2
= ±5, quadrature reference), so the right answer is both modes. Every guide is first locked into
the + mode: it is fitted (the document's rule: 100-step batches until the loss changes by < 2%,
capped) to the target times a well around that mode (``lock`` = 1), from ``init_to_value`` at
the mode. From that same state, two fits of the target itself (``lock`` = 0):

* ``tempered``: the log density scaled by beta (``numpyro.handlers.scale``) rising geometrically
  from ``Schedule.beta0`` to 1, a stage per beta, the document's rule in each;
* ``direct``: beta = 1 at once, with as many steps as that seed's tempered run.

beta and lock are traced arguments, so one executable per guide serves every stage
(``benchmarks.inference.annealing.AnnealingPrograms``). Each final fit becomes a row through the
runner (scored against the quadrature reference: W1 with its noise floor, verdict) plus where q's
mass lies: the share of its draws within 3 sd of each mode (``start_mode_share``,
``other_mode_share``) and the tempered run's per-stage trajectory. Table and answer:
``locked_mode_answer``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import jax
import numpy as np
import numpyro
from numpyro.infer.initialization import init_to_value

from svi_bench.benchmarks.grid import runner, store
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row, failed_rows, one_line
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
from svi_bench.benchmarks.methods.base import RunResult
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.benchmarks.studies.locked_mode_answer import (
    DIRECT,
    TEMPERED,
    answer,
    derive,
    figure,
)
from svi_bench.models import REGISTRY
from svi_bench.models.multimodal_2d import SIG1, B

MODEL, SITES = "multimodal_2d", ("x", "y")
START = {"x": B / 2**0.5, "y": B / 2**0.5}
"""The start: the centre of the + mode (u1 = +5, u2 = 0)."""
MODE_HALF_WIDTH = 3 * SIG1
"""A draw is "in" a mode within 3 of the mode's sd along u1 of it."""


@dataclass(frozen=True)
class Schedule:
    """What one profile runs besides its guides and seeds: the lock phase's batch cap, the
    tempering stages from ``beta0`` to 1 and their batch cap, Adam's learning rate and the draws
    scored."""

    lock_batches: int
    n_stages: int
    beta0: float
    max_batches: int
    num_draws: int
    learning_rate: float = 1e-2
    elbo_particles: int = 200

    def settings(self) -> SVISettings:
        return stage_settings(self.learning_rate, self.num_draws)

    def betas(self) -> np.ndarray:
        """beta0 rising geometrically to exactly 1 (the annealing schedule, reversed)."""
        return schedule(self.n_stages, self.beta0)[::-1]


GUIDES = ("autonormal", "automvn", "autoiaf", "autobnaf")
SCHEDULES = {
    "smoke": Schedule(lock_batches=3, n_stages=3, beta0=0.05, max_batches=4, num_draws=400,
                      elbo_particles=100),
    "quick": Schedule(lock_batches=20, n_stages=20, beta0=0.01, max_batches=20, num_draws=1000),
    "paper": Schedule(lock_batches=30, n_stages=50, beta0=0.01, max_batches=30, num_draws=2000),
}
_VARIANTS = (Variant(DIRECT, {"variant": DIRECT}), Variant(TEMPERED, {"variant": TEMPERED}))
SCOPES = {
    "smoke": Scope((MODEL,), ("autonormal",), 2, _VARIANTS),
    "quick": Scope((MODEL,), GUIDES[:3], 10, _VARIANTS),
    "paper": Scope((MODEL,), GUIDES, 20, _VARIANTS),
}


def well(values: dict) -> jax.Array:
    """The log density of the well that locks the start mode: N(u1; +B, SIG1) up to a constant."""
    u1 = (values["x"] + values["y"]) / 2**0.5
    return -0.5 * ((u1 - B) / SIG1) ** 2


def tempered_target(beta=1.0, lock=0.0) -> None:
    """``multimodal_2d`` with its log density scaled by ``beta`` and ``lock`` times the well
    added; beta = 1, lock = 0 is the model itself."""
    with numpyro.handlers.trace() as tr, numpyro.handlers.scale(scale=beta):
        REGISTRY[MODEL].model()
    numpyro.factor("lock", lock * well({s: tr[s]["value"] for s in SITES}))


def make_guide(method: str):
    """A fresh guide of ``method`` over the tempered target, its location at the start mode."""
    cls = numpyro_guides.AUTOGUIDES[method]
    return lambda: cls(tempered_target, init_loc_fn=init_to_value(values=START))


def mode_shares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the share of q's draws (seeds, draws) within ``MODE_HALF_WIDTH`` of the start
    (+) mode and of the other (-) mode along u1."""
    u1 = (np.asarray(x) + np.asarray(y)) / 2**0.5
    return (np.mean(np.abs(u1 - B) < MODE_HALF_WIDTH, axis=-1),
            np.mean(np.abs(u1 + B) < MODE_HALF_WIDTH, axis=-1))


def run_hash(method: str, variant: str, sched: Schedule) -> str:
    """A row's settings hash: guide, variant and every schedule setting (not the seed)."""
    return settings_hash(MODEL, method, sched.settings(), None, study="locked_mode",
                         variant=variant, schedule=asdict(sched), start=START,
                         tolerance=RULE_TOLERANCE, batch_steps=BATCH_STEPS)


def _run(method: str, variant: str, seeds: list[int], sched: Schedule, profile: str) -> RunSpec:
    spec = REGISTRY[MODEL]
    return RunSpec(spec, method, sched.settings(), tuple(seeds), spec.data_key(),
                   run_hash(method, variant, sched), profile, "vi")


def _identities(method: str, seed: int, sched: Schedule) -> list[tuple]:
    data = json.dumps(REGISTRY[MODEL].data_key(), sort_keys=True)
    return [store.identity({"model": MODEL, "method": method, "seed": seed, "data": data,
                            "settings_hash": run_hash(method, v, sched)})
            for v in (DIRECT, TEMPERED)]


@functools.cache
def _reference(quality: str, out_dir: str):
    spec = REGISTRY[MODEL]
    key = spec.data_key()
    return get_reference(spec, spec.data_for(key), key, SITES, out_dir, quality=quality,
                         log=lambda msg: None)


def _finish(run: RunSpec, out, steps: np.ndarray, compile_s: float, cache: str, out_dir,
            variant: str, trajectory: list[list[list[float]]] | None) -> list[dict]:
    """The final fit of one variant through the runner (scored, no draws kept), then where q's
    mass lies and, for the tempered run, its per-stage trajectory."""
    start, other = mode_shares(out.draws["x"], out.draws["y"])
    rows = [base_row(run, s) | {"variant": variant, "latent_dim": 2} for s in run.seeds]
    result = RunResult(
        draws={s: out.draws[s][:, None] for s in SITES},
        grad_evals=steps.astype(float), compile_s=compile_s, run_s=out.run_s, cache=cache,
        log_weights=out.particle_elbos, params_finite=out.params_finite,
        columns={"num_draws": run.settings.num_draws, "num_particles": 1},
        seed_columns={"num_steps": steps, "stage_loss": out.end.loss,
                      "nan_count": out.end.nonfinite_losses.astype(int),
                      "start_mode_share": start, "other_mode_share": other})
    runner.finish_rows(run, registry.resolve(run.method), run.spec.data_for(run.data_key), result,
                       rows, out_dir, lambda: _reference(run.reference_quality, str(out_dir)),
                       keep_draws=False)
    for i, row in enumerate(rows):
        row["trajectory"] = json.dumps(trajectory[i]) if trajectory is not None else ""
    return rows


def _point(beta: float, out, i: int) -> list[float]:
    """One stage of the trajectory: beta, the loss, q's mean u1 and its mode shares."""
    u1 = (out.draws["x"][i] + out.draws["y"][i]) / 2**0.5
    start, other = mode_shares(out.draws["x"][i], out.draws["y"][i])
    return [round(float(v), 5) for v in (beta, out.end.loss[i], np.mean(u1), start, other)]


def run_guide(method: str, seeds: list[int], sched: Schedule, profile: str, out_dir,
              progress=lambda text: None) -> list[dict]:
    """Lock, then the tempered run and the direct fit of one guide for ``seeds`` (together under
    vmap): a row per (variant, seed); an exception fails the rows not yet finished."""
    runs = {v: _run(method, v, seeds, sched, profile) for v in (TEMPERED, DIRECT)}
    done: list[dict] = []
    try:
        programs = AnnealingPrograms(tempered_target, make_guide(method), sched.settings(),
                                     SITES, elbo_particles=sched.elbo_particles)
        keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds, dtype=np.uint32))
        stage_keys = jax.vmap(lambda k: jax.random.split(k, sched.n_stages + 2))(keys)
        state, _ = programs.init(keys, {"beta": 1.0, "lock": 1.0})
        locked, out = programs.stage(state, {"beta": 1.0, "lock": 1.0}, RULE_TOLERANCE,
                                     np.full(len(seeds), sched.lock_batches), stage_keys[:, 0])
        lock_share = np.median(mode_shares(out.draws["x"], out.draws["y"])[0])
        progress(f"{method} locked: {stats_share(lock_share)} of q in the start mode")
        cap = np.full(len(seeds), sched.max_batches)
        total = np.zeros(len(seeds), dtype=np.int64)
        state, points = locked, [[] for _ in seeds]
        for i, beta in enumerate(sched.betas()):
            state, out = programs.stage(state, {"beta": float(beta), "lock": 0.0},
                                        RULE_TOLERANCE, cap, stage_keys[:, i + 1])
            total += out.end.batches
            for s in range(len(seeds)):
                points[s].append(_point(beta, out, s))
            progress(f"{method} tempering stage {i + 1}/{sched.n_stages} beta {beta:.3g} loss "
                     f"{np.nanmedian(out.end.loss):.4g}")
        steps = total * BATCH_STEPS
        done += _finish(runs[TEMPERED], out, steps, programs.compile_s, programs.cache, out_dir,
                        TEMPERED, points)
        _, out = programs.stage(locked, {"beta": 1.0, "lock": 0.0}, NEVER, total,
                                stage_keys[:, -1])
        progress(f"{method} direct fit: {int(total.max())} batches")
        done += _finish(runs[DIRECT], out, steps, programs.compile_s, programs.cache, out_dir,
                        DIRECT, None)
    except Exception as exc:
        finished = {r["variant"] for r in done}
        for variant, run in runs.items():
            if variant not in finished:
                done += [r | {"variant": variant} for r in failed_rows(run, one_line(exc))]
    return done


def stats_share(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "n/a"


def execute(run: StudyRun) -> None:
    """Every guide of the profile; a seed whose rows are both stored ok is skipped on resume."""
    scope, sched = SCOPES[run.profile], SCHEDULES[run.profile]
    for method in scope.methods:
        seeds = run.seeds_to_run(scope, lambda s, m=method: _identities(m, s, sched))
        if seeds:
            run.store.add(run_guide(method, seeds, sched, run.profile, run.out_dir,
                                    run.progress))


STUDY = Study(
    name="locked_mode",
    question="Does tempering the target (beta rising to 1) ease a guide locked in one mode of a "
             "two-mode posterior into covering both, where a direct fit from the same start "
             "stays locked?",
    document="000",
    section="Live variational inference",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="The document's figure for the tempered runs, per guide: top, the loss at "
                   "the end of each stage (median over seeds); bottom, q's mean of u1 = (x + "
                   "y)/√2 per stage and seed (the modes at ±5 dashed; a mean near 0 with both "
                   "modes covered is the posterior's). Crosses at the last stage: the direct "
                   "fits from the same locked start with as many steps.",
    execute=execute,
    program_settings=lambda profile: SCHEDULES[profile],
)

__all__ = ["SCHEDULES", "SCOPES", "STUDY", "Schedule", "execute", "run_guide", "mode_shares",
           "tempered_target"]
