"""The ``document_budgets`` study (001, high dimensions): the loss-agreement rank correlation and
the answer on hand-made rows with known answers, the paper plan at the document's settings (one
program per seed), and the study end to end at smoke."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.studies import STUDIES, document_budgets
from svi_bench.benchmarks.studies.base import plan_study
from svi_bench.benchmarks.studies.document_budgets import (
    GUIDES,
    NUTS,
    answer,
    derive,
    seed_rank_correlations,
)


def _rows(w1_by_seed: list[list[float]], guides: tuple[str, ...] = GUIDES) -> pd.DataFrame:
    """Every seed: NUTS and the guides, loss 237 + i for the i-th guide, W1 as given."""
    rows = []
    for seed, w1s in enumerate(w1_by_seed):
        common = {"model": "hierarchical_linreg", "seed": seed, "status": "ok", "cache": "",
                  "seeds_in_program": 1, "compile_s": 1.0, "reference_ok": 1,
                  "host_others_share": 0.0}
        rows.append({**common, "method": NUTS, "run_s": 20.0 + seed, "w1_max": 0.05,
                     "verdict": "pass"})
        for i, (guide, w1) in enumerate(zip(guides, w1s, strict=True)):
            rows.append({**common, "method": guide, "run_s": 4.0, "final_elbo": -(237.0 + i),
                         "final_loss_mean": 237.5 + i, "num_steps": 5000, "num_particles": 100,
                         "w1_max": w1, "verdict": "pass" if w1 < 0.2 else "fail"})
    return pd.DataFrame(rows)


def test_a_loss_ranking_the_guides_as_agreement_does_is_called_so():
    rows = _rows([[0.1, 0.2, 0.3, 0.4, 0.5]] * 3)
    np.testing.assert_allclose(seed_rank_correlations(rows), [1.0, 1.0, 1.0])
    table = derive(rows)
    assert table["rank_corr"].iloc[0] == pytest.approx(1.0) and table["rank_corr_seeds"].iloc[0] == 3
    text = answer(table)
    assert "a lower loss goes with better agreement, so the data agree with ranking by loss" in text
    assert "by loss autodiagonalnormal < automvn < autodais < autobnaf < autoiaf" in text
    assert "autodiagonalnormal 237 ± 0 (trace end 237.5)" in text
    # the document's figures sit beside ours: its DAIS wall time and its diagonal loss
    assert "document 297 s" in text and "autodiagonalnormal 238.69" in text
    g = table.set_index("method").loc["autodais"]
    assert g["speedup_wall"] == pytest.approx(np.mean([21 / 5, 22 / 5, 23 / 5]))


def test_the_reverse_ranking_contradicts_the_document_and_noise_is_not_resolved():
    reverse = _rows([[0.5, 0.4, 0.3, 0.2, 0.1]] * 2)
    assert "so the data contradict ranking by loss" in answer(derive(reverse))
    mixed = _rows([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1],
                   [0.3, 0.1, 0.5, 0.2, 0.4]])
    rho = seed_rank_correlations(mixed)
    np.testing.assert_allclose(rho, [1.0, -1.0, 0.3])
    text = answer(derive(mixed))
    assert "0.1 ± 0.59" in text and "not resolved from zero" in text
    assert "beyond t(2) = 4.30 standard errors at 95%" in text


def test_two_guides_or_one_seed_give_no_decision():
    two = _rows([[0.1, 0.2]] * 3, guides=GUIDES[:2])
    assert seed_rank_correlations(two).isna().all()
    assert "not decidable" in answer(derive(two))
    one = derive(_rows([[0.1, 0.2, 0.3, 0.4, 0.5]]))
    assert math.isnan(one["rank_corr_se"].iloc[0]) and "not decidable" in answer(one)


def test_a_guide_without_a_finished_run_is_named_and_left_out_of_the_ranking():
    rows = _rows([[0.1, 0.2, 0.3, 0.4, 0.5]] * 3)
    dais = rows["method"] == "autodais"
    rows.loc[dais, "status"] = "missing"
    rows.loc[dais, ["run_s", "final_elbo", "w1_max", "verdict"]] = None
    text = answer(derive(rows))
    assert "over the 4 guides, mean over 3 seeds" in text and "autodais 5000" not in text
    assert "No finished run of autodais (0 failed, 3 missing)." in text
    rows.loc[dais, ["status", "error"]] = ["failed", "losses non-finite"]
    assert "autodais (3 failed, 0 missing; the first: losses non-finite)" in answer(derive(rows))
    assert "3 of 18 planned runs are not in the results" in text
    assert answer(derive(rows[rows["method"] == "autodais"])).startswith("No guide's run finished")


def test_the_paper_plan_is_the_documents_budgets_one_program_per_seed():
    planned = plan_study(STUDIES["document_budgets"], "paper")
    scope = document_budgets.SCOPES["paper"]
    assert len(planned) == len(document_budgets.METHODS) * scope.seeds
    assert all(len(p.cell.seeds) == 1 and p.cell.data_key["n_groups"] == 8 for p in planned)
    for p in planned:
        s = p.cell.settings
        if p.cell.method == NUTS:
            assert (s.num_warmup, s.num_samples, s.num_chains) == (2000, 20000, 1)
        elif p.cell.method == "autodais":
            assert (s.num_steps, s.num_particles, s.guide_options["K"]) == (50000, 100, 16)
        else:
            assert (s.num_steps, s.num_particles, s.learning_rate) == (5000, 100, 1e-2)


def test_the_smoke_study_answers_from_its_table(smoke_studies):
    proc = smoke_studies.run("document_budgets")
    table = pd.read_parquet(smoke_studies.out / "studies" / "document_budgets.parquet")
    assert answer(table.drop(columns="profile")) in proc.stdout
    assert set(table["method"]) == set(document_budgets.SCOPES["smoke"].methods)
    assert table["timed_apart"].all() and (table["n_ok"] == 2).all()
