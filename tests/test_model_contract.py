"""The model contract: every registered model declares a complete, self-consistent ModelSpec.

Fast checks only (no long inference), parametrised over ``models.REGISTRY``. Conventions checked
here beyond ``models.base``: quadrature models' ``log_density_grid(ds, refine=k)`` accepts a
``refine`` factor (k times finer grid) and returns one axis per latent site, in the order the
sites appear in the model's trace.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import log_density, potential_energy, unconstrain_fn
from scipy import special, stats

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

import models  # noqa: E402
from models.base import Dataset, ModelSpec  # noqa: E402

SEEDS_DIR = REPO.parent / "shared" / "seeds"
SPECS = list(models.REGISTRY.values())
IDS = [spec.name for spec in SPECS]
FIXED_DATA = {"dirichlet_categorical", "multimodal_2d", "correlated_gaussian"}
"""Models whose data do not depend on the seed."""

GUIDE_CASES = [(spec, name) for spec in SPECS for name in spec.guides]
GUIDE_IDS = [f"{spec.name}-{name}" for spec, name in GUIDE_CASES]


def specs_where(keep) -> list:
    """The registered specs for which ``keep(spec)`` holds, as ids-named pytest params."""
    return [pytest.param(spec, id=spec.name) for spec in SPECS if keep(spec)]


def model_trace(spec: ModelSpec, ds: Dataset, seed: int = 0) -> dict:
    """A model trace; latents drawn by init_to_uniform, which also handles improper priors."""
    model = handlers.substitute(handlers.seed(spec.model, seed), substitute_fn=init_to_uniform)
    return handlers.trace(model).get_trace(**ds.model_kwargs)


def latent_shapes(trace: dict) -> dict[str, tuple[int, ...]]:
    """Non-observed, non-auxiliary sample sites, in trace order."""
    return {
        name: tuple(jnp.shape(site["value"]))
        for name, site in trace.items()
        if site["type"] == "sample"
        and not site.get("is_observed", False)
        and not (site.get("infer") or {}).get("is_auxiliary", False)
    }


def flatten_dataset(ds: Dataset) -> dict[str, np.ndarray]:
    out = {}
    for part in ("model_kwargs", "true_values", "extras"):
        for key, value in (getattr(ds, part) or {}).items():
            out[f"{part}.{key}"] = np.asarray(value)
    return out


def datasets_equal(a: Dataset, b: Dataset) -> bool:
    fa, fb = flatten_dataset(a), flatten_dataset(b)
    return fa.keys() == fb.keys() and all(
        fa[k].shape == fb[k].shape and np.array_equal(fa[k], fb[k]) for k in fa
    )


def trapezoid_weights(axis: np.ndarray) -> np.ndarray:
    d = np.diff(axis)
    w = np.zeros_like(axis)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def grid_summary(axes: list[np.ndarray], lp: np.ndarray) -> tuple[float, list, list]:
    """log Z, marginal means and sds of a gridded log density (trapezoid rule, per axis)."""
    logw = lp.copy()
    for i, axis in enumerate(axes):
        shape = [1] * len(axes)
        shape[i] = -1
        logw = logw + np.log(trapezoid_weights(axis)).reshape(shape)
    log_z = float(special.logsumexp(logw))
    w = np.exp(logw - log_z)
    means, sds = [], []
    for i, axis in enumerate(axes):
        marginal = w.sum(axis=tuple(j for j in range(len(axes)) if j != i))
        mean = float(np.sum(marginal * axis))
        means.append(mean)
        sds.append(float(np.sqrt(np.sum(marginal * (axis - mean) ** 2))))
    return log_z, means, sds


def batched_log_joint(spec: ModelSpec, ds: Dataset, params: dict[str, np.ndarray]) -> np.ndarray:
    """The model's log joint at a batch of constrained latent values."""

    def one(p):
        return log_density(spec.model, (), dict(ds.model_kwargs), p)[0]

    batch = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in params.items()}
    return np.asarray(jax.vmap(one)(batch))


