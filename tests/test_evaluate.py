"""Scoring one run (``benchmarks.scoring.evaluate``): NUTS's own health gate and the verdict notes.

NUTS is judged on agreement with the reference *and* on its own diagnostics (README, Verdict):
R-hat above 1.1 or bulk/tail ESS below 100 fail, R-hat above 1.01 or ESS below 400 warn, any
divergence warns. A verdict that leans on a reference that failed its checks says so, first.
Exact Beta(13, 9) draws play both the run and the reference, so agreement alone always passes.
"""

from __future__ import annotations

import numpy as np
import pytest

from svi_bench.benchmarks.scoring.evaluate import NUTS_HEALTH, evaluate, has_sampler_health
from svi_bench.benchmarks.scoring.references import Reference
from svi_bench.models import REGISTRY

SPEC = REGISTRY["coin"]
SITE = "latent_fairness"
HEALTHY = {"max_rhat": 1.002, "divergences": 0, "min_ess_bulk": 1500.0, "min_ess_tail": 1400.0,
           "run_s": 1.0, "compile_s": 1.0, "grad_evals": 10_000.0, "final_elbo": -14.0}
AGREE = "agreement: marginal pass: all "


def _reference(ok: bool = True, failed: tuple[str, ...] = ()) -> Reference:
    draws = {SITE: np.random.default_rng(1).beta(13, 9, size=20_000)}
    provenance = {"ok": ok, "failed_checks": list(failed), "quality": "full",
                  "data_hash": "test-evaluate", "built_at": f"test-evaluate-{ok}"}
    return Reference(SPEC.name, "exact", draws, provenance)


def _nuts(reference: Reference | None = None, **row) -> dict:
    draws = {SITE: np.random.default_rng(2).beta(13, 9, size=(4, 500))}  # (chain, draw)
    return evaluate(SPEC, SPEC.make_data(), "nuts", {**HEALTHY, **row}, draws,
                    reference or _reference())


def test_thresholds_are_the_documented_ones():
    assert NUTS_HEALTH == {"rhat_warn": 1.01, "rhat_fail": 1.1, "ess_warn": 400.0,
                           "ess_fail": 100.0}


def test_healthy_nuts_with_exact_draws_passes():
    out = _nuts()
    assert out["verdict"] == "pass", out["verdict_reason"]
    assert out["reference_ok"] is True
    assert out["verdict_reason"].startswith("marginal pass: all ")
    assert (out["verdict_marginal"], out["verdict_joint"]) == ("pass", "pass")
    assert out["ess_per_second"] == pytest.approx(1500.0 / 2.0)  # bulk ESS / (run + compile)


@pytest.mark.parametrize(("row", "level", "reason"), [
    ({"max_rhat": 1.2}, "fail", "NUTS R-hat 1.200 > 1.1"),
    ({"max_rhat": 1.1}, "warn", "NUTS R-hat 1.100 > 1.01"),  # the fail limit is strict
    ({"max_rhat": 1.05}, "warn", "NUTS R-hat 1.050 > 1.01"),
    ({"max_rhat": 1.01}, "pass", None),
    ({"min_ess_bulk": 50.0}, "fail", "NUTS ESS 50 < 100"),
    ({"min_ess_tail": 90.0}, "fail", "NUTS ESS 90 < 100"),  # the smaller of bulk and tail
    ({"min_ess_tail": 100.0}, "warn", "NUTS ESS 100 < 400"),
    ({"min_ess_bulk": 300.0}, "warn", "NUTS ESS 300 < 400"),
    ({"divergences": 1}, "warn", "1 divergences"),
    ({"divergences": 3, "max_rhat": 1.5, "min_ess_bulk": 20.0}, "fail",
     "NUTS R-hat 1.500 > 1.1; NUTS ESS 20 < 100; 3 divergences"),

    # 4 draws: R-hat and ESS are NaN, a failed check, never a skipped one (issue 28)
    ({"max_rhat": float("nan"), "min_ess_bulk": float("nan"), "min_ess_tail": float("nan"),
      "divergences": 2}, "fail",
     "NUTS R-hat not computable (NaN); NUTS ESS not computable (NaN); 2 divergences"),
    ({"min_ess_tail": float("nan")}, "fail", "NUTS ESS not computable (NaN)"),
])
def test_nuts_health_gate(row, level, reason):
    out = _nuts(**row)
    assert out["verdict"] == level, out["verdict_reason"]
    if reason is None:
        assert "NUTS" not in out["verdict_reason"], out["verdict_reason"]
    else:
        # health worse than agreement: health first, then what agreement said
        assert out["verdict_reason"].startswith(f"{reason}; {AGREE}"), out["verdict_reason"]


def test_health_is_judged_for_the_mcmc_family_only():
    """A row's ``family`` decides; a row stored before families is a sampler's if it counted
    divergences."""
    draws = {SITE: np.random.default_rng(3).beta(13, 9, size=(1, 4000))}
    out = evaluate(SPEC, SPEC.make_data(), "manual:beta",
                   {**HEALTHY, "family": "vi", "max_rhat": 2.0}, draws, _reference(),
                   particle_elbos=np.zeros(100))
    assert out["verdict"] == "pass" and "R-hat" not in out["verdict_reason"]
    out = _nuts(family="mcmc", max_rhat=2.0)
    assert out["verdict"] == "fail" and "R-hat 2.000" in out["verdict_reason"]
    assert has_sampler_health({"divergences": 0}) and not has_sampler_health({"max_rhat": 2.0})
    assert not has_sampler_health({"divergences": float("nan")})  # an SVI row of a table


def test_a_failed_reference_is_named_in_the_verdict():
    why = ("20 retained draws < 10000", "max R-hat 1.3753 >= 1.01")
    out = _nuts(_reference(ok=False, failed=why))
    assert out["reference_ok"] is False
    assert out["verdict_reason"].startswith(
        "reference failed its checks (20 retained draws < 10000; max R-hat 1.3753 >= 1.01); "
        "marginal pass: all ")
    assert out["verdict"] == "pass"  # the level is agreement's; the note says how far to trust it
    out = _nuts(_reference(ok=False, failed=why), max_rhat=1.2)
    assert out["verdict"] == "fail"
    assert out["verdict_reason"].startswith("reference failed its checks (20 retained draws")
    assert "; NUTS R-hat 1.200 > 1.1; " in out["verdict_reason"]
    assert "reference failed" not in _nuts()["verdict_reason"]


def test_no_reference_fails_and_says_so():
    draws = {SITE: np.random.default_rng(2).beta(13, 9, size=(4, 500))}
    out = evaluate(SPEC, SPEC.make_data(), "nuts", HEALTHY, draws, None)
    assert (out["verdict"], out["verdict_reason"], out["reference_ok"]) == (
        "fail", "no reference posterior", False)
