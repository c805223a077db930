"""The method contract: what every method, ours or a user's, must do, checked on two small
posteriors with a known answer (``svi-bench check --method-file``).

The posteriors: a Gamma-Poisson rate (one positive latent, so draws must be in the constrained
space, plus a deterministic extra site) and a correlated 2-D Gaussian (a conjugate normal
likelihood with correlated noise). The agreement bound is loose on purpose: it asks whether the
draws are of this posterior at all (right site, right space, right scale), not whether the method
is good; a mean-field guide passes it, draws from the prior do not.
"""

from __future__ import annotations

import math

import numpy as np

from svi_bench.benchmarks.methods.base import PROFILES, Method, RunResult
from svi_bench.models import Dataset, ModelSpec
from svi_bench.models.contract import Check

MEAN_TOLERANCE_SD = 0.5
"""A draw set's mean may be this many posterior sd from the exact mean."""
SD_RATIO = (0.4, 2.5)
"""A draw set's sd may be this fraction to multiple of the exact sd."""
SEEDS = (0, 1)
PROFILE = "quick"
"""The method's settings the contract runs with: the default profile of ``svi-bench run`` (smoke
settings are for plumbing and need not converge)."""


_RATE_PRIOR = (2.0, 1.0)  # Gamma(concentration, rate)
_COUNTS = np.array([3, 5, 4, 6, 2, 4, 5, 3], dtype=np.int32)
_GAUSS_PRIOR_SD = 5.0
_GAUSS_NOISE = np.array([[1.0, 0.8], [0.8, 1.0]])
_GAUSS_OBS = np.array([[1.2, 0.7], [0.9, 1.1], [1.5, 0.8], [0.6, 0.4]], dtype=np.float32)


def _rate_model(counts=None):
    import numpyro
    import numpyro.distributions as dist

    rate = numpyro.sample("rate", dist.Gamma(*_RATE_PRIOR))
    numpyro.deterministic("rate_doubled", 2.0 * rate)
    with numpyro.plate("obs", counts.shape[0]):
        numpyro.sample("y", dist.Poisson(rate), obs=counts)


def _gauss_model(obs=None):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    z = numpyro.sample("z", dist.Normal(0.0, _GAUSS_PRIOR_SD).expand([2]).to_event(1))
    with numpyro.plate("obs", obs.shape[0]):
        numpyro.sample("y", dist.MultivariateNormal(z, jnp.asarray(_GAUSS_NOISE, jnp.float32)),
                       obs=obs)


def _rate_moments() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    a, b = _RATE_PRIOR[0] + _COUNTS.sum(), _RATE_PRIOR[1] + len(_COUNTS)
    mean, sd = np.array([a / b]), np.array([math.sqrt(a) / b])
    return {"rate": (mean, sd), "rate_doubled": (2 * mean, 2 * sd)}


def _gauss_moments() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    precision = np.eye(2) / _GAUSS_PRIOR_SD**2 + len(_GAUSS_OBS) * np.linalg.inv(_GAUSS_NOISE)
    cov = np.linalg.inv(precision)
    mean = cov @ (np.linalg.inv(_GAUSS_NOISE) @ _GAUSS_OBS.sum(0))
    return {"z": (mean, np.sqrt(np.diag(cov)))}