# --------------------------------------------------------------------------- the spec itself


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_spec_complete(spec: ModelSpec) -> None:
    assert models.REGISTRY[spec.name] is spec
    assert spec.name.strip() and spec.description.strip() and spec.source.strip()
    assert spec.reference_kind in ("exact", "quadrature", "nuts")
    assert callable(spec.model) and callable(spec.data)
    assert all(callable(g) for g in spec.guides.values())
    if spec.reference_kind == "exact":
        assert spec.exact_sampler is not None and spec.exact_moments is not None
    if spec.reference_kind == "quadrature":
        assert spec.log_density_grid is not None
    match = re.match(r"\s*(\d{3}_[0-9a-f]+\.txt)", spec.source)
    assert match, f"source should start with a seed file name: {spec.source!r}"
    if SEEDS_DIR.is_dir():
        assert (SEEDS_DIR / match.group(1)).is_file(), match.group(1)


def test_registry_order() -> None:
    assert IDS == [
        "coin",
        "gamma_concentration",
        "dirichlet_categorical",
        "multimodal_2d",
        "correlated_gaussian",
        "linreg_outliers",
        "hierarchical_linreg",
        "bnn",
    ]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_finite_log_density_at_init(spec: ModelSpec) -> None:
    """The model's log joint is finite at an init_to_uniform point (what NUTS and the autoguides
    start from; AutoNormal's own initialisation is exercised below)."""
    ds = spec.make_data()
    trace = model_trace(spec, ds)
    point = {name: trace[name]["value"] for name in latent_shapes(trace)}
    assert np.isfinite(float(log_density(spec.model, (), dict(ds.model_kwargs), point)[0]))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_autonormal_initialises(spec: ModelSpec) -> None:
    ds = spec.make_data()
    svi = SVI(spec.model, AutoNormal(spec.model), numpyro.optim.Adam(1e-3), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(0), **ds.model_kwargs)
    assert np.isfinite(float(svi.evaluate(state, **ds.model_kwargs)))


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_data_deterministic_per_seed(spec: ModelSpec) -> None:
    a, b = spec.make_data(), spec.make_data()
    assert datasets_equal(a, b)
    assert datasets_equal(spec.make_data(seed=7), spec.make_data(seed=7))
    other = spec.make_data(seed=spec.default_data_seed + 1)
    if spec.name in FIXED_DATA:
        assert datasets_equal(a, other)
    else:
        assert not datasets_equal(a, other)
    for key, value in a.model_kwargs.items():
        if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jnp.floating):
            assert value.dtype == jnp.float32, key


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_size_defaults_are_data_arguments(spec: ModelSpec) -> None:
    direct = spec.data(spec.default_data_seed, **spec.size_defaults)
    assert datasets_equal(direct, spec.make_data())
    with pytest.raises(ValueError):
        spec.make_data(no_such_size_parameter=1)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_true_values_match_latents(spec: ModelSpec) -> None:
    ds = spec.make_data()
    if not ds.true_values:
        pytest.skip("no true values")
    latents = latent_shapes(model_trace(spec, ds))
    assert set(ds.true_values) <= set(latents)
    for name, value in ds.true_values.items():
        assert np.shape(value) == latents[name], name
        assert np.all(np.isfinite(value)), name
    if set(ds.true_values) == set(latents):
        lj = log_density(spec.model, (), dict(ds.model_kwargs), dict(ds.true_values))[0]
        assert np.isfinite(float(lj))


# --------------------------------------------------------------------------- manual guides


