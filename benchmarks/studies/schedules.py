"""``schedules`` (002, "Tips & Tricks"): do the document's optimiser schedule and early stopping
help SVI on the Bayesian neural network?

``bnn`` with AutoNormal (the document's guide) under three optimisers, the settings' ``optimizer``
(``benchmarks.inference.svi.make_optimizer``): constant Adam 0.01 (the document's end-to-end
example), Adam on the document's OneCycle schedule peaking at 0.008, and that chained with
``reduce_on_plateau``; each with no early stopping, the document's rule (validation loss per point
above the training loss per point for ``patience`` evaluations) and the conventional rule
(validation loss not improving for ``patience`` evaluations). The programs are
``benchmarks.inference.early_stopping``: one executable per optimiser, run once per rule with all
seeds under vmap, compile timed apart from each run. Each run is scored like the grid scores
``bnn``, through the grid's runner (``runner.finish_rows``: the loss trace up to the stop, an
ArviZ artifact, held-out log predictive density and accuracy on the test split, and the mean
absolute difference of predictive probabilities from the NUTS reference's with its noise floor).
Rows: one per (optimiser, rule, seed), variant ``<optimizer>/<rule>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax
import numpy as np

from svi_bench.benchmarks.grid import runner, store
from svi_bench.benchmarks.grid.profiles import reference_quality, settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row, one_line
from svi_bench.benchmarks.inference import early_stopping
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.methods import numpyro_guides, registry
from svi_bench.benchmarks.methods.base import RunResult
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.benchmarks.studies.schedules_answer import answer, derive, figure
from svi_bench.models import REGISTRY

MODEL, METHOD = "bnn", "autonormal"
OPTIMIZER_RATES = {"adam": 0.01, "onecycle": 0.008, "onecycle_plateau": 0.008}
"""The document's step sizes: constant Adam 0.01; OneCycle's peak 0.008 (with or without plateau)."""
RULES = tuple(early_stopping.RULES)


@dataclass(frozen=True)
class Plan:
    """What one profile runs: the step budget, ELBO particles, draws scored, how often the
    validation loss is evaluated and the rules' patience (in evaluations), and the optimisers."""

    num_steps: int
    num_particles: int
    num_draws: int
    eval_every: int
    patience: int
    optimizers: tuple[str, ...] = tuple(OPTIMIZER_RATES)

    def settings(self, optimizer: str) -> SVISettings:
        s = SVISettings(num_steps=self.num_steps, num_particles=self.num_particles,
                        learning_rate=OPTIMIZER_RATES[optimizer], num_draws=self.num_draws,
                        optimizer=optimizer)
        s.validate()
        return s


PLANS = {
    "smoke": Plan(num_steps=1000, num_particles=1, num_draws=400, eval_every=25, patience=5),
    "quick": Plan(num_steps=4000, num_particles=2, num_draws=2000, eval_every=50, patience=10),
    # the document: 10000 steps of a one-particle ELBO
    "paper": Plan(num_steps=10000, num_particles=1, num_draws=4000, eval_every=100, patience=10),
}
SEEDS = {"smoke": 2, "quick": 8, "paper": 10}


def variant_name(optimizer: str, rule: str) -> str:
    return f"{optimizer}/{rule}"


def _variants(plan: Plan) -> tuple[Variant, ...]:
    return tuple(Variant(variant_name(o, r), {"optimizer": o, "stop_rule": r})
                 for o in plan.optimizers for r in RULES)


SCOPES = {p: Scope((MODEL,), (METHOD,), SEEDS[p], _variants(plan)) for p, plan in PLANS.items()}


def run_hash(plan: Plan, optimizer: str, rule: str) -> str:
    """A row's settings hash: the optimiser's settings, the rule, its patience and cadence."""
    return settings_hash(MODEL, METHOD, plan.settings(optimizer), _data_key(), study="schedules",
                         rule=rule, patience=plan.patience, eval_every=plan.eval_every)


def _data_key() -> dict:
    return REGISTRY[MODEL].data_key()


def _data() -> str:
    return json.dumps(_data_key(), sort_keys=True)


def _identity(plan: Plan, optimizer: str, rule: str, seed: int) -> tuple:
    return store.identity({"model": MODEL, "method": METHOD, "seed": seed, "data": _data(),
                           "settings_hash": run_hash(plan, optimizer, rule)})


def _run_spec(plan: Plan, optimizer: str, rule: str, seeds: list[int], profile: str) -> RunSpec:
    """One (optimiser, rule) run as a cell of the grid's runner, under the study's identity."""
    return RunSpec(REGISTRY[MODEL], METHOD, plan.settings(optimizer), tuple(seeds), _data_key(),
                   run_hash(plan, optimizer, rule), profile, registry.resolve(METHOD).family)