def known_posteriors() -> list[tuple[ModelSpec, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """The contract's two models with their exact posterior means and sds per site."""
    rate = ModelSpec(
        name="contract_gamma_poisson", description="Gamma(2, 1) prior on a Poisson rate, 8 counts",
        source="the method contract", model=_rate_model,
        data=lambda seed=0: Dataset(model_kwargs={"counts": _COUNTS}), guides={},
        reference_kind="exact", data_uses_seed=False, extra_sites=("rate_doubled",))
    gauss = ModelSpec(
        name="contract_gaussian_2d",
        description="N(0, 5^2 I) prior, 4 observations with correlated (0.8) unit noise",
        source="the method contract", model=_gauss_model,
        data=lambda seed=0: Dataset(model_kwargs={"obs": _GAUSS_OBS}), guides={},
        reference_kind="exact", data_uses_seed=False)
    return [(rate, _rate_moments()), (gauss, _gauss_moments())]


def _declaration(method: Method) -> list[Check]:
    problems = method.problems()
    out = [Check("declaration", not problems, "; ".join(problems))]
    if problems:
        return out
    bad = []
    for profile in PROFILES:
        try:
            method.settings(profile, "")
        except Exception as exc:
            bad.append(f"{profile}: {type(exc).__name__}: {exc}")
    out.append(Check("settings", not bad, "; ".join(bad) + ("" if not bad else
               " (defaults must build settings_type(**values) that pass validate())")))
    return out


def _shape_problems(result: object, spec: ModelSpec, sites: tuple[str, ...],
                    shapes: dict[str, tuple[int, ...]]) -> list[str]:
    if not isinstance(result, RunResult):
        return [f"the program returned a {type(result).__name__}, not a RunResult"]
    out = []
    for site in (*sites, *spec.extra_sites):
        if site not in result.draws:
            out.append(f"no draws of site {site!r} (draws must hold every latent and extra site)")
            continue
        shape = np.shape(result.draws[site])
        want = shapes.get(site)
        if len(shape) < 3 or shape[0] != len(SEEDS) or (want is not None and shape[3:] != want):
            out.append(f"draws[{site!r}] has shape {shape}; expected (seeds={len(SEEDS)}, "
                       f"chains, draws, *{want or '(site shape)'})")
    grads = np.asarray(result.grad_evals, dtype=float)
    if grads.shape != (len(SEEDS),) or not np.all(np.isfinite(grads)) or np.any(grads <= 0):
        out.append(f"grad_evals must be one positive count per seed, got {grads!r}")
    for name in ("compile_s", "run_s"):
        value = getattr(result, name)
        if not isinstance(value, int | float) or not value >= 0:
            out.append(f"{name} must be seconds >= 0, got {value!r} (use methods.timed)")
    return out


def _agreement(result: RunResult, moments: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    out = []
    for site, (mean, sd) in moments.items():
        draws = np.asarray(result.draws[site], dtype=float)
        for seed in range(draws.shape[0]):
            flat = draws[seed].reshape(-1, mean.size)
            got_mean, got_sd = flat.mean(0), flat.std(0)
            off = np.abs(got_mean - mean) / sd
            ratio = got_sd / sd
            if np.any(off > MEAN_TOLERANCE_SD) or np.any(ratio < SD_RATIO[0]) \
                    or np.any(ratio > SD_RATIO[1]):
                out.append(f"{site} seed {SEEDS[seed]}: mean {np.round(got_mean, 3).tolist()} sd "
                           f"{np.round(got_sd, 3).tolist()}, exact mean {np.round(mean, 3).tolist()}"
                           f" sd {np.round(sd, 3).tolist()}")
    return out


def _run_checks(method: Method, spec: ModelSpec, moments) -> list[Check]:
    import jax

    from svi_bench.benchmarks.inference.introspect import latent_info

    label = spec.name
    ds = spec.make_data()
    info = latent_info(spec.model, ds.model_kwargs)
    try:
        reason = method.applicable(spec, info)
    except Exception as exc:
        return [Check(f"{label}: applicable", False, f"raised {type(exc).__name__}: {exc}; return "
                      "a reason (str) or None")]
    if reason is not None:
        ok = isinstance(reason, str) and bool(reason)
        return [Check(f"{label}: applicable", ok, f"not applicable: {reason}" if ok else
                      f"returned {reason!r}; return a reason (str) or None")]
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(SEEDS, dtype=np.uint32))
    try:
        settings = method.settings(PROFILE, spec.name)
        result = method.build(spec, ds, settings, info)(keys)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return [Check(f"{label}: runs", False, f"{type(exc).__name__}: {first}"[:300])]
    checks = []
    shape = _shape_problems(result, spec, info.sites, info.shapes)
    checks.append(Check(f"{label}: result", not shape, "; ".join(shape)))
    if shape:
        return checks + [Check(f"{label}: agreement", False, skipped=True)]
    finite = all(np.all(np.isfinite(v)) for v in result.draws.values())
    checks.append(Check(f"{label}: finite draws", finite,
                        "" if finite else "some draws are NaN or infinite"))
    first, second = (np.asarray(v) for v in (result.draws[info.sites[0]][0],
                                             result.draws[info.sites[0]][1]))
    differ = not np.array_equal(first, second)
    checks.append(Check(f"{label}: seeds differ", differ, "" if differ else
                        "seeds 0 and 1 gave identical draws: split each seed's rng_key"))
    bad = _agreement(result, moments) if finite else ["not finite"]
    checks.append(Check(f"{label}: agreement", not bad, "; ".join(bad) + (
        f" (each seed's mean within {MEAN_TOLERANCE_SD} sd of the exact one, its sd "
        f"{SD_RATIO[0]}-{SD_RATIO[1]}x: are the draws constrained, of this posterior?)"
        if bad else "")))
    if method.checkpoints is not None:
        checks.append(_checkpoint_check(method, spec, ds, settings, info, keys))
    return checks


def _checkpoint_check(method: Method, spec: ModelSpec, ds, settings, info, keys) -> Check:
    """A declared ``checkpoints`` gives one result per budget, each a valid result, their
    gradient evaluations non-decreasing with the budget."""
    label = f"{spec.name}: checkpoints"
    last = getattr(settings, method.budget)
    points = sorted({max(1, last // 2), last})
    try:
        results = method.checkpoints(spec, ds, settings, info, points)(keys)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return Check(label, False, f"{type(exc).__name__}: {first}"[:300])
    if not isinstance(results, tuple | list) or len(results) != len(points):
        return Check(label, False, f"returned {type(results).__name__}; expected a tuple of "
                                   f"{len(points)} RunResults, one per budget {points}")
    problems = [f"budget {p}: {'; '.join(bad)}" for p, r in zip(points, results, strict=True)
                if (bad := _shape_problems(r, spec, info.sites, info.shapes))]
    if not problems and np.any(np.asarray(results[0].grad_evals, dtype=float)
                               > np.asarray(results[-1].grad_evals, dtype=float)):
        problems.append(f"grad_evals fall from budget {points[0]} to {points[-1]}: each "
                        "checkpoint's cost counts everything up to its budget")
    return Check(label, not problems, "; ".join(problems))


def check_method(method: Method) -> list[Check]:
    """Every check of the contract, in order; later checks are skipped when the declaration
    fails (they could not run)."""
    checks = _declaration(method)
    runs = [f"{spec.name}: runs" for spec, _ in known_posteriors()]
    if not all(c.ok for c in checks):
        return checks + [Check(name, False, skipped=True) for name in runs]
    for spec, moments in known_posteriors():
        checks += _run_checks(method, spec, moments)
    return checks