@pytest.mark.parametrize(("spec", "guide_name"), GUIDE_CASES, ids=GUIDE_IDS)
def test_manual_guide_samples_the_latents(spec: ModelSpec, guide_name: str) -> None:
    ds = spec.make_data()
    guide = spec.guides[guide_name]
    guide_trace = handlers.trace(handlers.seed(guide, 1)).get_trace(**ds.model_kwargs)
    assert latent_shapes(guide_trace) == latent_shapes(model_trace(spec, ds))
    loss = Trace_ELBO().loss(jax.random.PRNGKey(2), {}, spec.model, guide, **ds.model_kwargs)
    assert np.isfinite(float(loss))


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize("spec", specs_where(lambda s: s.exact_sampler is not None))
def test_exact_sampler_matches_moments(spec: ModelSpec) -> None:
    ds = spec.make_data()
    n = 200_000
    draws = spec.exact_sampler(np.random.default_rng(0), n, ds)
    latents = latent_shapes(model_trace(spec, ds))
    assert set(draws) == set(latents)
    for name, shape in latents.items():
        assert draws[name].shape == (n, *shape), name
    if spec.exact_moments is not None:
        moments = spec.exact_moments(ds)
        assert set(moments) == set(latents)
        for name, (mean, sd) in moments.items():
            x = np.asarray(draws[name], dtype=np.float64)
            m_hat, sd_hat = x.mean(0), x.std(0)
            assert np.shape(mean) == latents[name] and np.shape(sd) == latents[name]
            mu4 = ((x - m_hat) ** 4).mean(0)
            se_mean = sd_hat / np.sqrt(n)
            se_sd = np.sqrt(np.maximum(mu4 - sd_hat**4, 0.0) / n) / (2 * sd_hat)
            np.testing.assert_array_less(np.abs(m_hat - mean), 5 * se_mean + 1e-12)
            np.testing.assert_array_less(np.abs(sd_hat - sd), 5 * se_sd + 1e-12)
    # the draws are valid model values: finite log joint
    head = {k: v[:256] for k, v in draws.items()}
    assert np.all(np.isfinite(batched_log_joint(spec, ds, head)))


@pytest.mark.parametrize(
    "spec", specs_where(lambda s: s.exact_sampler is not None and s.log_evidence is not None)
)
def test_log_evidence_by_importance_sampling(spec: ModelSpec) -> None:
    """An independent estimate of log Z: importance sampling in the unconstrained space with a
    multivariate-t proposal fitted to exact posterior draws (catches wrong normalising terms)."""
    ds = spec.make_data()
    kw = dict(ds.model_kwargs)
    rng = np.random.default_rng(1)
    draws = spec.exact_sampler(rng, 20_000, ds)
    draws = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in draws.items()}
    uncon = jax.vmap(lambda p: unconstrain_fn(spec.model, (), kw, p))(draws)
    _, unravel = ravel_pytree(jax.tree.map(lambda v: v[0], uncon))
    flat = np.asarray(jax.vmap(lambda p: ravel_pytree(p)[0])(uncon), dtype=np.float64)
    ok = np.all(np.isfinite(flat), axis=1)
    flat = flat[ok]
    loc, cov = flat.mean(0), np.atleast_2d(np.cov(flat, rowvar=False))
    proposal = stats.multivariate_t(loc=loc, shape=cov * 1.5**2, df=5, seed=2)
    m = 100_000
    z = np.asarray(proposal.rvs(size=m)).reshape(m, -1)
    log_q = proposal.logpdf(z)
    batch = jax.vmap(unravel)(jnp.asarray(z, dtype=jnp.float32))
    log_p = -np.asarray(jax.vmap(lambda p: potential_energy(spec.model, (), kw, p))(batch))
    log_w = np.where(np.isfinite(log_p), log_p - log_q, -np.inf)
    log_z_hat = float(special.logsumexp(log_w) - np.log(m))
    w = np.exp(log_w - log_w.max())
    se = float(w.std() / w.mean() / np.sqrt(m))
    assert se < 0.05, f"proposal too poor to check (relative se {se:.3f})"
    assert abs(log_z_hat - spec.log_evidence(ds)) < 5 * se + 0.01, (log_z_hat, se)


