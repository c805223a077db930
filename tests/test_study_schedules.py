"""The ``schedules`` study (002, optimiser schedules and early stopping): the stopping rules on
synthetic loss traces, the compiled early-stopping program against a run of the whole budget,
derive/answer on hand-made tables with known answers, and the study end to end at smoke."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.inference import early_stopping
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.methods import numpyro_guides
from svi_bench.benchmarks.studies import STUDIES, schedules
from svi_bench.benchmarks.studies.schedules_answer import (
    BETTER,
    SAME,
    UNDECIDED,
    WORSE,
    answer,
    derive,
    finding,
)
from svi_bench.models import REGISTRY
from tests.conftest import run_cli

# --- the stopping rules on synthetic traces -------------------------------------------------------


def test_document_rule_counts_consecutive_evaluations_with_validation_above_training():
    train = [0.5] * 7
    val = [0.4, 0.6, 0.6, 0.4, 0.6, 0.6, 0.6]  # the run of 2 is broken, the run of 3 stops
    assert early_stopping.stopping_point("document", 3, train, val) == 7
    assert early_stopping.stopping_point("document", 1, train, val) == 2
    assert early_stopping.stopping_point("document", 3, train, [0.4] * 7) is None
    assert early_stopping.stopping_point("document", 2, train[:3], [0.4, np.nan, np.nan]) == 3


def test_conventional_rule_stops_when_validation_stops_improving_on_its_best():
    val = [1.0, 0.9, 0.95, 0.92, 0.91, 0.93]  # best 0.9 at 2; 3 evaluations without beating it
    assert early_stopping.stopping_point("conventional", 3, [9.0] * 6, val) == 5
    assert early_stopping.stopping_point("conventional", 3, [0.0] * 6,
                                         [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]) is None


def test_no_rule_never_stops():
    assert early_stopping.stopping_point("none", 1, [0.0] * 5, [9.0] * 5) is None


# --- the compiled program -------------------------------------------------------------------------


def test_a_stopped_run_is_a_prefix_of_the_full_run_and_stops_where_the_rule_says():
    spec = REGISTRY["coin"]
    kwargs = spec.make_data().model_kwargs
    n = len(kwargs["data"])
    settings = SVISettings(num_steps=200, num_particles=1, learning_rate=0.05, num_draws=50)
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(3, dtype=np.uint32))
    programs = early_stopping.EarlyStopPrograms(
        spec.model, numpyro_guides.guide_factory(spec, "autonormal", {}), kwargs, kwargs,
        ("latent_fairness",), settings, 20, n, n, keys)
    full = programs.run("none", 3)
    assert (full.steps_run == 200).all() and not full.stopped.any()
    # the training loss per point of an evaluation is the mean of its chunk's step losses / n
    np.testing.assert_allclose(full.train_pp, full.losses.reshape(3, 10, 20).mean(-1) / n,
                               rtol=1e-5)
    stopped = programs.run("conventional", 1)  # stops at the first evaluation not improving
    for i in range(3):
        steps = int(stopped.steps_run[i])
        evals = steps // 20
        expected = early_stopping.stopping_point("conventional", 1, full.train_pp[i],
                                                 full.val_pp[i])
        assert evals == (expected or 10)
        np.testing.assert_array_equal(stopped.losses[i, :steps], full.losses[i, :steps])
        assert np.isnan(stopped.losses[i, steps:]).all()
        np.testing.assert_array_equal(stopped.val_pp[i, :evals], full.val_pp[i, :evals])
    assert (stopped.plateau_scale == 1).all() and stopped.draws["latent_fairness"].shape == (3, 50)


# --- derive and answer on hand-made tables --------------------------------------------------------


def _rows(opt: str, rule: str, lpd, steps, stopped=False, status="ok"):
    return [{"model": "bnn", "method": "autonormal", "seed": s, "optimizer": opt,
             "stop_rule": rule, "status": status, "error": "" if status == "ok" else "boom",
             "test_lpd": v, "test_accuracy": 0.85, "pred_prob_mad": 0.05 + 0.01 * s,
             "pred_prob_mad_floor": 0.02, "ref_test_lpd": -0.30, "steps_run": steps,
             "num_steps": 1000, "stopped_early": stopped, "run_s": 0.5, "compile_s": 10.0,
             "plateau_scale": 1.0, "stop_patience": 5, "eval_every": 20}
            for s, v in enumerate(lpd)]


BASE = np.array([-0.40, -0.42, -0.38, -0.41])


def _table() -> pd.DataFrame:
    rows = (_rows("adam", "none", BASE, 1000)
            + _rows("onecycle", "none", BASE + [0.049, 0.051, 0.050, 0.050], 1000)
            + _rows("onecycle_plateau", "none", BASE - [0.10, 0.11, 0.09, 0.10], 1000)
            + _rows("adam", "document", BASE + [0.001, -0.002, 0.0015, -0.0005], 150, True)
            + _rows("adam", "conventional", BASE[:1], 500, True))
    return derive(pd.DataFrame(rows))


def test_finding_reads_a_paired_difference_against_students_t_of_its_seeds():
    assert finding(0.05, 0.01, 4) == BETTER and finding(-0.05, 0.01, 4) == WORSE
    assert finding(0.01, 0.01, 4) == SAME and finding(0.05, np.nan, 4) == UNDECIDED
    # 2.5 se over 4 seeds: beyond the old 2 se, within t(3) = 3.18; one seed: no noise estimate
    assert finding(0.025, 0.01, 4) == SAME and finding(0.025, 0.01, 30) == BETTER
    assert finding(0.05, 0.01, 1) == UNDECIDED


def test_derive_pairs_seeds_against_constant_adam_and_against_no_stopping():
    t = _table().set_index(["optimizer", "stop_rule"])
    assert t.loc[("onecycle", "none"), "d_lpd_vs_adam"] == pytest.approx(0.05)
    assert t.loc[("onecycle", "none"), "vs_adam"] == BETTER
    assert t.loc[("onecycle_plateau", "none"), "vs_adam"] == WORSE
    assert t.loc[("adam", "document"), "vs_no_stop"] == SAME
    assert t.loc[("adam", "document"), "steps_run"] == 150
    assert t.loc[("adam", "document"), "stopped_frac"] == 1.0
    assert t.loc[("adam", "conventional"), "vs_no_stop"] == UNDECIDED  # one seed: no noise
    assert t.loc[("adam", "none"), "vs_adam"] == t.loc[("onecycle", "none"), "vs_no_stop"] == ""
    assert np.isnan(t.loc[("adam", "none"), "d_lpd_vs_no_stop"])
    assert t.loc[("adam", "none"), "test_lpd"] == pytest.approx(BASE.mean())
    assert t.loc[("adam", "none"), "test_lpd_se"] == pytest.approx(BASE.std(ddof=1) / 2)


def test_the_answer_states_the_step_size_the_rows_ran_with_not_a_typed_in_one():
    rows = pd.DataFrame(_rows("adam", "none", BASE, 1000))
    assert answer(derive(rows)).startswith("Constant Adam without stopping reaches")  # unknown
    rows["settings"] = json.dumps({"learning_rate": 0.02, "num_steps": 1000})
    table = derive(rows)
    assert table["learning_rate"].iloc[0] == 0.02
    assert answer(table).startswith("Constant Adam 0.02 without stopping reaches")


def test_answer_states_each_comparison_with_its_noise():
    text = answer(_table())
    assert "-0.403 ± 0.0085 nats per test point over 4 seeds" in text
    assert "(NUTS reference -0.3)" in text
    assert "OneCycle changes it by +0.05 ± 0.0013 (paired over 4 seeds, ± t(3) = 3.18 se: " \
        "better)" in text
    assert "OneCycle + plateau changes it by -0.1" in text and "worse" in text
    assert "(the earliest it can stop: step 100) the runs stop after (mean) constant Adam: 150 of " \
        "1000 steps, fired in 100% of seeds, run 0.5 s per seed vs 0.5 s" in text
    assert "lpd +0 ± 0.0025 (paired over 4 seeds, ± t(3) = 3.18 se: indistinguishable) vs no " \
        "stopping" in text
    assert "500 of 1000 steps" in text and "(undecided)" in text
    # the closest to the reference among the rows with every seed (not the one-seed row)
    assert "constant Adam with no stopping (mean absolute difference 0.065" in text


def test_failed_runs_are_counted_and_left_out():
    rows = pd.DataFrame(_rows("adam", "none", BASE, 1000)
                        + _rows("onecycle", "none", BASE, 1000, status="failed"))
    t = derive(rows)
    assert list(t.n_ok) == [4, 0] and list(t.first_error) == ["", "boom"]
    assert "4 run(s) did not finish ok" in answer(t)
    assert answer(derive(pd.DataFrame(_rows("adam", "none", BASE, 10, status="failed")))) \
        .startswith("No run")


# --- end to end -------------------------------------------------------------------------------------


def test_study_is_registered_with_a_profile_each():
    assert STUDIES["schedules"] is schedules.STUDY
    assert set(schedules.STUDY.scopes) == {"smoke", "quick", "paper"}
    assert len(schedules.SCOPES["smoke"].variants) == 9


def test_smoke_study_end_to_end_and_resume(smoke_studies):
    out = smoke_studies.out
    smoke_studies.run("schedules")
    df = pd.read_parquet(out / "results.parquet")
    df = df[df.study == "schedules"]  # the folder holds every smoke study
    assert len(df) == 3 * 3 * 2 and set(df.status) == {"ok"}, df[["variant", "error"]]
    assert set(df.optimizer) == {"adam", "onecycle", "onecycle_plateau"}
    full = df[df.stop_rule == "none"]
    assert (full.steps_run == full.num_steps).all() and not full.stopped_early.any()
    assert (df.steps_run % df.eval_every == 0).all() and (df.steps_run <= df.num_steps).all()
    assert df.test_lpd.notna().all() and df.pred_prob_mad.notna().all()
    assert (df.compile_s > 0).all() and (df.run_s > 0).all()
    # through the grid's runner: the draws as an ArviZ artifact, the plateau rule on the steps
    # each seed ran (an early stop is not a run of non-finite losses)
    assert df.artifact.map(lambda a: (out / a).is_file()).all()
    assert (df.nan_count == 0).all() and df.final_loss_mean.notna().all()
    meta = json.loads((out / "studies" / "schedules.json").read_text())
    assert meta["answer"].startswith("Constant Adam 0.01") and meta["rows"] == 18
    table = pd.read_parquet(out / "studies" / "schedules.parquet")
    assert len(table) == 9 and (table.n_ok == 2).all()
    again = run_cli("study", "schedules", "--profile", "smoke", "--out", str(out), "--resume",
                    "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    again_rows = pd.read_parquet(out / "results.parquet")
    assert (again_rows.study == "schedules").sum() == 18
