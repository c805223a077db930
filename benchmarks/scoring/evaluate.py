"""Score one run against its model's reference: agreement metrics, noise floors, k-hat, KL, verdict.

Pure NumPy on stored draws: ``evaluate`` returns the metric columns of a results row. NUTS draws
are autocorrelated, so their noise floor uses the run's bulk ESS as the number of draws. The
verdict comes from the row's columns alone (``judge_row``), so that the report can re-judge a
row stored under an older verdict policy from what it stored (``benchmarks.scoring.rejudge``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring import floor_cache, metrics, predictive
from svi_bench.benchmarks.scoring.draws import DataCache, flatten_draws, merge_draw_axes
from svi_bench.benchmarks.scoring.references import Reference
from svi_bench.benchmarks.scoring.verdict import RANK, THRESHOLDS, VERDICT_POLICY, Judgement, judge
from svi_bench.models import Dataset, ModelSpec

FLOOR_REPEATS = 5
FLOOR_SEED = 7


@lru_cache(maxsize=64)
def _floor(ref_key: tuple, n_draws: int) -> dict[str, float]:
    return floor_cache.noise_floor(_REFS[ref_key], n_draws, FLOOR_SEED, FLOOR_REPEATS)


_REFS: dict[tuple, np.ndarray] = {}


def _ref_key(reference: Reference) -> tuple:
    p = reference.provenance
    return (reference.model, p.get("data_hash"), p.get("quality"), p.get("built_at"))


def _ref_matrix(reference: Reference) -> tuple[tuple, np.ndarray]:
    key = _ref_key(reference)
    if key not in _REFS:
        _REFS[key] = flatten_draws(reference.draws)[1]
    return key, _REFS[key]


@lru_cache(maxsize=4)
def _prepared(ref_key: tuple, names: tuple[str, ...]) -> metrics.PreparedReference:
    """The reference sorted once per process for every run scored against it (the last few
    references kept: a grid goes model by model)."""
    return metrics.prepare_reference(_REFS[ref_key], names)


_EVIDENCE = DataCache()


def _log_evidence(spec: ModelSpec, ds: Dataset) -> float:
    """``spec.log_evidence(ds)`` once per data set (gamma_concentration's quadrature takes
    0.13 s, and every row of a model's grid asks it of the same data)."""
    return _EVIDENCE.get(ds, lambda: float(spec.log_evidence(ds)), spec.name)


def evaluate(
    spec: ModelSpec,
    ds: Dataset,
    method: str,
    row: Mapping[str, Any],
    draws: Mapping[str, np.ndarray],
    reference: Reference | None,
    particle_elbos: np.ndarray | None = None,
    replicated: predictive.Replicates | None = None,
    psis: bool = True,
) -> dict[str, Any]:
    """Metric columns for one ok run (``draws``: (chain, draw, *shape)).
    ``particle_elbos``: log p(x, z) - log q(z) at fresh draws of q, if the method has them; their
    PSIS k-hat only when ``psis`` (the method's weights are of the draws' own density).
    ``replicated``: the run's replicated data if already made (else made here) for the
    posterior predictive check's columns (``benchmarks.scoring.predictive``). A run with a bulk
    ESS (a sampler's) has its noise floor at that many draws, not at its draw count."""
    out: dict[str, Any] = {}
    flat = merge_draw_axes(draws, 2)
    has_ess = np.isfinite(row.get("min_ess_bulk", np.nan))
    if particle_elbos is not None and psis:
        out["psis_khat"] = metrics.psis_khat(np.asarray(particle_elbos), np.zeros(len(particle_elbos)))
    if spec.log_evidence is not None and particle_elbos is not None:
        out["kl_exact"] = metrics.exact_kl(_log_evidence(spec, ds), float(row["final_elbo"]))
    if has_ess:
        eff = metrics.nuts_efficiency(row["min_ess_bulk"], row["run_s"] + row["compile_s"],
                                      row["grad_evals"])
        out.update(eff)
    if reference is None:
        out.update(verdict="fail", verdict_reason=NO_REFERENCE, verdict_marginal="",
                   verdict_joint="", reference_ok=False, verdict_policy=VERDICT_POLICY)
        return out
    out["reference_ok"] = reference.ok
    if replicated is None:
        replicated = predictive.replicate_run(spec.model, ds.model_kwargs, flat)
    out.update(predictive.score(spec.model, ds.model_kwargs, replicated, reference))
    if spec.predictive_check is not None:
        predictive_scores(spec, ds, flat, reference, out)
    else:
        names, q = flatten_draws(flat)
        ref_id, ref = _ref_matrix(reference)
        out.update(metrics.agreement(q, _prepared(ref_id, tuple(names)), names))
        n_eff = len(q)
        if has_ess:
            n_eff = int(max(2, min(len(q), row["min_ess_bulk"])))
        floors = _floor(ref_id, min(n_eff, len(ref) // 2))
        out.update(floors)
    return with_verdict(out, method, None if reference.ok else reference.failure, row)


def with_verdict(out: dict[str, Any], method: str, reference_failure: str | None = None,
                 row: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``out`` (scores) with the verdicts of ``judge_row`` on ``row`` and ``out`` and the policy
    they were judged under: how every scored row, the grid's or a study's own, gets its verdict."""
    j = judge_row({**(row or {}), **out, "method": method}, reference_failure)
    out.update(verdict=j.level, verdict_reason=j.reason, verdict_marginal=j.marginal,
               verdict_joint=j.joint, verdict_policy=VERDICT_POLICY)
    return out


NO_REFERENCE = "no reference posterior"
REFERENCE_FAILED = "reference failed its checks"


def judge_row(row: Mapping[str, Any], reference_failure: str | None = None) -> Judgement:
    """The verdicts of a scored row from its columns alone: the judged metrics of ``THRESHOLDS``
    (and ``approx_nonfinite_frac``) with their ``<metric>_floor`` columns and the location
    columns that say where the worst component is, plus a sampler's own diagnostics for a row
    with sampler statistics (``has_sampler_health``) in the overall verdict; a failed reference
    is named first. k-hat is not read."""
    keys = (*THRESHOLDS, "approx_nonfinite_frac", "sd_ratio_worst", *metrics.LOCATION_KEYS)
    judged = judge({k: row[k] for k in keys if k in row},
                   {f"{k}_floor": row[f"{k}_floor"] for k in THRESHOLDS if f"{k}_floor" in row})
    level, reason = _worst(judged[:2], sampler_health(row) if has_sampler_health(row) else None)
    if reference_failure is not None:
        reason = f"{REFERENCE_FAILED} ({reference_failure}); {reason}"
    return Judgement(level, reason, judged.marginal, judged.joint)


def has_sampler_health(row: Mapping[str, Any]) -> bool:
    """A row of an MCMC method (``family``), or, in a row stored before families, one with a
    divergence count: its chains' own health is judged besides agreement."""
    family = row.get("family")
    if isinstance(family, str) and family:
        return family == "mcmc"
    div = row.get("divergences")
    return div is not None and bool(np.isfinite(div))


NUTS_HEALTH = {"rhat_warn": 1.01, "rhat_fail": 1.1, "ess_warn": 400.0, "ess_fail": 100.0}
"""NUTS's own diagnostics (Vehtari et al. 2021): R-hat above 1.01 or bulk/tail ESS below 400
warn, R-hat above 1.1 or ESS below 100 fail, any divergence warns; an R-hat or ESS that could not
be computed (NaN: too few draws) fails. A badly mixed chain inflates its own noise floor, so
agreement alone must not let it pass."""


def sampler_health(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """The chains' own health (``NUTS_HEALTH``): ``(level, reason)``, or None when healthy."""
    h = NUTS_HEALTH
    rhat, div = row.get("max_rhat", np.nan), row.get("divergences", 0)
    div = div if div is not None and np.isfinite(div) else 0  # a sampler that cannot diverge
    given_ess = [np.nan if row[k] is None else float(row[k])
                 for k in ("min_ess_bulk", "min_ess_tail") if k in row]
    # NaN if either is NaN (min() would skip a NaN after a number)
    ess = np.nan if not given_ess or any(np.isnan(given_ess)) else min(given_ess)
    fails, warns = [], []
    # a figure the row has but could not compute (NaN: too few draws) is a failed check
    if "max_rhat" in row and not np.isfinite(rhat):
        fails.append("NUTS R-hat not computable (NaN)")
    if given_ess and not np.isfinite(ess):
        fails.append("NUTS ESS not computable (NaN)")
    if np.isfinite(rhat) and rhat > h["rhat_fail"]:
        fails.append(f"NUTS R-hat {rhat:.3f} > {h['rhat_fail']}")
    elif np.isfinite(rhat) and rhat > h["rhat_warn"]:
        warns.append(f"NUTS R-hat {rhat:.3f} > {h['rhat_warn']}")
    if np.isfinite(ess) and ess < h["ess_fail"]:
        fails.append(f"NUTS ESS {ess:.0f} < {h['ess_fail']:.0f}")
    elif np.isfinite(ess) and ess < h["ess_warn"]:
        warns.append(f"NUTS ESS {ess:.0f} < {h['ess_warn']:.0f}")
    if div:
        warns.append(f"{int(div)} divergences")
    if fails:
        return "fail", "; ".join(fails + warns)
    if warns:
        return "warn", "; ".join(warns)
    return None


def _worst(a: tuple[str, str], b: tuple[str, str] | None) -> tuple[str, str]:
    if b is None:
        return a
    if RANK[b[0]] > RANK[a[0]]:
        return b[0], f"{b[1]}; agreement: {a[1]}"
    if RANK[b[0]] == RANK[a[0]]:
        return a[0], f"{b[1]}; {a[1]}"
    return a[0], f"{a[1]}; also {b[1]}"


_REF_PREDICTIVE: dict[tuple, tuple[np.ndarray, float, float]] = {}


def _reference_predictive(spec, ds, reference) -> tuple[np.ndarray, float, float]:
    """Once per reference: predictive probabilities of its first half, the MAD between its two
    halves (the noise floor) and its own held-out lpd."""
    key = _ref_key(reference)
    if key not in _REF_PREDICTIVE:
        ref = reference.draws
        half = len(next(iter(ref.values()))) // 2
        probs_ref = spec.predictive_probs({k: v[:half] for k, v in ref.items()}, ds)
        probs_ref2 = spec.predictive_probs({k: v[half:] for k, v in ref.items()}, ds)
        floor = metrics.predictive_agreement(probs_ref2, probs_ref)["pred_prob_mad"]
        lpd = spec.predictive_check(ref, ds).get("test_lpd", math.nan)
        _REF_PREDICTIVE[key] = (probs_ref, floor, lpd)
    return _REF_PREDICTIVE[key]


def predictive_scores(spec, ds, flat, reference, out) -> None:
    """Predictive-space scores (bnn): held-out lpd, accuracy, and agreement of probabilities."""
    out.update(spec.predictive_check(flat, ds))
    probs_q = spec.predictive_probs(flat, ds)
    probs_ref, floor, ref_lpd = _reference_predictive(spec, ds, reference)
    out.update(metrics.predictive_agreement(probs_q, probs_ref))
    out["pred_prob_mad_floor"] = floor
    out["ref_test_lpd"] = ref_lpd
