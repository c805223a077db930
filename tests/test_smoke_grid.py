"""The smoke grid end to end through the command line: every model, every applicable classic
method (NUTS and NumPyro's guides; the contenders have their own grid, test_contenders_grid)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.methods import registry
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring.verdict import LEVELS
from svi_bench.models import REGISTRY
from tests.conftest import CONTENDERS

#: Every smoke-grid row that is not ``ok``, with the reason it must give. A method that starts
#: failing at run time, or a method that stops (or starts) applying, changes this set: update it
#: on purpose, never by accident. Every other row of the grid must be ok.
FLOW_NEEDS_2D = "needs a latent dimension of at least 2 (NumPyro refuses latent dim = 1)"
ONE_DIMENSIONAL = ("coin", "gamma_concentration")
EXPECTED_NOT_OK: dict[tuple[str, str], tuple[str, str]] = {
    **{(m, "autobnaf"): ("not_applicable", "AutoBNAFNormal " + FLOW_NEEDS_2D)
       for m in ONE_DIMENSIONAL},
    **{(m, "autoiaf"): ("not_applicable", "AutoIAFNormal " + FLOW_NEEDS_2D)
       for m in ONE_DIMENSIONAL},
}
#: The smoke profile's NUTS references are deliberately cheap (README, References): they fail
#: the draw gate, and every verdict that leans on them must say so.
CHEAP_REFERENCE_FAILURE = "reference failed its checks ("


def test_every_model_and_method_has_a_row(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    csv = pd.read_csv(smoke_results / "results.csv")
    assert len(csv) == len(df)
    for spec in REGISTRY.values():
        for method in registry.methods_for(spec):
            if method in CONTENDERS:
                continue
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
    assert set(na.model) == set(ONE_DIMENSIONAL)
    assert na.error.str.contains("latent dim").all()


def test_ok_rows_carry_timings_and_diagnostics(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    ok = df[df.status == "ok"]
    assert len(ok) >= 50
    assert (ok.compile_s > 0).all() and (ok.run_s > 0).all() and (ok.grad_evals > 0).all()
    assert set(ok.family) == {"mcmc", "vi"}
    fitted = ok[ok.family == "vi"]
    assert fitted.final_loss_mean.notna().all() and fitted.final_elbo.notna().all()
    mcmc = ok[ok.family == "mcmc"]
    assert set(mcmc.method) == {"nuts", "nuts:dense"}
    assert mcmc.max_rhat.notna().all() and mcmc.min_ess_bulk.notna().all()
    assert mcmc.divergences.notna().all()
    assert ok.verdict.isin(LEVELS).all()


def test_artifacts_hold_the_latent_and_declared_sites(smoke_results):
    df = pd.read_parquet(smoke_results / "results.parquet")
    for row in df[df.status == "ok"].itertuples():
        spec = REGISTRY[row.model]
        # the latent sites and the deterministic ones the model declares (extra_sites)
        sites = set(latent_info(spec.model, spec.make_data().model_kwargs).sites)
        sites |= set(spec.extra_sites)
        draws, other, _ = arviz_adapter.load_run(smoke_results / row.artifact)
        assert set(draws) == sites, (row.model, row.method)
        assert all(np.all(np.isfinite(v)) for v in draws.values())
        assert ("losses" in other) == (row.family == "vi")
        assert ("num_steps" in other) == (row.family == "mcmc")


def test_exactly_the_expected_rows_fail_or_do_not_apply(smoke_results):
    """The grid's rows are pinned: every (model, method) of the registry once, the expected
    non-ok rows with their reasons, and every other row ok (a method broken at run time fails
    here, whatever the count of ok rows)."""
    df = pd.read_parquet(smoke_results / "results.parquet")
    expected_rows = {(spec.name, m) for spec in REGISTRY.values() for m in registry.methods_for(spec)
                     if m not in CONTENDERS}
    assert len(df) == len(expected_rows)
    assert set(zip(df.model, df.method, strict=True)) == expected_rows
    assert set(EXPECTED_NOT_OK) <= expected_rows, "EXPECTED_NOT_OK names a row the grid lacks"
    not_ok = df[df.status != "ok"]
    got = {(r.model, r.method): (r.status, r.error) for r in not_ok.itertuples()}
    unexpected = {k: v for k, v in got.items() if k not in EXPECTED_NOT_OK}
    assert not unexpected, f"rows that should be ok: {unexpected}"
    missing = {k: v for k, v in EXPECTED_NOT_OK.items() if k not in got}
    assert not missing, f"rows expected not ok but ok: {missing}"
    for key, (status, reason) in EXPECTED_NOT_OK.items():
        assert got[key][0] == status, (key, got[key])
        assert reason in got[key][1], (key, got[key][1])


def test_verdicts_on_cheap_smoke_references_say_so(smoke_results):
    """README: the smoke profile's NUTS references fail their draw gate on purpose, so every
    verdict leaning on one carries ``reference_ok`` False and the reason; verdicts on exact and
    quadrature references carry ``reference_ok`` True and no such note."""
    df = pd.read_parquet(smoke_results / "results.parquet")
    ok = df[df.status == "ok"]
    cheap = {spec.name for spec in REGISTRY.values() if spec.reference_kind == "nuts"}
    assert cheap == {"linreg_outliers", "bnn"}
    for row in ok.itertuples():
        reason = str(row.verdict_reason)
        if row.model in cheap:
            assert row.reference_ok == 0, (row.model, row.method, row.reference_ok)
            assert reason.startswith(CHEAP_REFERENCE_FAILURE), (row.model, row.method, reason)
            assert "retained draws < 10000" in reason, (row.model, row.method, reason)
        else:
            assert row.reference_ok == 1, (row.model, row.method, row.reference_ok)
            assert "reference failed" not in reason, (row.model, row.method, reason)
