"""The ``step_size`` study (002, "Tips & Tricks"): its plan, the table and answer on hand-made rows
whose answer is known, and the smoke profile end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.studies import STUDIES, step_size
from svi_bench.benchmarks.studies.base import plan_study
from svi_bench.benchmarks.studies.schedules import OPTIMIZER_RATES
from svi_bench.benchmarks.studies.step_size_answer import (
    BETTER,
    DEFAULT,
    SAME,
    across_models,
    answer,
    artefacts,
    derive,
)

# --- the plan -----------------------------------------------------------------------------------


def test_a_rate_equal_to_a_models_default_is_its_leaderboard_cell_run_once():
    planned = plan_study(step_size.STUDY, "quick")
    # coin's quick rate is 5e-3: adam_0.005 is its default cell; correlated_gaussian's is 1e-2
    shared = {(p.cell.spec.name, p.cell.method): p.variants for p in planned
              if len(p.variants) > 1}
    assert shared[("coin", "autonormal")] == (DEFAULT, "adam_0.005")
    assert ("correlated_gaussian", "autonormal") not in shared
    pairs = len(step_size.QUICK_MODELS) * len(step_size.GUIDES)
    assert len(planned) == pairs * len(step_size.SCOPES["quick"].variants) - len(shared)
    start = {p.cell.settings.guide_options["init_scale"] for p in planned
             if p.variants == ("init_scale_0.01",)}
    assert start == {step_size.INIT_SCALE}
    onecycle = [p.cell for p in planned if p.variants == ("onecycle",)]
    assert {(c.settings.optimizer, c.settings.learning_rate) for c in onecycle} == {
        ("onecycle", OPTIMIZER_RATES["onecycle"])}
    # the same step budget as the leaderboard's cell of each model
    steps = {(p.cell.spec.name, p.cell.settings.num_steps, p.cell.settings.num_particles)
             for p in planned}
    assert len(steps) == len(step_size.QUICK_MODELS)


# --- the table and the answer on hand-made rows ---------------------------------------------------


def _rows(model, method, variant, w1, verdicts, rate, optimizer="adam"):
    settings = json.dumps({"learning_rate": rate, **({"optimizer": optimizer}
                                                      if optimizer != "adam" else {})})
    return [{"model": model, "method": method, "variant": variant, "seed": s, "status": "ok",
             "w1_max": w, "w1_max_floor": 0.03, "verdict": v, "settings": settings,
             "run_s": 1.0, "compile_s": 2.0} for s, (w, v) in enumerate(zip(w1, verdicts, strict=True))]


P, W, F = "pass", "warn", "fail"
M1_DEFAULT = [0.50, 0.55, 0.60, 0.52]
M2_DEFAULT = [0.10, 0.12, 0.11, 0.10]
ROWS = pd.DataFrame(
    # m1: the default fails; 1e-3 passes with W1 a tenth of it on every seed (an artefact)
    _rows("m1", "autonormal", DEFAULT, M1_DEFAULT, [F] * 4, 5e-3)
    + _rows("m1", "autonormal", "adam_0.001", [w / 10 for w in M1_DEFAULT], [P] * 4, 1e-3)
    + _rows("m1", "autonormal", "onecycle", [0.45, 0.60, 0.50, 0.58], [F] * 4, 8e-3, "onecycle")
    # m2: the default passes; 1e-3 warns on one seed, but its W1 is within the seeds' noise
    + _rows("m2", "automvn", DEFAULT, M2_DEFAULT, [P] * 4, 1e-2)
    + _rows("m2", "automvn", "adam_0.001", [0.10, 0.50, 0.11, 0.20], [P, W, P, P], 1e-3)
    + _rows("m2", "automvn", "onecycle", [0.09, 0.11, 0.10, 0.09], [P] * 4, 8e-3, "onecycle"))


def test_derive_compares_each_variant_with_the_default_seed_by_seed():
    t = derive(ROWS).set_index(["model", "variant"])
    assert list(t.loc[("m1", "adam_0.001"), ["verdict", "learning_rate", "optimizer"]]) == [
        P, 1e-3, "adam"]
    # W1 a tenth of the default's on every seed: the paired log ratio is log(0.1), no noise
    assert t.loc[("m1", "adam_0.001"), "d_log_vs_default"] == pytest.approx(math.log(0.1))
    assert t.loc[("m1", "adam_0.001"), "vs_default"] == BETTER
    # m2 at 1e-3: log ratios 0, log 5, log 1.1/1.1 = 0, log 2 -> mean 0.577, se 0.38: noise
    d = np.log([1.0, 0.5 / 0.12, 1.0, 2.0])
    row = t.loc[("m2", "adam_0.001")]
    assert row.d_log_vs_default == pytest.approx(d.mean())
    assert row.d_log_vs_default_se == pytest.approx(d.std(ddof=1) / 2)
    assert row.vs_default == SAME and row.verdict == W and row.pass_frac == 0.75
    assert t.loc[("m2", "onecycle"), "optimizer"] == "onecycle"
    assert (t.tests == 2).all() and t.loc[("m1", DEFAULT), "vs_default"] == ""


def test_a_verdict_is_an_artefact_only_when_the_agreement_moves_beyond_the_noise():
    t = derive(ROWS)
    found = artefacts(t)
    assert len(found) == 1 and found[0].startswith("m1 x autonormal (fail at the default (adam "
                                                   "0.005): pass at Adam 0.001 (agreement x0.1)")
    assert "The leaderboard's verdict is an artefact of the default (another setting agrees " \
           "better beyond the noise, with another verdict) for m1 x autonormal" in answer(t)
    # m2's warn at 1e-3 is within the noise of its seeds: not an artefact
    assert not any(f.startswith("m2") for f in found)


def test_the_best_single_rate_is_the_best_mean_log_ratio_with_its_noise():
    table = across_models(derive(ROWS))
    assert list(table.variant) == ["adam_0.001", "onecycle"]
    best = table.iloc[0]
    assert best.d == pytest.approx((math.log(0.1) + np.log([1.0, 0.5 / 0.12, 1.0, 2.0]).mean()) / 2)
    text = answer(derive(ROWS))
    assert "counts beyond t(3) = 4.18 standard errors at 95% Bonferroni-corrected over 2" in text
    assert "Best single choice across models: Adam 0.001" in text
    assert "1 pairs pass at it, 1 at the default" in text
    assert "The document recommends \"OneCycle schedule" in text


def test_no_rate_beats_the_defaults_when_all_are_worse():
    rows = ROWS[ROWS.variant == DEFAULT]
    worse = rows.assign(variant="adam_0.05", w1_max=rows.w1_max * np.array([3.0, 3.2, 2.9, 3.1] * 2),
                        settings=json.dumps({"learning_rate": 0.05}), verdict=F)
    text = answer(derive(pd.concat([rows, worse])))
    assert "No single choice does better than each model's own default beyond the noise: the " \
           "best of the others on average, Adam 0.05" in text and "worse)" in text
    assert "The verdict is worse at another setting, beyond the noise, for m1 x autonormal" \
           not in text and "m2 x automvn (pass at the default (adam 0.01): fail at Adam 0.05" in text
    assert "No pair's verdict improves at another setting beyond seed noise." in text


def test_an_initial_scale_variant_is_read_from_the_guide_options_and_named():
    rows = ROWS[ROWS.model == "m1"]
    base = rows[rows.variant == DEFAULT]
    start = base.assign(variant="init_scale_0.01", w1_max=base.w1_max / 5, verdict=W,
                        settings=json.dumps({"learning_rate": 5e-3,
                                             "guide_options": {"init_scale": 0.01}}))
    t = derive(pd.concat([base, start])).set_index("variant")
    assert t.loc["init_scale_0.01", "init_scale"] == 0.01 and np.isnan(t.loc[DEFAULT, "init_scale"])
    assert t.loc["init_scale_0.01", "learning_rate"] == 5e-3
    assert "Best single choice across models: init_scale 0.01 at the default rate, agreement x0.2" \
        in answer(t.reset_index())


def test_failed_and_missing_runs_are_counted():
    rows = ROWS.copy()
    rows.loc[(rows.variant == "onecycle") & (rows.model == "m1"), "status"] = "failed"
    t = derive(rows)
    assert t.set_index(["model", "variant"]).loc[("m1", "onecycle"), "n_failed"] == 4
    assert "Runs that failed: onecycle 4." in answer(t)
    assert answer(derive(pd.DataFrame())) == "No runs of this study are in the results."


# --- end to end -------------------------------------------------------------------------------------


def test_study_is_registered_with_a_profile_each():
    assert STUDIES["step_size"] is step_size.STUDY
    assert set(step_size.STUDY.scopes) == {"smoke", "quick", "paper"}


def test_smoke_study_end_to_end(smoke_studies):
    out = smoke_studies.out
    proc = smoke_studies.run("step_size")
    table = pd.read_parquet(out / "studies" / "step_size.parquet")
    assert list(table.variant) == [DEFAULT, "adam_0.05", "onecycle", "init_scale_0.01"]
    assert (table.n_ok == 2).all() and list(table.optimizer) == ["adam", "adam", "onecycle", "adam"]
    assert list(table.learning_rate) == [0.01, 0.05, OPTIMIZER_RATES["onecycle"], 0.01]
    assert table.init_scale.isna().sum() == 3 and table.init_scale.iloc[-1] == 0.01
    assert table.agreement.notna().all() and (table.agreement_metric == "w1_max").all()
    meta = json.loads((out / "studies" / "step_size.json").read_text())
    assert meta["answer"].startswith("Over 1 (model, guide) pairs") and meta["rows"] == 8
    assert meta["answer"] in proc.stdout


def test_a_variant_that_is_the_default_cell_is_not_a_comparison():
    rows = ROWS[ROWS.model == "m1"]
    rows = rows.assign(settings_hash=rows.variant)  # one cell per variant
    same = rows[rows.variant == DEFAULT].assign(variant="adam_0.005")
    t = derive(pd.concat([rows, same])).set_index("variant")
    assert t.loc["adam_0.005", "vs_default"] == "the default's own runs"
    assert t.loc["adam_0.005", "d_log_vs_default"] == 0.0 and (t.tests == 2).all()