@pytest.mark.parametrize("spec", specs_where(lambda s: s.log_density_grid is not None))
def test_quadrature_grid(spec: ModelSpec) -> None:
    ds = spec.make_data()
    axes, lp = spec.log_density_grid(ds)
    assert lp.shape == tuple(len(a) for a in axes)
    assert all(np.all(np.diff(a) > 0) for a in axes)
    log_z, means, sds = grid_summary(axes, lp)
    assert np.isfinite(log_z)
    # the grid covers the posterior: (almost) no mass on its outermost nodes
    w = np.exp(lp - lp.max())
    inner = w[tuple(slice(1, -1) for _ in axes)].sum()
    assert 1.0 - inner / w.sum() < 1e-6
    if spec.log_evidence is not None:
        assert abs(spec.log_evidence(ds) - log_z) < 1e-8
    # twice as fine: the grid error is small
    log_z2, means2, sds2 = grid_summary(*spec.log_density_grid(ds, refine=2))
    assert abs(log_z - log_z2) < 1e-5
    scale = max(max(sds), 1.0)
    np.testing.assert_allclose(means, means2, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(sds, sds2, rtol=1e-5)
    # one axis per latent site, in trace order; the grid equals the model's log joint
    latents = latent_shapes(model_trace(spec, ds))
    assert len(axes) == len(latents) and all(s == () for s in latents.values())
    if spec.exact_moments is not None:
        moments = spec.exact_moments(ds)
        for name, mean, sd in zip(latents, means, sds, strict=True):
            assert abs(float(moments[name][0]) - mean) < 1e-8 * scale
            assert abs(float(moments[name][1]) - sd) < 1e-8 * scale
    rng = np.random.default_rng(0)
    finite = np.argwhere(np.isfinite(lp) & (lp > lp.max() - 30))
    picks = finite[rng.choice(len(finite), size=16, replace=False)]
    values = {name: np.array([axes[i][p[i]] for p in picks]) for i, name in enumerate(latents)}
    model_lp = batched_log_joint(spec, ds, values)
    grid_lp = lp[tuple(picks.T)]
    np.testing.assert_allclose(model_lp, grid_lp, rtol=1e-5, atol=2e-3)


# --------------------------------------------------------------------------- predictive checks


@pytest.mark.parametrize("spec", specs_where(lambda s: s.predictive_check is not None))
def test_predictive_check_returns_floats(spec: ModelSpec) -> None:
    ds = spec.make_data()
    latents = latent_shapes(model_trace(spec, ds))
    prior = Predictive(spec.model, num_samples=32)(jax.random.PRNGKey(0), **ds.model_kwargs)
    draws = {k: np.asarray(prior[k]) for k in latents}
    result = spec.predictive_check(draws, ds)
    assert result and all(type(v) is float and np.isfinite(v) for v in result.values())


# --------------------------------------------------------------------------- model specifics


def test_bnn_sites_and_predictive_probs() -> None:
    from models import bnn

    ds = bnn.SPEC.make_data()
    latents = latent_shapes(model_trace(bnn.SPEC, ds))
    assert latents == {
        "nn/layers.0.bias": (4,),
        "nn/layers.0.kernel": (2, 4),
        "nn/layers.1.bias": (3,),
        "nn/layers.1.kernel": (4, 3),
        "nn/layers.2.bias": (1,),
        "nn/layers.2.kernel": (3, 1),
    }
    assert {k: np.shape(v) for k, v in ds.extras.items()} == {
        "x_val": (100, 2),
        "y_val": (100,),
        "x_test": (200, 2),
        "y_test": (200,),
    }
    prior = Predictive(bnn.model, num_samples=8)(jax.random.PRNGKey(0), **ds.model_kwargs)
    draws = {k: np.asarray(prior[k]) for k in latents}
    for split, n in (("train", 200), ("val", 100), ("test", 200)):
        probs = bnn.predictive_probs(draws, ds, split=split)
        assert probs.shape == (n,) and np.all((probs >= 0) & (probs <= 1))
    # the Predictive-based probabilities equal the model's own deterministic p on train
    np.testing.assert_allclose(
        bnn.draw_probs(draws, ds, "train"), np.asarray(prior["p"]), rtol=1e-5, atol=1e-6
    )
    y = np.asarray(ds.extras["y_test"])
    assert 0.3 < y.mean() < 0.7


def test_bnn_predictive_check_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import bnn

    ds = bnn.SPEC.make_data()
    y = np.asarray(ds.extras["y_test"], dtype=np.float64)
    p = np.stack([np.where(y == 1, 0.9, 0.2), np.where(y == 1, 0.7, 0.4)])
    monkeypatch.setattr(bnn, "draw_probs", lambda draws, ds, split="test": p)
    out = bnn.predictive_check({}, ds)
    expected_lpd = np.mean(np.where(y == 1, np.log(0.8), np.log(0.7)))
    assert out["test_lpd"] == pytest.approx(expected_lpd)
    assert out["test_accuracy"] == pytest.approx(1.0)


def test_correlated_gaussian_constants() -> None:
    from models import correlated_gaussian as cg

    cov = cg.covariance()
    np.testing.assert_allclose(cov, [[5.0, 4.0], [4.0, 5.0]], atol=1e-12)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(sd, np.sqrt(5.0), rtol=1e-12)
    assert cov[0, 1] / (sd[0] * sd[1]) == pytest.approx(0.8)
    assert cg.log_evidence(cg.SPEC.make_data()) == pytest.approx(np.log(6 * np.pi))


def test_multimodal_factor_equals_document_form() -> None:
    from models import multimodal_2d as mm

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-20, 20, size=(2, 10_000))
    with np.errstate(divide="ignore"):
        doc = mm.log_distribution_as_written(x, y, xp=np)
    stable = mm.log_distribution(x, y, xp=np)
    finite = doc > -700.0  # below that the document's exp() goes subnormal, then to 0
    assert finite.mean() > 0.5
    np.testing.assert_allclose(stable[finite], doc[finite], rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(stable))


