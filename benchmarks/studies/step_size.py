"""``step_size`` (002, "Tips & Tricks"): how much does a guide's verdict depend on the step size?

Each (model, NumPyro guide) cell of the grid run again at the same step budget (the profile's
steps and particles for that model) under a small grid of constant Adam rates and under the
document's OneCycle schedule (its peak, ``schedules.OPTIMIZER_RATES["onecycle"]``; its shape,
``inference.svi.ONECYCLE``), and at the default rate with the guide's ``init_scale`` at 0.01.
The ``default`` variant is the leaderboard's own cell (no override: the profile's rate for the
model), so its verdict is the leaderboard's. The study's cells are grid
cells (``run --set learning_rate=...``); a rate equal to a model's default is that cell, run once.
The table, answer and figure are ``step_size_answer``.
"""

from __future__ import annotations

from svi_bench.benchmarks.studies.base import Scope, Study, Variant
from svi_bench.benchmarks.studies.schedules import OPTIMIZER_RATES
from svi_bench.benchmarks.studies.step_size_answer import DEFAULT, answer, derive, figure

RATES = (1e-3, 5e-3, 2e-2, 5e-2)
"""Constant Adam rates around the quick profile's 5e-3 (and the 1e-2 of some models)."""
ONECYCLE = "onecycle"
INIT_SCALE = 0.01
"""A guide's initial scale a tenth of NumPyro's default (0.1), at the default rate: on a posterior
whose sd is 0.01 the default's failures are a scale still shrinking from 0.1 (the unseen-posterior
experiment, ``docs/guide/studies.md``); the variant asks whether the start decides elsewhere."""


def rate_variant(rate: float) -> Variant:
    return Variant(f"adam_{rate:g}", {"schedule": "adam"}, {"learning_rate": rate})


def _variants(rates: tuple[float, ...]) -> tuple[Variant, ...]:
    default = Variant(DEFAULT, {"schedule": DEFAULT})
    onecycle = Variant(ONECYCLE, {"schedule": ONECYCLE},
                       {"optimizer": ONECYCLE, "learning_rate": OPTIMIZER_RATES[ONECYCLE]})
    start = Variant(f"init_scale_{INIT_SCALE:g}", {"schedule": "init_scale"},
                    {"guide_options": {"init_scale": INIT_SCALE}})
    return (default, *map(rate_variant, rates), onecycle, start)


QUICK_MODELS = ("coin", "correlated_gaussian", "linreg_outliers", "hierarchical_linreg")
"""Four posteriors of different shapes whose references ship with the suite (no NUTS to run)."""
GUIDES = ("autonormal", "automvn")
"""The two guides of the unseen-posterior question (mean-field and full-rank Gaussian)."""

SCOPES = {
    # smoke (the test suite): one cheap cell, the default, one other rate and OneCycle
    "smoke": Scope(("coin",), ("autonormal",), 2, _variants((5e-2,))),
    "quick": Scope(QUICK_MODELS, GUIDES, 4, _variants(RATES)),
    "paper": Scope(QUICK_MODELS, ("autonormal", "autodiagonalnormal", "automvn"), 8,
                   _variants(RATES)),
}

STUDY = Study(
    name="step_size",
    question="How much does a guide's verdict depend on the step size: for which (model, guide) "
             "pairs is the leaderboard's verdict an artefact of the default rate, and which "
             "single rate does best across models?",
    document="002",
    section="Tips & Tricks",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Per (model, guide) and optimiser at the same step budget: colour, the median "
                   "over seeds of the headline agreement metric (marginal W1 in reference sd; "
                   "lower is better); text, the worst verdict over seeds and that median. "
                   "'default' is the leaderboard's cell (the profile's rate, in brackets).",
)

__all__ = ["GUIDES", "INIT_SCALE", "QUICK_MODELS", "RATES", "SCOPES", "STUDY", "rate_variant"]
