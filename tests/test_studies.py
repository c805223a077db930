"""Studies: declared as data, planned into grid cells, answered from the numbers.

The derive/answer functions are checked on hand-made tables whose answer is known; the smoke
profile of each study runs end to end through ``svi-bench study`` (rows tagged, table written,
``--resume`` reruns nothing, the report gets a page).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from svi_bench.benchmarks import cli
from svi_bench.benchmarks.studies import PLANNED, STUDIES, particles, seeds, stats
from svi_bench.benchmarks.studies.base import (
    TaggingStore,
    identities,
    plan_study,
    select_rows,
)
from tests.conftest import run_cli
from tests.test_report_browser import ARTIFACTS, browser  # noqa: F401 (the browser fixture)

# --- the statistics -----------------------------------------------------------------------------


def test_wilson_interval_matches_the_formula():
    k, n, z = 5, 8, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = stats.wilson(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9)
    assert hi == pytest.approx(centre + half, abs=1e-9)
    assert all(math.isnan(v) for v in stats.wilson(0, 0))


def test_loglog_slope_recovers_a_power_law_and_its_noise():
    d = np.array([8, 12, 20, 36, 68])
    slope, se, n = stats.loglog_slope(d, 3.0 * d ** 1.5)
    assert (slope, n) == (pytest.approx(1.5), 5) and se == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    slope, se, _ = stats.loglog_slope(d, d ** 1.5 * np.exp(rng.normal(0, 0.2, len(d))))
    assert se > 0.01 and abs(slope - 1.5) < 4 * se
    assert math.isnan(stats.loglog_slope([8, 12], [1.0, 2.0])[1])  # two points: no se


# --- derive and answer on tables whose answer is known --------------------------------------------


def _rows(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"status": ["ok"] * n, "verdict": ["pass"] * n, "reference_ok": [1.0] * n,
            "run_s": [1.0] * n, "compile_s": [1.0] * n, "grad_evals": [100.0] * n}
    return pd.DataFrame({**base, **columns})


def _particle_rows(elbo_by_k: dict[int, float], spread: float) -> pd.DataFrame:
    rows = []
    for mode in (particles.FIXED, particles.BUDGET):
        for k, elbo in elbo_by_k.items():
            for seed, shift in enumerate((-spread, 0.0, spread)):
                rows.append({"model": "coin", "method": "manual:beta", "seed": seed, "mode": mode,
                             "particles": k, "num_steps": 800 // k if mode == particles.BUDGET
                             else 100, "final_elbo": elbo + shift, "final_loss_mean": -elbo,
                             "final_loss_sd": 1.0 / math.sqrt(k), "converged_step": 50.0,
                             "run_s": 0.1 * k})
    return _rows(**{k: [r[k] for r in rows] for k in rows[0]})


def test_particles_answer_says_more_particles_pay_only_beyond_the_noise():
    table = particles.derive(_particle_rows({1: -20.0, 8: -15.0}, spread=0.1))
    text = particles.answer(table)
    assert "a gain counts beyond t(2) = 4.30 standard errors at 95%" in text
    assert "8 particles beat it, so more particles pay; the largest gain, 8 particles, 5 ± 0.082" \
        in text
    assert "take the end-state loss sd from 1 to 0.354 nats for 8x the run time" in text
    noisy = particles.answer(particles.derive(_particle_rows({1: -20.0, 8: -19.9}, spread=1.0)))
    assert "none beats it, so more particles do not clearly pay" in noisy
    worse = particles.answer(particles.derive(_particle_rows({1: -15.0, 8: -20.0}, spread=0.1)))
    assert "none beats it" in worse and "the best of them, 8 particles, -5" in worse


def _seed_rows(elbo_by_k: dict[int, list[float]]) -> pd.DataFrame:
    """Fixed-budget rows of one (model, method) with the given final ELBO per seed and count."""
    rows = [{"model": "coin", "method": "manual:beta", "seed": seed, "mode": particles.BUDGET,
             "particles": k, "num_steps": 6400 // k, "final_elbo": elbo,
             "final_loss_mean": -elbo, "final_loss_sd": 1.0, "converged_step": 50.0,
             "run_s": 0.1 * k}
            for k, elbos in elbo_by_k.items() for seed, elbo in enumerate(elbos)]
    return _rows(**{k: [r[k] for r in rows] for k in rows[0]})


def test_particles_tests_every_count_not_the_best_of_seven_picked_after_the_fact():
    """Seven counts, four seeds each, all one ELBO but for seed noise; the best count beats one
    particle by 4 standard errors. Picked after the fact and tested alone (2 se, or t(3) =
    3.18), that is a gain; tested as one of six comparisons (Bonferroni: t(3) = 6.23), it is
    not. A real gain of 10 standard errors still counts."""
    noise = [-0.6, -0.2, 0.2, 0.6]  # sd 0.516, se 0.258 per count; combined se 0.365
    flat = {k: [-20.0 + e for e in noise] for k in particles.COUNTS}
    flat[8] = [-20.0 + 1.46 + e for e in noise]  # 4.0 combined se above one particle
    text = particles.answer(particles.derive(_seed_rows(flat)))
    assert "t(3) = 6.23 standard errors at 95% Bonferroni-corrected over 6 comparisons" in text
    assert "none beats it, so more particles do not clearly pay" in text, text
    flat[8] = [-20.0 + 3.65 + e for e in noise]
    text = particles.answer(particles.derive(_seed_rows(flat)))
    assert "8 particles beat it, so more particles pay" in text, text


def test_decisions_use_students_t_for_the_seeds_not_two_standard_errors():
    """Four seeds, a difference of 2.5 standard errors: beyond 2 (the old rule) but within
    t(3) = 3.18, so indistinguishable; with 30 seeds t(29) = 2.05 and it is a difference."""
    assert stats.t_multiplier(3) == pytest.approx(3.1824, abs=1e-4)
    assert stats.decide(2.5, 1.0, 4 - 1) == 0 and stats.decide(-2.5, 1.0, 3) == 0
    assert stats.decide(2.5, 1.0, 29) == 1 and stats.decide(-2.5, 1.0, 29) == -1
    assert stats.decide(2.5, 1.0, 0) is None and stats.decide(2.5, np.nan, 3) is None
    assert stats.t_multiplier(3, tests=6) == pytest.approx(6.2315, abs=1e-4)
    assert stats.rule(3) == "beyond t(3) = 3.18 standard errors at 95%"


def test_seeds_counts_worse_optima_beyond_the_loss_noise_with_an_interval():
    loss = [20.0, 20.1, 20.3, 24.9, 30.0, 26.0]  # sd 0.5: 20.1 and 20.3 are noise, 3 are worse
    verdict = ["pass", "pass", "fail", "fail", "fail", "pass"]
    table = seeds.derive(_rows(model=["linreg_outliers"] * 6, method=["autodiagonalnormal"] * 6,
                               seed=list(range(6)), final_loss_mean=loss,
                               final_loss_sd=[0.5] * 6, verdict=verdict))
    row = table.iloc[0]
    assert (row.n_worse, row.n_fail_in_worse, row.n_fail_at_best) == (3, 2, 1)
    assert (row.frac_worse_lo, row.frac_worse_hi) == pytest.approx(stats.wilson(3, 6))
    text = seeds.answer(table)
    assert "autodiagonalnormal on linreg_outliers on 3/6 seeds" in text
    assert "Of the 3 seeds whose agreement verdict is fail, 2 ended in a worse optimum" in text


def test_an_answer_counts_the_planned_runs_missing_from_the_results():
    rows = _rows(model=["coin"] * 3, method=["automvn"] * 3, seed=[0, 1, 2],
                 final_loss_mean=[1.0, 1.0, np.nan], final_loss_sd=[0.1] * 3)
    rows.loc[2, "status"] = "missing"
    text = seeds.answer(seeds.derive(rows))
    assert text.endswith("1 of 3 planned runs are not in the results (an interrupted or partial "
                         "study): the answer covers the rest.")
    assert "not in the results" not in seeds.answer(seeds.derive(rows.iloc[:2]))


# --- the mechanism -------------------------------------------------------------------------------


def test_a_cell_two_variants_share_is_planned_once_and_selected_for_both():
    planned = plan_study(particles.STUDY, "smoke")
    shared = [p for p in planned if len(p.variants) > 1]
    assert [p.variants for p in shared] == [("fixed_steps_k4", "fixed_budget_k4")]
    assert len({p.cell.hash for p in planned}) == len(planned) == 3
    key = next(k for k, v in identities(planned).items() if len(v) > 1)
    results = pd.DataFrame([dict(zip(("model", "method", "seed", "settings_hash", "data"), key,
                                     strict=True), status="ok")])
    rows = select_rows(particles.STUDY, particles.SCOPES["smoke"].variants, results, planned)
    assert sorted(rows[rows.status == "ok"].variant) == ["fixed_budget_k4", "fixed_steps_k4"]
    assert len(rows) == sum(len(v) for v in identities(planned).values()) == 8  # 6 runs
    assert (rows.status == "missing").sum() == 6  # a planned run not in the table is counted


def test_the_tagging_store_labels_rows_before_they_are_stored():
    planned = plan_study(particles.STUDY, "smoke")

    class Inner:
        out_dir, kept_back, added = None, [], []

        def add(self, rows):
            self.added.extend(rows)

    inner = Inner()
    shared = next(p for p in planned if len(p.variants) > 1)
    TaggingStore(inner, "particles", planned).add([{"settings_hash": shared.cell.hash}])
    assert inner.added == [{"settings_hash": shared.cell.hash, "study": "particles",
                            "variant": "fixed_steps_k4,fixed_budget_k4"}]


def test_every_study_plans_at_every_profile_and_names_its_source():
    for study in STUDIES.values():
        assert study.document and study.section and study.question.endswith("?")
        for profile in ("smoke", "quick", "paper"):
            assert profile in study.scopes, (study.name, profile)
            if study.execute is None:  # grid cells; the others run (or read) their own rows
                assert plan_study(study, profile), (study.name, profile)


# --- the command line ------------------------------------------------------------------------------


def test_study_list_names_every_study_with_its_question_and_section(capsys):
    assert cli.main(["study", "--list"]) == 0
    out = capsys.readouterr().out
    for study in STUDIES.values():
        assert study.name in out and study.section in out and study.question in out
    assert all(name in out for name in PLANNED)


@pytest.mark.parametrize("args,expected", [
    (("study", "nope", "--out", "X"), f"unknown study 'nope'; valid: {', '.join(STUDIES)}"),
    (("study", "warm_start", "--profile", "fast"), "unknown profile 'fast'; valid: smoke, quick, paper"),
    (("study", "particles", "--profile", "fast"), "unknown profile 'fast'; valid: smoke, quick"),
    (("study",), "study needs a NAME or --list"),
    (("study", "seeds", "--seeds", "0,0"), "--seeds must be distinct"),
])
def test_bad_study_input_is_one_line_and_exit_2(args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(list(args)) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "X").exists()


@pytest.fixture(scope="module")
def study_results(smoke_studies) -> Path:
    """Every study at smoke through the command line, into the session's one results folder."""
    # a study that reads the folder's rows (diagnostics) runs after those that write them
    for name in sorted(STUDIES, key=lambda n: STUDIES[n].select is not None):
        proc = smoke_studies.run(name)
        table = pd.read_parquet(smoke_studies.out / "studies" / f"{name}.parquet")
        answer = STUDIES[name].answer(table.drop(columns="profile"))
        assert answer and answer in proc.stdout  # the printed answer is the table's
    return smoke_studies.out