def test_dirichlet_evidence_formula() -> None:
    from models import dirichlet_categorical as dc

    for alpha in (1.0, 0.02):
        ds = dc.SPEC.make_data(alpha_scale=alpha)
        # sequential predictive probabilities (Polya urn) of the ordered observations
        counts, total, log_p = np.zeros(12), 12 * alpha, 0.0
        for obs in dc.OBSERVATIONS:
            log_p += np.log((alpha + counts[obs]) / (total + counts.sum()))
            counts[obs] += 1
        assert dc.log_evidence(ds) == pytest.approx(log_p, rel=1e-10)


def test_linreg_outliers_data_shape() -> None:
    from models import linreg_outliers as lo

    x, y, yerr = lo.gen_data(12)
    assert x.shape == y.shape == yerr.shape == (15,)
    assert np.all(np.diff(x) >= 0) and np.all(np.abs(x) < 2) and np.all(yerr == 0.2)
    # the global NumPy state is untouched
    state = np.random.get_state()[1].copy()
    lo.gen_data(123)
    assert np.array_equal(state, np.random.get_state()[1])


def test_linreg_guide_scale_stays_below_half_mean() -> None:
    from models import linreg_outliers as lo

    ds = lo.SPEC.make_data()
    tr = handlers.trace(handlers.seed(lo.guide_independent, 0)).get_trace(**ds.model_kwargs)
    assert float(tr["bg_sigma"]["fn"].scale) == pytest.approx(0.2)
    params = {"bg_sigma_mu": jnp.asarray(3.0), "bg_sigma_sigma_frac": jnp.asarray(0.999)}
    tr = handlers.trace(handlers.substitute(handlers.seed(lo.guide_independent, 0), params))
    scale = float(tr.get_trace(**ds.model_kwargs)["bg_sigma"]["fn"].scale)
    assert 0 < scale < 1.5


def test_hierarchical_dimension() -> None:
    from models import hierarchical_linreg as hl

    for j in (8, 3):
        ds = hl.SPEC.make_data(n_groups=j)
        latents = latent_shapes(model_trace(hl.SPEC, ds))
        assert sum(int(np.prod(s)) for s in latents.values()) == 2 * j + 4
        assert int(np.asarray(ds.model_kwargs["I"]).max()) == j - 1
        assert len(ds.model_kwargs["X"]) == int(np.sum(ds.extras["lens"]))
