"""The draws of quadrature references, not only the grid error they report about themselves.

A quadrature reference is a sample from the tabulated density (a node picked by its mass,
jittered within its cell), one column per latent site. Its draws must have the grid's own moments
per site, within Monte Carlo error: the mean within 4 standard errors sd / sqrt(n), the sd within
4 of its standard errors sqrt((m4 - sd^4) / n) / (2 sd). The site names must land on the right
columns: checked on a model whose two sites differ in every moment and whose trace order is not
alphabetical, against the analytic answer. The references checked are the ones the suite uses
(``get_reference``: the results folder, then the shipped references, then the machine cache,
which is redirected to a temporary folder here so that nothing is written outside it).
"""

from __future__ import annotations

import math

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.models import REGISTRY, Dataset, ModelSpec

jax_setup.configure_jax()

Z = 4.0  # standard errors allowed
QUADRATURE = [spec for spec in REGISTRY.values() if spec.reference_kind == "quadrature"]


def _reference(spec: ModelSpec, out, monkeypatch, rebuild: bool = False):
    monkeypatch.setattr(jax_setup, "DEFAULT_CACHE_DIR", out / "cache")
    ds = spec.make_data()
    info = latent_info(spec.model, ds.model_kwargs)
    ref = get_reference(spec, ds, spec.data_key(), info.sites, out, rebuild=rebuild,
                        log=lambda _msg: None)
    assert ref.kind == "quadrature" and ref.ok, ref.failure
    return ref, ds, info.sites


def _grid_moments(axes, logp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means, sds and covariance matrix of the tabulated density, nodes weighted by mass (the
    rule the draws follow), computed here independently of the builder."""
    w = np.exp(logp - logp.max())
    w /= w.sum()
    grids = [g.ravel() for g in np.meshgrid(*axes, indexing="ij")]
    x = np.stack(grids, axis=1)
    mean = w.ravel() @ x
    cov = (x - mean).T @ ((x - mean) * w.ravel()[:, None])
    return mean, np.sqrt(np.diag(cov)), cov


def _assert_moments(site: str, draws: np.ndarray, mean: float, sd: float, what: str) -> None:
    d = np.asarray(draws, dtype=np.float64)
    n = d.size
    se_mean = d.std() / math.sqrt(n)
    m4 = np.mean((d - d.mean()) ** 4)
    se_sd = math.sqrt(max(m4 - d.var() ** 2, 0.0) / n) / (2 * d.std())
    z_mean = abs(d.mean() - mean) / se_mean
    z_sd = abs(d.std() - sd) / se_sd
    assert z_mean < Z and z_sd < Z, (
        f"{site} against {what}: mean {d.mean():.5g} vs {mean:.5g} (z = {z_mean:.1f}), "
        f"sd {d.std():.5g} vs {sd:.5g} (z = {z_sd:.1f})")


@pytest.mark.parametrize("rebuild", [False, True], ids=["as-used", "rebuilt"])
@pytest.mark.parametrize("spec", QUADRATURE, ids=[s.name for s in QUADRATURE])
def test_draws_have_the_grid_moments_per_site(spec, rebuild, tmp_path, monkeypatch):
    """The reference the suite would use (shipped or stored) and one the builder makes now."""
    ref, ds, sites = _reference(spec, tmp_path, monkeypatch, rebuild)
    assert set(ref.draws) == set(sites)
    axes, logp = spec.log_density_grid(ds)
    mean, sd, cov = _grid_moments(axes, logp)
    checks = ref.provenance["checks"]
    np.testing.assert_allclose(checks["grid_mean"], mean, rtol=1e-9, atol=1e-9 * sd.max())
    np.testing.assert_allclose(checks["grid_sd"], sd, rtol=1e-9)
    moments = spec.exact_moments(ds) if spec.exact_moments is not None else {}
    for i, site in enumerate(sites):  # grid axes are in trace order (the contract)
        draws = ref.draws[site]
        assert draws.shape == (ref.provenance["draws"],), (site, draws.shape)
        lo, hi = axes[i][0], axes[i][-1]
        assert np.all((draws >= lo) & (draws <= hi)), site
        _assert_moments(site, draws, mean[i], sd[i], "the grid")
        if site in moments:  # the model's own quadrature summary, looked up by site name
            _assert_moments(site, draws, float(moments[site][0]), float(moments[site][1]),
                            "the model's exact_moments")
    if len(sites) == 2:  # the joint: a column shuffled on its own would lose the correlation
        rho = cov[0, 1] / (sd[0] * sd[1])
        r = np.corrcoef(ref.draws[sites[0]], ref.draws[sites[1]])[0, 1]
        n = len(ref.draws[sites[0]])
        assert abs(r - rho) < Z * (1 - rho**2) / math.sqrt(n), (r, rho)


# A 2-D density whose sites differ in mean, sd and order: b ~ N(-3, 2), a | b ~ N(1 + 0.15 (b + 3),
# 0.4), so a ~ N(1, 0.5) and corr(a, b) = 0.15 * 4 / (0.5 * 2) = 0.6. Trace order is (b, a).
B_MEAN, B_SD, A_MEAN, A_SD, RHO = -3.0, 2.0, 1.0, 0.5, 0.6


def _two_site_model() -> None:
    b = numpyro.sample("b", dist.Normal(B_MEAN, B_SD))
    numpyro.sample("a", dist.Normal(A_MEAN + 0.15 * (b - B_MEAN), 0.4))


def _two_site_grid(ds: Dataset, refine: int = 1):
    b = np.linspace(B_MEAN - 9 * B_SD, B_MEAN + 9 * B_SD, 400 * refine + 1)
    a = np.linspace(A_MEAN - 9 * A_SD, A_MEAN + 9 * A_SD, 300 * refine + 1)
    bb, aa = np.meshgrid(b, a, indexing="ij")
    logp = stats.norm.logpdf(bb, B_MEAN, B_SD) + stats.norm.logpdf(aa, A_MEAN + 0.15 * (bb - B_MEAN),
                                                                   0.4)
    return [b, a], logp


TWO_SITES = ModelSpec(name="two_site_quadrature", description="correlated normal pair",
                      source="tests", model=_two_site_model,
                      data=lambda seed: Dataset(model_kwargs={}), guides={},
                      reference_kind="quadrature", data_uses_seed=False,
                      log_density_grid=_two_site_grid)


def test_columns_map_to_their_sites(tmp_path, monkeypatch):
    ref, _, sites = _reference(TWO_SITES, tmp_path, monkeypatch)
    assert sites == ("b", "a")  # trace order, not alphabetical
    _assert_moments("a", ref.draws["a"], A_MEAN, A_SD, "the analytic marginal")
    _assert_moments("b", ref.draws["b"], B_MEAN, B_SD, "the analytic marginal")
    r = np.corrcoef(ref.draws["a"], ref.draws["b"])[0, 1]
    assert abs(r - RHO) < Z * (1 - RHO**2) / math.sqrt(len(ref.draws["a"])), r
