"""The ``diagnostics`` study: each reference-free signal against the verdict, on tables whose
answer is known, and end to end on a tiny smoke results folder (it runs nothing itself)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.studies import STUDIES, diagnostics
from svi_bench.benchmarks.studies.base import select_own_rows
from svi_bench.benchmarks.studies.diagnostics import derive, select, signals
from tests.conftest import run_cli


def _rows(verdicts, **columns) -> pd.DataFrame:
    """Ok SVI rows of one model, one method per row unless ``method`` is given."""
    n = len(verdicts)
    base = {"model": "m", "method": [f"g{i}" for i in range(n)], "seed": 0,
            "settings_hash": [f"h{i}" for i in range(n)], "data": "{}", "profile": "quick",
            "status": "ok", "verdict": list(verdicts), "verdict_policy": 2,
            "psis_khat": 0.1, "converged_step": 100.0, "final_loss_sd": 0.1,
            "final_loss_mean": 10.0, "final_elbo": -10.0, "final_elbo_se": 0.01}
    base.update(columns)
    return pd.DataFrame(base)


def _get(derived: pd.DataFrame, signal: str, target: str = "fail") -> pd.Series:
    return derived[(derived.signal == signal) & (derived.target == target)].iloc[0]


def test_a_signal_that_flags_exactly_the_failures_has_precision_and_recall_one():
    verdicts = ["fail"] * 6 + ["warn"] * 4 + ["pass"] * 10
    khat = [1.2 if v == "fail" else 0.3 for v in verdicts]
    d = derive(_rows(verdicts, psis_khat=khat))
    r = _get(d, "khat")
    assert (r.n_rows, r.n_flagged, r.n_positive, r.true_positives) == (20, 6, 6, 6)
    assert r.precision == 1.0 and r.recall == 1.0 and r.base_rate == pytest.approx(0.3)
    assert r.precision_lo > r.base_rate  # the Wilson interval clears the base rate
    # for "not pass" (warn or fail) it is exact but incomplete: precision 1, recall 6/10
    loose = _get(d, "khat", "not pass")
    assert loose.precision == 1.0 and loose.recall == pytest.approx(0.6)
    text = diagnostics.sentence(r)
    assert text.startswith("PSIS k-hat above 0.7 flags 6 of 20 rows; 100% of them fail")
    assert "better than chance" in text and "catches 6 of the 6 rows that fail" in text


def test_a_random_signal_is_no_better_than_chance():
    rng = np.random.default_rng(3)
    verdicts = rng.choice(["pass", "warn", "fail"], size=400, p=[0.4, 0.2, 0.4])
    d = derive(_rows(verdicts, psis_khat=rng.uniform(0.0, 1.4, size=400)))
    r = _get(d, "khat")
    assert r.precision < 1 and r.recall < 1
    assert r.precision_lo <= r.base_rate <= r.precision_hi
    assert "no better than chance" in diagnostics.sentence(r)


def test_each_signal_fires_on_its_own_rule():
    rows = pd.concat([
        # k-hat: defined only where finite; autodais has none
        _rows(["fail", "pass"], method=["a", "autodais"], psis_khat=[0.8, math.nan]),
        # no plateau, and a loss sd above 1 nat
        _rows(["fail", "pass"], method=["b", "c"], converged_step=[math.nan, 5.0],
              final_loss_sd=[1.5, 0.5]),
    ], ignore_index=True)
    s = signals(rows)
    assert s["khat"].tolist() == [True, pd.NA, False, False]
    assert s["no_plateau"].tolist() == [False, False, True, False]
    assert s["loss_sd"].tolist() == [False, False, True, False]
    assert s["any"].tolist() == [True, False, True, False]


def test_seed_spread_is_a_group_signal_beyond_twice_the_loss_sd():
    rows = _rows(["fail", "pass", "pass", "pass", "pass"],
                 method=["g", "g", "h", "h", "k"], settings_hash=["x", "x", "y", "y", "z"],
                 final_loss_mean=[10.0, 10.5, 10.0, 10.1, 10.0], final_loss_sd=0.1)
    s = signals(rows)["seed_spread"]
    # g: spread 0.5 > 2 * 0.1 (both seeds flagged); h: 0.1 is not; k: one seed, undefined
    assert s.tolist() == [True, True, False, False, pd.NA]


def test_elbo_gap_is_to_the_best_guide_of_the_same_model_beyond_its_noise():
    rows = _rows(["pass", "pass", "fail", "warn", "pass"], model=["m", "m", "m", "m", "other"],
                 method=["best", "best", "far", "noisy", "alone"],
                 final_elbo=[-10.0, -10.2, -12.0, -11.5, -50.0],
                 final_elbo_se=[0.01, 0.01, 0.05, 1.0, 0.01])
    s = signals(rows)["elbo_gap"]
    # best median -10.1; far 1.9 nats below (> 1, > 2 se); noisy 1.4 below but within 2 se 2.0
    assert s.tolist() == [False, False, True, False, False]


def test_select_reads_judged_svi_rows_under_the_current_policy():
    """NUTS, failed, other-profile and own-program rows (``study_program``, as the studies'
    store marks them) are left out, and a row stored under
    policy 1 that failed on k-hat alone is re-judged first: k-hat must not predict a verdict it
    set itself."""
    own = next((n for n, s in STUDIES.items() if s.execute is not None and s.select is None),
               None)
    rows = _rows(["fail"] * 6, method=["a", "nuts", "b", "c", "d", "e"],
                 status=["ok", "ok", "failed", "ok", "ok", "ok"],
                 profile=["quick", "quick", "quick", "smoke", "quick", "quick"],
                 study=["", "", "", "", own or "", "seeds"],
                 study_program=[None, None, None, None, True if own else None, None],
                 psis_khat=[1.02, 0.1, 0.1, 0.1, 0.1, 0.1], w1_max=0.03, w1_max_floor=0.025,
                 verdict_reason="psis_khat=1.02 beyond fail threshold 0.7",
                 verdict_policy=[math.nan, 2, 2, 2, 2, 2])
    got = select(rows, "quick")
    expected = ["a", "e"] if own else ["a", "d", "e"]
    assert got["method"].tolist() == expected
    assert got["verdict"].tolist()[0] == "pass" and got["stored_verdict"].tolist()[0] == "fail"
    assert got["signal_khat"].tolist()[0] is True
    assert select_own_rows(diagnostics.STUDY, "quick", rows).equals(got)


def test_answer_speaks_of_every_signal_and_of_failed_references():
    verdicts = ["fail"] * 5 + ["pass"] * 5
    d = derive(_rows(verdicts, psis_khat=[1.0] * 5 + [0.2] * 5, reference_ok=[0] * 3 + [1] * 7))
    text = diagnostics.answer(d)
    for label in diagnostics.SIGNALS.values():
        assert label[:1].upper() + label[1:] in text
    assert "3 rows were judged against a reference that failed its gates" in text
    assert diagnostics.answer(derive(pd.DataFrame())).startswith("No judged SVI rows")


@pytest.mark.slow
def test_diagnostics_reads_a_smoke_folder_runs_nothing_and_gets_a_page(tmp_path):
    out = tmp_path / "res"
    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--methods",
                   "nuts,autonormal,autodiagonalnormal,manual:beta", "--seeds", "3",
                   "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = pd.read_parquet(out / "results.parquet")
    proc = run_cli("study", "diagnostics", "--profile", "smoke", "--out", str(out),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 ok, 0 failed, 0 not applicable" in proc.stdout  # it ran nothing
    pd.testing.assert_frame_equal(before, pd.read_parquet(out / "results.parquet"))
    table = pd.read_parquet(out / "studies" / "diagnostics.parquet")
    assert len(table) == len(diagnostics.SIGNALS) * len(diagnostics.TARGETS)
    judged = before[(before.method != "nuts") & (before.status == "ok")]
    assert (table.loc[table.signal == "no_plateau", "n_rows"] == len(judged)).all()
    answer = diagnostics.answer(table.drop(columns="profile"))
    assert answer in proc.stdout
    rows = pd.read_parquet(out / "studies" / "diagnostics.rows.parquet")
    assert len(rows) == len(judged) and "signal_khat" in rows.columns
    proc = run_cli("study", "diagnostics", "--profile", "smoke", "--out", str(out),
                   "--derive-only")
    assert proc.returncode == 0 and answer in proc.stdout, proc.stdout + proc.stderr
    report = tmp_path / "report"
    proc = run_cli("report", "--results", str(out), "--out", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (report / "studies" / "diagnostics.html").read_text()
    assert 'class="answer"' in page and "../img/studies/diagnostics.png" in page
    shutil.rmtree(report)


def test_grid_studies_derive_from_current_verdicts_and_old_tables_say_so():
    """Not only this study: every grid-cell study selects its rows re-judged, and a study page
    whose stored table came from older-policy verdicts says so and how to re-derive it."""
    import json

    from svi_bench.benchmarks.studies import seeds
    from svi_bench.benchmarks.studies.base import plan_study, select_rows
    from svi_bench.reports.study_page import _policy_note

    planned = plan_study(seeds.STUDY, "smoke")
    cell = planned[0].cell
    row = {"model": cell.spec.name, "method": cell.method, "seed": cell.seeds[0],
           "settings_hash": cell.hash, "data": json.dumps(cell.data_key, sort_keys=True),
           "status": "ok", "profile": "smoke", "psis_khat": 1.02, "w1_max": 0.03,
           "w1_max_floor": 0.025, "verdict": "fail",
           "verdict_reason": "psis_khat=1.02 beyond fail threshold 0.7"}
    stored = pd.DataFrame([row])
    rows = select_rows(seeds.STUDY, seeds.STUDY.scopes["smoke"].variants, stored, planned)
    ok = rows[rows.status == "ok"]
    assert ok.verdict.tolist() == ["pass"] and ok.stored_verdict.tolist() == ["fail"]
    assert _policy_note("seeds", ok) == []
    note = _policy_note("seeds", stored)
    assert len(note) == 1 and note[0].startswith("1 of the verdicts this table was derived")
    assert "svi-bench study seeds --derive-only" in note[0]