@pytest.mark.slow
def test_each_study_runs_at_smoke_resumes_and_gets_a_report_page(study_results, tmp_path):
    out = study_results
    results = pd.read_parquet(out / "results.parquet")
    for name in (n for n, s in STUDIES.items() if s.select is None):  # diagnostics writes none
        mine = results[results.study == name]
        assert len(mine) and mine.variant.str.len().gt(0).all(), name
    assert set(results.variant[results.study == "particles"]) >= {
        "fixed_steps_k1", "fixed_steps_k4,fixed_budget_k4"}
    before = results.set_index(["model", "method", "seed", "settings_hash"]).started_at
    proc = run_cli("study", "particles", "--profile", "smoke", "--out", str(out), "--resume",
                   "--no-progress")
    assert proc.returncode == 0 and "0 ok, 0 failed" in proc.stdout, proc.stdout + proc.stderr
    after = pd.read_parquet(out / "results.parquet").set_index(
        ["model", "method", "seed", "settings_hash"]).started_at
    pd.testing.assert_series_equal(before.sort_index(), after.sort_index())
    proc = run_cli("report", "--results", str(out), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in STUDIES:
        page = (tmp_path / "report" / "studies" / f"{name}.html").read_text()
        assert str(escape(STUDIES[name].section)) in page and 'class="answer"' in page
        assert f"../img/studies/{name}.png" in page, page[:2000]
    assert 'href="studies/particles.html"' in (tmp_path / "report" / "index.html").read_text()


@pytest.mark.slow
@pytest.mark.browser
def test_a_study_page_in_headless_chromium(browser, study_results, tmp_path):  # noqa: F811
    """The scaling page loads without errors, its figure decodes; a screenshot is kept."""
    from svi_bench.reports.build import build_report

    index = build_report(study_results, tmp_path / "report")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((index.parent / "studies" / "scaling.html").as_uri())
    assert page.locator("p.answer").inner_text().startswith("The document (001) fits the centred")
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "study-scaling.png"), full_page=True)
    assert not errors, errors


def test_rows_of_a_studys_own_programs_stay_off_the_leaderboard(tmp_path):
    """A study's own programs (annealing stages, ...) share model, method and seed with grid runs;
    the report's loader must keep showing the grid run, not the newest stage row."""
    from svi_bench.benchmarks.grid import store
    from svi_bench.benchmarks.studies.base import OwnRowsStore
    from svi_bench.reports.loader import grid_rows, latest_variant

    results = store.ResultsStore(tmp_path)
    key = {"model": "coin", "method": "autonormal", "seed": 0, "data": "{}", "status": "ok",
           "error": "", "profile": "smoke"}
    results.add([{**key, "settings_hash": "grid", "started_at": "2026-01-01T00:00:00"}])
    OwnRowsStore(results, "annealing").add(
        [{**key, "settings_hash": "stage3", "variant": "annealed",
          "started_at": "2026-01-02T00:00:00"}])
    df = results.frame()
    assert list(df["study_program"].fillna(False)) == [False, True]
    assert list(latest_variant(df)["settings_hash"]) == ["stage3"]  # what went wrong before
    assert list(latest_variant(grid_rows(df))["settings_hash"]) == ["grid"]
