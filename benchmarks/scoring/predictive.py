"""Posterior predictive checks for any model: replicated data and one predictive-agreement number.

Replication (001, "Mock Observations"): the model is run forward on posterior draws with its
observed sites released (``numpyro.infer.Predictive`` on the model with every observed site made
latent again, each replicate shaped like the observation, so a site observed without a plate, as in
``gamma_concentration`` or ``dirichlet_categorical``, is replicated value by value). A run keeps
``N_REPLICATES`` replicated data sets (from that many evenly spaced draws) in its artifact; the
reference's are computed at scoring time from its draws and kept per results folder
(``reference_file``), so the report reads both and never runs inference.

Metric ``ppc_w1``: for every observed data point (every scalar of every observed site), the
1-Wasserstein distance between the method's and the reference's replicated values, divided by the
reference's predictive sd at that point (points where it is 0 use the site's pooled sd), averaged
over points. Its noise floor ``ppc_w1_floor`` is the same number for exact posterior draws: two
further disjoint sets of reference draws, each replicated (with random keys no run uses) and
compared with the reference's set, averaged, and rescaled like ``metrics.noise_floor`` when the
run has fewer replicated sets. A model without observed sites, or whose replication fails, gets
``ppc_note`` instead. Like every marginal predictive check it is blind to some posterior errors
(a coin posterior with the right mean replicates flips exactly), so it is a diagnostic, not part
of the verdict.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring.draws import DataCache

N_REPLICATES = 200
MAX_VALUES = 100_000
MIN_REPLICATES = 50
"""Replicated data sets are capped at ``MAX_VALUES`` values: fewer sets for more observations
(at least ``MIN_REPLICATES``), and past ``MAX_VALUES // MIN_REPLICATES`` observed values a fixed,
evenly spaced subset of them (``Replicates.subset`` says so): 3,000 points give 50 sets of
2,000 of them. The model runs on a few draws at a time, so memory stays near the cap too."""
REPLICATE_SEED = 20261122
FLOOR_SETS = 2


@dataclass
class Replicates:
    """Replicated data ``{site: (n, *obs_shape)}`` and the observations, or why there are none."""

    draws: dict[str, np.ndarray] = field(default_factory=dict)
    observed: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""
    subset: str = ""
    """Non-empty when only a fixed subset of the observed values is replicated: which."""

    @property
    def ok(self) -> bool:
        return bool(self.draws) and not self.reason


_OBSERVED = DataCache()


def _observed_once(model: Callable[..., None], model_kwargs: Mapping[str, Any],
                   draw: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``observed_sites`` once per (model, data): the observations are the data's, not the
    draw's, and tracing the model op by op costs tens of milliseconds per run (every run of a
    grid cell and its reference trace the same model on the same data)."""
    return _OBSERVED.get(model_kwargs, lambda: observed_sites(model, model_kwargs, draw), model)


def observed_sites(model: Callable[..., None], model_kwargs: Mapping[str, Any],
                   draw: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """``{name: observed value}`` of the model's observed sample sites, in trace order; latent
    sites take the values of ``draw`` (one posterior draw), so improper priors need not sample."""
    import jax
    from numpyro import handlers

    traced = handlers.seed(handlers.substitute(model, data=dict(draw or {})), jax.random.PRNGKey(0))
    tr = handlers.trace(traced).get_trace(**dict(model_kwargs))
    return {name: np.asarray(site["value"]) for name, site in tr.items()
            if site["type"] == "sample" and site["is_observed"] and not _is_factor(site["fn"])}


def _is_factor(fn) -> bool:
    """``numpyro.factor`` is an observed site of a ``Unit`` distribution: a likelihood term with
    nothing to replicate."""
    from numpyro.distributions.distribution import Unit

    while hasattr(fn, "base_dist"):  # masked, expanded, independent wrappers
        fn = fn.base_dist
    return isinstance(fn, Unit)


def _released(model: Callable[..., None], sites: frozenset[str]) -> Callable[..., None]:
    """The model with ``sites`` no longer observed: each is sampled in the shape of its value."""
    import jax.numpy as jnp
    from numpyro.primitives import Messenger

    class Release(Messenger):
        def process_message(self, msg):
            if msg["type"] == "sample" and msg["is_observed"] and msg["name"] in sites:
                value, fn = msg["value"], msg["fn"]
                extra = jnp.shape(value)[:jnp.ndim(value) - len(fn.batch_shape + fn.event_shape)]
                shape = tuple(msg["kwargs"].get("sample_shape") or ())
                msg["kwargs"] = {**msg["kwargs"], "sample_shape": shape + tuple(extra)}
                msg["value"], msg["is_observed"] = None, False

    return Release(model)


def thin(draws: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """At most ``n`` evenly spaced draws of ``{site: (total, *shape)}`` (NUTS chains in a row)."""
    total = len(next(iter(draws.values())))
    idx = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))
    return {k: np.asarray(v)[idx] for k, v in draws.items()}


