"""The field's contenders (Pathfinder, multi-path Pathfinder, MCLMC, MAMS, flow:rqs) through the
command line on a smoke grid of their own (``contender_results``): every (model, contender) has a
row, the ones that cannot run say why, and every ok row carries what its family has."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring.verdict import LEVELS
from tests.conftest import CONTENDER_MODELS, CONTENDERS

ONE_DIMENSIONAL = ("coin",)
NEEDS_2D = {"mclmc": "MCLMC and MAMS need a latent dimension of at least 2 (this model has 1)",
            "mams": "MCLMC and MAMS need a latent dimension of at least 2 (this model has 1)",
            "flow:rqs": "a coupling flow needs a latent dimension of at least 2"}


def _rows(folder) -> pd.DataFrame:
    return pd.read_parquet(folder / "results.parquet")


def test_every_model_and_contender_has_one_row_and_only_1d_models_refuse(contender_results):
    df = _rows(contender_results)
    assert sorted(zip(df.model, df.method, strict=True)) == sorted(
        (m, c) for m in CONTENDER_MODELS for c in CONTENDERS)
    not_ok = {(r.model, r.method): (r.status, r.error) for r in df[df.status != "ok"].itertuples()}
    expected = {(m, c): ("not_applicable", why) for m in ONE_DIMENSIONAL
                for c, why in NEEDS_2D.items()}
    assert set(not_ok) == set(expected), not_ok
    for key, (status, why) in expected.items():
        assert not_ok[key][0] == status and why in not_ok[key][1], not_ok[key]


def test_ok_rows_carry_what_their_family_has(contender_results):
    df = _rows(contender_results)
    ok = df[df.status == "ok"]
    assert ok.verdict.isin(LEVELS).all()
    assert (ok.grad_evals > 0).all() and (ok.compile_s > 0).all() and (ok.run_s > 0).all()
    assert dict(zip(ok.method, ok.family, strict=False)) == {
        "pathfinder": "vi", "multipathfinder": "vi", "mclmc": "mcmc", "mams": "mcmc",
        "flow:rqs": "vi"}
    mcmc = ok[ok.family == "mcmc"]
    assert mcmc.max_rhat.notna().all() and mcmc.min_ess_bulk.notna().all()
    assert ok[ok.method == "mclmc"].divergences.isna().all()  # it cannot diverge: no made-up 0
    assert ok[ok.method == "mams"].divergences.notna().all()
    traced = ok[ok.method.isin(["pathfinder", "flow:rqs"])]  # a loss trace and log weights
    assert traced.final_loss_mean.notna().all() and traced.final_elbo.notna().all()
    assert traced.psis_khat.notna().all()
    multi = ok[ok.method == "multipathfinder"]  # resampled: no density of its own, its own k-hat
    assert multi.psis_khat.isna().all() and "pathfinder_khat" in multi.columns
    for row in ok.itertuples():
        draws, other, attrs = arviz_adapter.load_run(contender_results / row.artifact)
        assert all(np.all(np.isfinite(v)) for v in draws.values()), (row.model, row.method)
        assert ("num_steps" in other) == (row.family == "mcmc"), (row.model, row.method)


def test_the_manifest_describes_the_contenders_for_the_report(contender_results):
    manifest = json.loads((contender_results / "manifest.json").read_text())
    for name in CONTENDERS:
        entry = manifest["methods"][name]
        assert entry["origin"]["kind"] == "builtin" and entry["description"]
    assert manifest["methods"]["mclmc"]["family"] == "mcmc"
    assert "Zhang" in manifest["methods"]["pathfinder"]["description"]
