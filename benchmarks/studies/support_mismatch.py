"""``support_mismatch`` (001, "Heads or Tails" and "Linear Regression With Outliers"): a guide
whose support does not match its parameter's, against its support-matched counterpart.

Two [0, 1] parameters, each fitted by an untransformed Normal (mismatched: its draws leave
[0, 1], where the Uniform prior scores -inf and that ELBO term +inf) and by guides that stay in
[0, 1] (matched: a Beta, or AutoNormal, which draws in the unconstrained space and maps back):

* ``coin``'s ``latent_fairness``: the model's own guides ``manual:normal`` (the document's
  Normal) and ``manual:beta``, plus ``autonormal``;
* ``linreg_outliers``'s outlier fraction ``Q``: the document's guide ``manual:independent``
  (its Beta for Q), plus ``autonormal``, against ``manual:normal_q``, the same guide with the
  document's rejected Gaussian on Q (``guide_normal_q``). That guide lives here, not among the
  model's guides: the grid runs the document's guide, and editing the model module would make
  its shipped reference stale.

Every fit is the grid's cell (the profile's settings, the grid's ``fit_svi`` program, scores and
verdict through the runner, no draws kept) under the study's identity, so a grid run of the same
guide is not replaced, and its row keeps the fitted parameters (``guide_params``, as
``parameter_recovery``'s) for the document's figure: the fitted densities of the [0, 1]
parameter. Table and answer: ``support_mismatch_answer``.
"""

from __future__ import annotations

import dataclasses
import json

import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.primitives import Messenger

from svi_bench.benchmarks.grid import run_spec, store
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.benchmarks.studies.parameter_recovery import fit_rows
from svi_bench.benchmarks.studies.support_mismatch_answer import (
    MATCHED,
    MISMATCHED,
    answer,
    derive,
    figure,
)
from svi_bench.models import REGISTRY, ModelSpec
from svi_bench.models.linreg_outliers import guide_independent

NAME = "support_mismatch"
NORMAL_Q = "normal_q"


class _ReplaceSite(Messenger):
    """Draws sample site ``name`` from ``fn`` instead of the distribution the guide gives."""

    def __init__(self, name: str, replacement) -> None:
        self.name, self.replacement = name, replacement
        super().__init__()

    def process_message(self, msg) -> None:
        if msg["type"] == "sample" and msg["name"] == self.name:
            msg["fn"] = self.replacement


def guide_normal_q(x, yerr, y=None) -> None:
    """``linreg_outliers``'s document guide with Q ~ Normal(Q_mu, Q_sig), the document's
    unnamed alternative without its transform (Q_mu 0.5 on the real line, Q_sig 0.1): every
    other site as the document's guide; its Beta's parameters are hidden (not fitted)."""
    q_mu = numpyro.param("Q_mu", 0.5, constraint=constraints.real)
    q_sig = numpyro.param("Q_sig", 0.1, constraint=constraints.positive)
    with numpyro.handlers.block(hide=["Q_A", "Q_B"]), _ReplaceSite("Q", dist.Normal(q_mu, q_sig)):
        guide_independent(x, yerr, y)


#: Per model, the guides fitted and whether their support matches the parameter's.
ROLES: dict[str, dict[str, str]] = {
    "coin": {"manual:normal": MISMATCHED, "manual:beta": MATCHED, "autonormal": MATCHED},
    "linreg_outliers": {f"manual:{NORMAL_Q}": MISMATCHED, "manual:independent": MATCHED,
                        "autonormal": MATCHED},
}
_SMOKE = {"coin": ("manual:normal", "manual:beta")}
"""Smoke (CI) fits coin's two guides only: a linreg_outliers fit is as dear as all of them."""
_VARIANTS = (Variant(MISMATCHED, {"variant": MISMATCHED}), Variant(MATCHED, {"variant": MATCHED}))


def _methods(cells: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for methods in cells.values() for m in methods))


_ALL = {model: tuple(roles) for model, roles in ROLES.items()}
#: Which guides each profile fits per model (the scope records them for the fingerprint).
CELLS = {"smoke": _SMOKE, "quick": _ALL, "paper": _ALL}
SCOPES = {
    "smoke": Scope(tuple(_SMOKE), _methods(_SMOKE), 2, _VARIANTS),
    "quick": Scope(tuple(ROLES), _methods(_ALL), 20, _VARIANTS),
    "paper": Scope(tuple(ROLES), _methods(_ALL), 40, _VARIANTS),
}


def model_spec(model: str) -> ModelSpec:
    """The registered model, ``linreg_outliers`` with the study's ``normal_q`` guide added."""
    spec = REGISTRY[model]
    if model == "linreg_outliers":
        spec = dataclasses.replace(spec, guides={**spec.guides, NORMAL_Q: guide_normal_q})
    return spec


def case_run(model: str, method: str, seeds: list[int], profile: str) -> RunSpec:
    """The grid's cell of (model, method) at ``profile`` under the study's identity."""
    cell = next(run_spec.plan([model_spec(model)], [method], seeds, profile))
    return dataclasses.replace(cell, hash=settings_hash(model, method, cell.settings,
                                                        cell.data_key, study=NAME))


def _identities(model: str, method: str, seed: int, profile: str) -> list[tuple]:
    run = case_run(model, method, [seed], profile)
    return [store.identity({"model": model, "method": method, "seed": seed,
                            "settings_hash": run.hash,
                            "data": json.dumps(run.data_key, sort_keys=True)})]


def run_case(model: str, method: str, seeds: list[int], profile: str, out_dir) -> list[dict]:
    """One cell's fits (``parameter_recovery.fit_rows``: scored, with the fitted parameters the
    figure draws), tagged with the guide's role."""
    rows = fit_rows(case_run(model, method, seeds, profile), out_dir)
    return [row | {"variant": ROLES[model][method]} for row in rows]


def execute(run: StudyRun) -> None:
    """Every guide of every model at the profile; a seed stored ok is skipped on resume."""
    scope = SCOPES[run.profile]
    for model, methods in CELLS[run.profile].items():
        for method in methods:
            seeds = run.seeds_to_run(scope, lambda s, m=model, g=method: _identities(
                m, g, s, run.profile))
            if seeds:
                run.progress(f"{model} {method}: fitting {len(seeds)} seeds")
                run.store.add(run_case(model, method, seeds, run.profile, run.out_dir))


STUDY = Study(
    name=NAME,
    question="How often and how badly does a guide whose support exceeds its parameter's (a "
             "Normal on a [0, 1] parameter) fail, against guides whose support matches: coin's "
             "fairness and the outlier fraction Q of the linear regression?",
    document="001",
    section="Heads or Tails: A Simple Model",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Per model and guide (red: support mismatched, blue: matched): top, the "
                   "share of seeds that failed (a failed fit, a non-finite loss or a fail "
                   "verdict) with its 95% Wilson interval; middle, W1 to the reference of each "
                   "seed that ran (marginal, reference sd), the noise floor as a grey tick; "
                   "bottom, the document's figure: each seed's fitted density of the [0, 1] "
                   "parameter from its parameters (coin: over the exact posterior's "
                   "histogram), the support's edges dashed.",
    execute=execute,
)

__all__ = ["CELLS", "ROLES", "SCOPES", "STUDY", "execute", "guide_normal_q", "model_spec",
           "run_case"]