def _result(out: early_stopping.EarlyStopRun, plan: Plan, rule: str, compile_s: float,
            cache: str) -> RunResult:
    """One rule's run as the runner's result: each seed's loss trace up to its stop (so the
    plateau rule and final loss read the steps it ran), its draws, cost and the study's columns."""
    steps = np.asarray(out.steps_run, dtype=int)
    evals = steps // plan.eval_every
    seeds = np.arange(len(steps))
    return RunResult(
        draws={k: np.asarray(v)[:, None] for k, v in out.draws.items()},
        grad_evals=(steps * plan.num_particles).astype(float), compile_s=compile_s,
        run_s=out.run_s, cache=cache,
        losses=[np.asarray(out.losses[i][:steps[i]]) for i in seeds],
        params_finite=np.asarray(out.params_finite),
        columns={"num_steps": plan.num_steps, "num_particles": plan.num_particles,
                 "num_draws": plan.num_draws, "stop_rule": rule,
                 "stop_patience": plan.patience, "eval_every": plan.eval_every},
        seed_columns={"steps_run": steps, "stopped_early": np.asarray(out.stopped, dtype=bool),
                      "train_loss_pp": np.asarray(out.train_pp)[seeds, evals - 1],
                      "val_loss_pp": np.asarray(out.val_pp)[seeds, evals - 1],
                      "plateau_scale": np.asarray(out.plateau_scale, dtype=float)})


def run_optimizer(optimizer: str, seeds: list[int], plan: Plan, profile: str, ds, sites, reference,
                  out_dir, progress=lambda text: None) -> list[dict]:
    """One optimiser's program compiled once and run under every rule for ``seeds``, each run
    finished by the grid's runner (artifact, predictive scores against the reference, verdict)
    into rows; failures included (an exception fails the rows it reaches with its reason)."""
    spec = REGISTRY[MODEL]
    runs = {r: _run_spec(plan, optimizer, r, seeds, profile) for r in RULES}
    rows = {r: [{**base_row(run, s), "variant": variant_name(optimizer, r)} for s in seeds]
            for r, run in runs.items()}
    finished: set[str] = set()
    try:
        keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds, dtype=np.uint32))
        progress(f"{optimizer}: compiling")
        val = {"x": ds.extras["x_val"], "y": ds.extras["y_val"]}
        programs = early_stopping.EarlyStopPrograms(
            spec.model, numpyro_guides.guide_factory(spec, METHOD, {}), ds.model_kwargs, val, sites,
            plan.settings(optimizer), plan.eval_every, len(ds.model_kwargs["y"]),
            len(val["y"]), keys)
        for rule in RULES:
            progress(f"{optimizer}, stopping rule {rule}")
            out = programs.run(rule, plan.patience)
            runner.finish_rows(runs[rule], registry.resolve(METHOD), ds,
                               _result(out, plan, rule, programs.compile_s, programs.cache),
                               rows[rule], out_dir, lambda: reference)
            finished.add(rule)
            progress(f"{optimizer}/{rule}: steps {int(np.median(out.steps_run))} (median), "
                     f"{out.run_s:.2f} s")
    except Exception as exc:  # an optimiser that cannot run: its rows say why
        reason = one_line(exc)
        for rule, rule_rows in rows.items():
            if rule not in finished:
                for row in rule_rows:
                    row.update(status="failed", error=reason)
    return [row for r in RULES for row in rows[r]]


def execute(run: StudyRun) -> None:
    """Every optimiser of the profile; with ``--resume`` the seeds whose rows are all stored ok
    are skipped (one program serves every rule of a seed)."""
    plan, scope, spec = PLANS[run.profile], SCOPES[run.profile], REGISTRY[MODEL]
    ds = spec.make_data()
    sites = latent_info(spec.model, ds.model_kwargs).sites
    reference = None
    for optimizer in plan.optimizers:
        seeds = run.seeds_to_run(scope, lambda s, o=optimizer: [_identity(plan, o, r, s)
                                                                  for r in RULES])
        if not seeds:
            continue
        if reference is None:
            run.progress("reference")
            reference = get_reference(spec, ds, spec.data_key(), sites, run.out_dir,
                                      quality=reference_quality(run.profile))
        run.store.add(run_optimizer(optimizer, seeds, plan, run.profile, ds, sites, reference,
                                    run.out_dir, run.progress))


STUDY = Study(
    name="schedules",
    question="On the Bayesian neural network, do the document's OneCycle schedule (with or "
             "without reduce_on_plateau) and early stopping on a validation split improve "
             "held-out predictions or cost over constant Adam?",
    document="002",
    section="Tips & Tricks",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Per optimiser and stopping rule (points: seeds; bars: 95% t interval of "
                   "the mean): left, held-out log predictive density per test point (the NUTS reference's "
                   "dashed); middle, mean absolute difference of predictive probabilities from "
                   "the reference's (its noise floor dashed); right, steps run.",
    execute=execute,
    program_settings=lambda profile: {"plan": PLANS[profile], "rates": OPTIMIZER_RATES},
)

__all__ = ["PLANS", "SCOPES", "STUDY", "Plan", "execute", "run_optimizer"]
