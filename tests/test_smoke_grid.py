"""The smoke grid end to end through the command line: every model, every applicable method."""

from __future__ import annotations

import numpy as np
import pandas as pd

from svi_bench.benchmarks.inference import methods
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.models import REGISTRY


def test_every_model_and_method_has_a_row(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    csv = pd.read_csv(smoke_results / "results.csv")
    assert len(csv) == len(df)
    for spec in REGISTRY.values():
        for method in methods.methods_for(spec):
            rows = df[(df.model == spec.name) & (df.method == method)]
            assert len(rows) == 1, (spec.name, method)
            row = rows.iloc[0]
            assert row.status in ("ok", "failed", "not_applicable")
            if row.status != "ok":
                assert isinstance(row.error, str) and row.error, (spec.name, method)


def test_not_applicable_only_where_the_method_cannot_run(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    na = df[df.status == "not_applicable"]
    assert set(na.method) <= {"autobnaf", "autoiaf"}
    assert set(na.model) == {"coin", "gamma_concentration"}
    assert na.error.str.contains("latent dim").all()


def test_ok_rows_carry_timings_and_diagnostics(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    ok = df[df.status == "ok"]
    assert len(ok) >= 50
    assert (ok.compile_s > 0).all() and (ok.run_s > 0).all() and (ok.grad_evals > 0).all()
    svi = ok[ok.method != "nuts"]
    assert svi.final_loss_mean.notna().all() and svi.final_elbo.notna().all()
    nuts = ok[ok.method == "nuts"]
    assert nuts.max_rhat.notna().all() and nuts.min_ess_bulk.notna().all()
    assert nuts.divergences.notna().all()
    assert ok.verdict.isin(["pass", "warn", "fail"]).all()


def test_artifacts_hold_only_latent_sites(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    for row in df[df.status == "ok"].itertuples():
        spec = REGISTRY[row.model]
        sites = set(latent_info(spec.model, spec.make_data().model_kwargs).sites)
        draws, other, _ = arviz_adapter.load_run(smoke_results / row.artifact)
        assert set(draws) == sites, (row.model, row.method)
        assert all(np.all(np.isfinite(v)) for v in draws.values())
        assert ("losses" in other) == (row.method != "nuts")