def replicate(model: Callable[..., None], model_kwargs: Mapping[str, Any],
              draws: Mapping[str, np.ndarray], seed: int = REPLICATE_SEED) -> Replicates:
    """One replicated data set per draw (``{site: (n, *shape)}`` draws); never raises."""
    try:
        observed = _observed_once(model, model_kwargs,
                                  {k: np.asarray(v)[0] for k, v in draws.items()})
    except Exception as exc:
        return Replicates(reason=f"the model could not be traced: {_one_line(exc)}")
    if not observed:
        return Replicates(reason="the model has no observed sample site (e.g. its likelihood is a "
                                 "numpyro.factor), so there is nothing to replicate")
    values = sum(int(np.size(v)) for v in observed.values())
    draws = thin(draws, max(MIN_REPLICATES, MAX_VALUES // max(values, 1)))
    n = len(next(iter(draws.values())))
    keep = _kept_points(observed, MAX_VALUES // n) if n * values > MAX_VALUES else None
    per_call = n if keep is None else max(1, MAX_VALUES // values)  # draws the model runs at once
    try:
        chunks = [_predict(model, tuple(observed), model_kwargs,
                           {k: np.asarray(v)[i:i + per_call] for k, v in draws.items()}, seed + i)
                  for i in range(0, n, per_call)]
        for chunk in chunks:
            for k, v in chunk.items():
                if v.shape[1:] != observed[k].shape:
                    return Replicates(observed=observed, reason=(
                        f"replicated {k!r} has shape {v.shape[1:]}, observed {observed[k].shape}"))
                if keep is not None:
                    chunk[k] = v.reshape(len(v), -1)[:, keep[k]]
        reps = {k: np.concatenate([c[k] for c in chunks]) for k in observed}
    except Exception as exc:
        return Replicates(observed=observed, reason=f"replication failed: {_one_line(exc)}")
    if keep is None:
        return Replicates(draws=reps, observed=observed)
    kept = sum(len(i) for i in keep.values())
    return Replicates(draws=reps, observed={k: v.reshape(-1)[keep[k]] for k, v in observed.items()},
                      subset=(f"replicated at a fixed, evenly spaced subset of {kept:,} of the "
                              f"{values:,} observed values ({n} sets; at most {MAX_VALUES:,} "
                              "values are kept)"))


def _kept_points(observed: Mapping[str, np.ndarray], budget: int) -> dict[str, np.ndarray]:
    """Evenly spaced flat indices of each observed site, ``budget`` values in all (shared in
    proportion to the sites' sizes, at least one per site): the same for every run of the data,
    so methods and the reference are compared at the same points."""
    total = sum(int(np.size(v)) for v in observed.values())
    out = {}
    for k, v in observed.items():
        size = int(np.size(v))
        want = max(1, budget * size // total)
        out[k] = np.unique(np.linspace(0, size - 1, min(want, size)).round().astype(int))
    return out


_COMPILED: dict[tuple, Callable] = {}


def _predict(model, sites: tuple[str, ...], model_kwargs: Mapping[str, Any],
             draws: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``Predictive`` on the released model, compiled once per model and non-array arguments
    (a run then costs milliseconds, not the second an op-by-op run takes); a model that cannot
    be compiled (Python control flow on values) runs op by op."""
    import jax
    from numpyro.infer import Predictive

    arrays = {k: v for k, v in model_kwargs.items() if isinstance(v, (np.ndarray, jax.Array))}
    static = {k: v for k, v in model_kwargs.items() if k not in arrays}
    released = _released(model, frozenset(sites))

    def run(key, samples, array_kwargs):
        return Predictive(released, posterior_samples=samples, return_sites=list(sites))(
            key, **array_kwargs, **static)

    key = jax.random.PRNGKey(seed)
    cache_key = (model, sites, repr(sorted(static.items())))
    try:
        if cache_key not in _COMPILED:
            _COMPILED[cache_key] = jax.jit(run)
        out = _COMPILED[cache_key](key, draws, arrays)
    except Exception:
        _COMPILED.pop(cache_key, None)
        out = run(key, draws, arrays)
    return {k: np.asarray(out[k]) for k in sites}


def replicate_run(model, model_kwargs, flat_draws: Mapping[str, np.ndarray],
                  n: int = N_REPLICATES) -> Replicates:
    """A run's replicated data: ``n`` evenly spaced draws of ``{site: (total, *shape)}``."""
    if not flat_draws:
        return Replicates(reason="the run has no draws")
    return replicate(model, model_kwargs, thin(flat_draws, n))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# --- the metric -----------------------------------------------------------------------------------


def points(reps: Mapping[str, np.ndarray]) -> np.ndarray:
    """Replicated data as one ``(n, P)`` float64 matrix: every scalar of every site (sorted)."""
    return np.concatenate([np.asarray(reps[k], dtype=np.float64).reshape(len(reps[k]), -1)
                           for k in sorted(reps)], axis=1)


def _scales(ref: Mapping[str, np.ndarray]) -> np.ndarray:
    """Reference predictive sd per point; a point with sd 0 takes its site's pooled sd (NaN if
    that is 0 too: the point is left out)."""
    out = []
    for k in sorted(ref):
        r = np.asarray(ref[k], dtype=np.float64).reshape(len(ref[k]), -1)
        sd = r.std(axis=0, ddof=1)
        pooled = r.std(ddof=1)
        out.append(np.where(sd > 0, sd, pooled if pooled > 0 else np.nan))
    return np.concatenate(out)


def ppc_w1(approx: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> float:
    """Mean over observed points of W1(method, reference replicated values) / reference sd.

    NaN if the method's replicated data hold a non-finite value; ValueError if the sites differ
    or the reference is non-finite or constant everywhere."""
    from svi_bench.benchmarks.scoring.metrics import w1_marginals

    if sorted(approx) != sorted(ref):
        raise ValueError(f"ppc_w1: sites differ: {sorted(approx)} vs {sorted(ref)}")
    q, r = points(approx), points(ref)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"ppc_w1: {q.shape[1]} points vs {r.shape[1]} in the reference")
    if not np.all(np.isfinite(r)):
        raise ValueError("ppc_w1: the reference's replicated data are non-finite")
    if not np.all(np.isfinite(q)):
        return math.nan
    scale = _scales(ref)
    keep = np.isfinite(scale)
    if not keep.any():
        raise ValueError("ppc_w1: the reference's replicated data are constant")
    return float(np.mean(w1_marginals(q[:, keep], np.sort(r[:, keep], axis=0).T.copy()) / scale[keep]))


@dataclass
class ReferenceReplicates:
    """The reference's replicated set (what methods are compared with) and the floor's sets."""

    reps: Replicates
    floor_sets: list[dict[str, np.ndarray]]


_REF_CACHE: dict[tuple, ReferenceReplicates] = {}
_FLOOR_CACHE: dict[tuple, float] = {}


def reference_key(provenance: Mapping[str, Any]) -> tuple:
    return tuple(str(provenance.get(k, "")) for k in
                 ("model", "kind", "data_hash", "quality", "precision", "built_at"))


def reference_replicates(model, model_kwargs, ref_draws: Mapping[str, np.ndarray],
                         provenance: Mapping[str, Any], n: int = N_REPLICATES) -> ReferenceReplicates:
    """``1 + FLOOR_SETS`` disjoint sets of at most ``n`` reference draws (a fixed shuffle), each
    replicated with its own random key (never a run's: shared observation noise would make a
    run look closer to the reference than it is); computed once per reference and process."""
    key = (*reference_key(provenance), n)
    if key not in _REF_CACHE:
        total = len(next(iter(ref_draws.values())))
        size = min(n, total // (1 + FLOOR_SETS))
        order = np.random.default_rng(REPLICATE_SEED).permutation(total)
        sets = [replicate(model, model_kwargs,
                          {k: np.asarray(v)[order[i * size:(i + 1) * size]] for k, v in ref_draws.items()},
                          seed=REPLICATE_SEED + 1 + i) for i in range(1 + FLOOR_SETS)]
        first = sets[0]
        if size < 2:
            first = Replicates(reason=f"the reference has too few draws ({total})")
        elif first.ok and not all(s.ok for s in sets[1:]):
            first = Replicates(reason=next(s.reason for s in sets if not s.ok))
        _REF_CACHE[key] = ReferenceReplicates(first, [s.draws for s in sets[1:]])
    return _REF_CACHE[key]


def score(model, model_kwargs, run: Replicates, reference) -> dict[str, Any]:
    """``ppc_w1``, ``ppc_w1_floor`` and ``ppc_note`` of one run against a ``Reference``."""
    out: dict[str, Any] = {"ppc_w1": math.nan, "ppc_w1_floor": math.nan, "ppc_note": ""}
    try:
        if not run.ok:
            out["ppc_note"] = run.reason
            return out
        ref = reference_replicates(model, model_kwargs, reference.draws, reference.provenance)
        if not ref.reps.ok:
            out["ppc_note"] = f"reference: {ref.reps.reason}"
            return out
        n_q = len(next(iter(run.draws.values())))
        out["ppc_w1"] = ppc_w1(run.draws, ref.reps.draws)
        fkey = (*reference_key(reference.provenance), n_q)
        if fkey not in _FLOOR_CACHE:
            n_r = len(next(iter(ref.reps.draws.values())))
            n_a = min(n_q, n_r)
            # W1 noise shrinks as sqrt(1/n_q + 1/n_ref): rescaled from the subsets' sizes to the
            # run's comparison, as metrics.noise_floor does
            rescale = math.sqrt((1 / n_q + 1 / n_r) / (1 / n_a + 1 / n_r))
            _FLOOR_CACHE[fkey] = rescale * float(np.mean([
                ppc_w1({k: v[:n_a] for k, v in s.items()}, ref.reps.draws) for s in ref.floor_sets]))
        out["ppc_w1_floor"] = _FLOOR_CACHE[fkey]
        out["ppc_note"] = run.subset
        if not np.isfinite(out["ppc_w1"]):
            out["ppc_note"] = "the method's replicated data are non-finite"
    except Exception as exc:  # a scoring problem is recorded, never raised
        out["ppc_note"] = f"predictive check failed: {_one_line(exc)}"
    return out


# --- files: the reference's replicated data, per results folder ------------------------------------


def reference_file(provenance: Mapping[str, Any]) -> str:
    """Where a results folder keeps a reference's replicated data, relative to the folder."""
    digest = hashlib.sha256(json.dumps(reference_key(provenance)).encode()).hexdigest()[:12]
    return f"predictive/{provenance.get('model', 'model')}__{digest}.nc"


def store_reference(out_dir: Path, model, model_kwargs, reference) -> None:
    """Write the reference's replicated data (if computable and not yet written) for the report."""
    from svi_bench.benchmarks.scoring import arviz_adapter

    path = Path(out_dir) / reference_file(reference.provenance)
    if path.is_file():
        return
    ref = reference_replicates(model, model_kwargs, reference.draws, reference.provenance)
    if ref.reps.ok:
        path.parent.mkdir(parents=True, exist_ok=True)
        arviz_adapter.save_predictive(path, ref.reps.draws, ref.reps.observed,
                                      {"reference": json.dumps(reference_key(reference.provenance)),
                                       "subset": ref.reps.subset})
