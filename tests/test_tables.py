"""``reports.tables.summarise``: one (model, method) over its seeds, as every report page shows it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from svi_bench.reports.tables import Summary, fmt, fmt_speedup, summarise, summarise_all


def _row(method: str, seed: int, status: str = "ok", **extra) -> dict:
    row = {"model": "m", "method": method, "seed": seed, "status": status, "error": "",
           "warning": "", "verdict": "", "verdict_reason": ""}
    row.update(extra)
    return row


@pytest.fixture
def df() -> pd.DataFrame:
    rows = [
        _row("nuts", 1, compile_s=3.0, run_s=1.0, grad_evals=6000.0, w1_max=0.05,
             verdict="pass", verdict_reason="nuts fine", reference_ok=True),
        _row("nuts", 0, compile_s=1.0, run_s=3.0, grad_evals=2000.0, w1_max=0.07,
             verdict="warn", verdict_reason="2 divergences", reference_ok=True),
        # the guide: a pass seed, a fail seed, a failed seed (its numbers must not count), and
        # a seed whose evaluation failed (ok, but no verdict)
        _row("g", 0, compile_s=0.5, run_s=0.5, grad_evals=100.0, w1_max=0.1, w1_max_floor=0.02,
             psis_khat=0.3, verdict="pass", verdict_reason="all within", reference_ok=True),
        _row("g", 1, compile_s=1.5, run_s=0.1, grad_evals=300.0, w1_max=0.9, w1_max_floor=0.04,
             psis_khat=np.nan, verdict="fail", verdict_reason="w1_max=0.9 beyond fail",
             reference_ok=False, warning="loss shows no plateau"),
        _row("g", 2, status="failed", error="ValueError: boom", w1_max=50.0, grad_evals=1e9),
        _row("g", 3, compile_s=1.0, run_s=0.3, grad_evals=200.0, w1_max=0.3,
             verdict="", verdict_reason="evaluation failed: KeyError: 'x'", reference_ok=True),
        _row("h", 0, status="not_applicable", error="needs a latent dimension of at least 2"),
        _row("h", 1, status="not_applicable", error="needs a latent dimension of at least 2"),
        {**_row("g", 0, compile_s=9.0, run_s=9.0, w1_max=9.0, verdict="fail"), "model": "other"},
    ]
    return pd.DataFrame(rows)


def test_worst_verdict_counts_and_reasons_over_ok_seeds(df):
    s = summarise(df, "m", "g")
    assert s.seeds == [0, 1, 2, 3] and (s.n_ok, s.n_failed, s.n_na) == (3, 1, 0)
    assert s.status == "partial" and s.verdict == "fail" and s.label == "fail"
    assert s.css == "verdict-fail"
    assert s.verdict_counts == {"pass": 1, "fail": 1}
    # the reasons of the worst level and of the unjudged seed, not of the passing one
    assert s.verdict_reasons == ["w1_max=0.9 beyond fail", "evaluation failed: KeyError: 'x'"]
    assert s.errors == ["ValueError: boom"] and s.warnings == ["loss shows no plateau"]
    assert s.reason == ("failed: ValueError: boom | w1_max=0.9 beyond fail; "
                        "evaluation failed: KeyError: 'x'")
    assert s.counts_text == "1 pass, 1 fail, 1 failed of 4 seeds"
    assert s.reference_ok is False  # one ok seed leaned on a failed reference


def test_inconclusive_is_its_own_level_between_pass_and_warn():
    """A seed whose noise floors could not fail is shown as inconclusive, never as pass: it
    outranks pass, a warn outranks it, and the counts name it."""
    rows = [_row("g", 0, verdict="pass", verdict_reason="fine"),
            _row("g", 1, verdict="inconclusive", verdict_reason="no conclusive metric")]
    s = summarise(pd.DataFrame(rows), "m", "g")
    assert (s.verdict, s.label, s.css) == ("inconclusive", "inconclusive", "verdict-inconclusive")
    assert s.counts_text == "1 pass, 1 inconclusive of 2 seeds"
    assert s.verdict_reasons == ["no conclusive metric"]
    rows.append(_row("g", 2, verdict="warn", verdict_reason="w1_max"))
    assert summarise(pd.DataFrame(rows), "m", "g").verdict == "warn"


def test_leaderboard_counts_and_styles_every_verdict_level():
    """One list of levels (``verdict.LEVELS``) feeds the per-method counts and the styles."""
    from svi_bench.benchmarks.scoring.verdict import LEVELS
    from svi_bench.reports.context import COUNT_COLUMNS, new_counts
    from svi_bench.reports.templates import CSS, INDEX

    assert [key for _, key in COUNT_COLUMNS][:len(LEVELS)] == list(LEVELS)
    assert LEVELS == ("pass", "inconclusive", "warn", "fail")
    assert set(LEVELS) <= set(new_counts())
    for level in LEVELS:
        assert f".verdict-{level} " in CSS and f'class="entry verdict-{level}"' in INDEX, level


def test_values_are_medians_over_ok_seeds_and_ignore_nan(df):
    s = summarise(df, "m", "g")
    # median of 0.1, 0.9, 0.3: not the failed seed's 50, nor the other model's 9
    assert s.values["w1_max"] == pytest.approx(0.3)
    assert s.spread["w1_max"] == (0.1, 0.9)
    assert s.values["w1_max_floor"] == pytest.approx(0.03)
    assert s.values["psis_khat"] == pytest.approx(0.3)  # the NaN seed is skipped
    assert s.values["grad_evals"] == pytest.approx(200.0)
    assert s.values["wall_s"] == pytest.approx(1.3)  # median of 1.0, 1.6, 1.3
    assert s.key_metric() == ("w1_max", pytest.approx(0.3), pytest.approx(0.03))
    assert math.isnan(s.value("no_such_metric"))


def test_speed_ups_are_nuts_over_the_method(df):
    nuts = summarise(df, "m", "nuts")
    assert nuts.verdict == "warn"  # worst of pass and warn
    assert nuts.values["wall_s"] == 4.0 and nuts.values["run_s"] == 2.0
    assert nuts.values["grad_evals"] == 4000.0
    s = summarise(df, "m", "g", nuts)
    assert s.values["speedup_wall"] == pytest.approx(4.0 / 1.3)
    assert s.values["speedup_run"] == pytest.approx(2.0 / 0.3)
    assert s.values["speedup_grad"] == pytest.approx(4000.0 / 200.0)
    assert (fmt_speedup(s.values["speedup_wall"]), fmt_speedup(s.values["speedup_grad"])) == (
        "3.1×", "20×")
    assert "speedup_wall" not in summarise(df, "m", "g").values  # no NUTS: no speed-up
    every = summarise_all(df, ["m"], ["nuts", "g", "h"])
    assert every[("m", "g")].values["speedup_run"] == pytest.approx(2.0 / 0.3)
    assert every[("m", "nuts")].values["speedup_run"] == pytest.approx(1.0)


def test_not_applicable_missing_and_unjudged(df):
    na = summarise(df, "m", "h")
    assert (na.status, na.label, na.css) == ("not_applicable", "n/a", "status-na")
    assert na.reason == "needs a latent dimension of at least 2" and na.verdict == ""
    missing = summarise(df, "m", "absent")
    assert (missing.status, missing.label, missing.reason) == (
        "missing", "not run", "no row in the results table")
    unjudged = summarise(df[df.seed == 3], "m", "g")
    assert (unjudged.status, unjudged.label, unjudged.css) == ("ok", "not judged", "status-unjudged")
    failed = summarise(df[df.seed == 2], "m", "g")
    assert (failed.status, failed.label, failed.values) == ("failed", "failed", {})
    assert failed.key_metric()[0] == "w1_max" and math.isnan(failed.key_metric()[1])


def test_key_metric_falls_back_in_order():
    s = Summary("m", "g", values={"std_mean_err_max": 0.2, "std_mean_err_max_floor": 0.01,
                                  "pred_prob_mad": 0.03})
    assert s.key_metric() == ("std_mean_err_max", 0.2, 0.01)
    s = Summary("m", "g", values={"w1_max": math.nan, "pred_prob_mad": 0.03,
                                  "pred_prob_mad_floor": 0.02})
    assert s.key_metric() == ("pred_prob_mad", 0.03, 0.02)


@pytest.mark.parametrize(("value", "text"), [
    (math.nan, "–"), (None, "–"), (math.inf, "∞"), (3.0, "3"), (0.12345, "0.123"),
    (1234.5, "1,234"), (2e-4, "2.00e-04"), ("x", "x"),
])
def test_fmt(value, text):
    assert fmt(value) == text


def _chains(seed: int, ess: float, rhat: float = 1.005) -> dict:
    return _row("nuts", seed, family="mcmc", profile="quick", max_rhat=rhat, min_ess_bulk=ess,
                min_ess_tail=ess, divergences=0,
                settings='{"num_chains": 4, "num_samples": 1000, "num_warmup": 500}')


def test_a_sampler_unhealthy_on_every_seed_gets_a_budget_note():
    df = pd.DataFrame([_chains(0, 48.0), _chains(1, 72.0, rhat=1.07), _chains(2, 60.0)])
    note = summarise(df, "m", "nuts").budget_note
    assert note.startswith("m x nuts: the chains failed their own health checks on every seed "
                           "(3 of 3: NUTS ESS 48 < 100; ")
    assert "at the quick profile's budget (num_chains 4, num_warmup 500, num_samples 1000)" in note
    assert "nuts needs more than this budget on this model" in note
    healthy_once = pd.DataFrame([_chains(0, 48.0), _chains(1, 900.0)])
    assert summarise(healthy_once, "m", "nuts").budget_note == ""
    vi = pd.DataFrame([_row("autonormal", 0, family="vi", min_ess_bulk=float("nan"))])
    assert summarise(vi, "m", "autonormal").budget_note == ""
