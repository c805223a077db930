"""The checks on the functions references, scoring and the report call: the exact sampler and
moments, log evidence, the quadrature grid, the predictive functions and the data plot.

Each applies when its field is set (``reference_requirements`` says which a kind needs); each
takes the shared Context, returns an optional note and raises Fail with the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from svi_bench.models.contract import tools as ck
from svi_bench.models.contract.tools import Context, Fail

SAMPLER_DRAWS = 256
MOMENT_DRAWS = 200_000
"""Draws for the agreement of exact_sampler with exact_moments, judged at 5 standard errors."""
PRIOR_DRAWS = 32


def _latent_draws(ctx: Context, draws, who: str, n: int) -> dict:
    """The latent sites' draws, checked; ``extra_sites`` may be given too (else references
    compute them from the model) and are left out."""
    if isinstance(draws, Mapping):
        draws = {k: v for k, v in draws.items() if k not in set(ctx.spec.extra_sites)}
    if not isinstance(draws, Mapping) or set(draws) != set(ctx.latents):
        got = sorted(draws) if isinstance(draws, Mapping) else type(draws).__name__
        raise Fail(f"{who} returned {got}, not the latent sites {sorted(ctx.latents)}: return "
                   "{site: array (n, *site shape)} for every latent site")
    for site, shape in ctx.latents.items():
        if np.shape(draws[site]) != (n, *shape):
            raise Fail(f"{who} gave {site} shape {np.shape(draws[site])}: want {(n, *shape)}")
    return draws


def exact_sampler(ctx: Context) -> str | None:
    spec = ctx.spec
    if spec.exact_sampler is None:
        return "none"
    draws = spec.exact_sampler(np.random.default_rng(0), SAMPLER_DRAWS, ctx.ds)
    draws = _latent_draws(ctx, draws, "exact_sampler", SAMPLER_DRAWS)
    if not np.all(np.isfinite(ck.batched_log_joint(spec, ctx.ds, draws))):
        raise Fail("some exact draws have a non-finite log joint under the model: return values "
                   "in the constrained space, inside every prior's support")
    return None


def exact_moments(ctx: Context) -> str | None:
    spec = ctx.spec
    if spec.exact_moments is None:
        return "none"
    moments = spec.exact_moments(ctx.ds)
    if not isinstance(moments, Mapping) or set(moments) != set(ctx.latents):
        got = sorted(moments) if isinstance(moments, Mapping) else type(moments).__name__
        raise Fail(f"exact_moments returned {got}, not the latent sites {sorted(ctx.latents)}: "
                   "return {site: (mean, sd)}")
    for site, (mean, sd) in moments.items():
        shape = ctx.latents[site]
        if np.shape(mean) != shape or np.shape(sd) != shape:
            raise Fail(f"exact_moments gave {site} mean and sd shapes {np.shape(mean)} and "
                       f"{np.shape(sd)}: want the site's shape {shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sd)) and np.all(np.asarray(sd) >= 0)):
            raise Fail(f"exact_moments gave {site} a non-finite mean or an invalid sd")
    return None


def exact_agreement(ctx: Context) -> str | None:
    """Means and sds of many exact draws within 5 standard errors of exact_moments."""
    spec = ctx.spec
    if spec.exact_sampler is None or spec.exact_moments is None:
        return "nothing to compare (needs both exact_sampler and exact_moments)"
    n = MOMENT_DRAWS
    draws = spec.exact_sampler(np.random.default_rng(0), n, ctx.ds)
    _latent_draws(ctx, draws, "exact_sampler", n)
    for site, (mean, sd) in spec.exact_moments(ctx.ds).items():
        x = np.asarray(draws[site], dtype=np.float64)
        m_hat, sd_hat = x.mean(0), x.std(0)
        mu4 = ((x - m_hat) ** 4).mean(0)
        se_mean = sd_hat / np.sqrt(n)
        se_sd = np.sqrt(np.maximum(mu4 - sd_hat**4, 0.0) / n) / (2 * sd_hat)
        for what, est, exact, se in (("mean", m_hat, mean, se_mean), ("sd", sd_hat, sd, se_sd)):
            if not np.all(np.abs(est - exact) < 5 * se + 1e-12):
                raise Fail(f"the {what} of {n} exact draws of {site} ({np.round(est, 5)}) is more "
                           f"than 5 standard errors from exact_moments ({np.round(exact, 5)}): "
                           "exact_sampler and exact_moments describe different posteriors")
    return None


def log_evidence(ctx: Context) -> str | None:
    if ctx.spec.log_evidence is None:
        return "none"
    value = ctx.spec.log_evidence(ctx.ds)
    if not isinstance(value, float | int | np.floating) or not np.isfinite(value):
        raise Fail(f"log_evidence returned {value!r}: return log Z as a finite float")
    return None


def quadrature_grid(ctx: Context) -> str | None:
    """Shape, coverage, resolution (refine=2) and agreement with the model's log joint."""
    spec, ds = ctx.spec, ctx.ds
    if spec.log_density_grid is None:
        return "none"
    axes, lp = spec.log_density_grid(ds)
    axes, lp = [np.asarray(a) for a in axes], np.asarray(lp)
    if lp.shape != tuple(len(a) for a in axes):
        raise Fail(f"the log density has shape {lp.shape}, the axes {[len(a) for a in axes]}")
    if not all(a.ndim == 1 and np.all(np.diff(a) > 0) for a in axes):
        raise Fail("every grid axis must be one-dimensional and strictly increasing")
    if len(axes) != len(ctx.latents) or any(s != () for s in ctx.latents.values()):
        raise Fail(f"{len(axes)} grid axes for latent sites {ctx.latents}: return one axis per "
                   "latent site, in trace order (quadrature handles scalar sites only)")
    log_z, means, sds = ck.grid_summary(axes, lp)
    if not np.isfinite(log_z):
        raise Fail("the grid's log normalising constant is not finite")
    w = np.exp(lp - lp.max())
    outer = 1.0 - w[tuple(slice(1, -1) for _ in axes)].sum() / w.sum()
    if not outer < 1e-6:
        raise Fail(f"{outer:.1e} of the grid's mass is on its outermost nodes (want < 1e-6): "
                   "widen the grid until it covers the posterior")
    try:
        log_z2, means2, sds2 = ck.grid_summary(*spec.log_density_grid(ds, refine=2))
    except TypeError as e:
        raise Fail(f"log_density_grid(ds, refine=2) failed ({e}): accept a refine factor "
                   "(a k times finer grid) so the grid error can be checked") from None
    scale = max(max(sds), 1.0)
    if not (abs(log_z - log_z2) < 1e-5
            and np.allclose(means, means2, rtol=0, atol=1e-5 * scale)
            and np.allclose(sds, sds2, rtol=1e-5, atol=0)):
        raise Fail(f"a twice finer grid moves log Z by {abs(log_z - log_z2):.1e} (or the means "
                   "and sds beyond 1e-5): use a finer grid")
    rng = np.random.default_rng(0)
    finite = np.argwhere(np.isfinite(lp) & (lp > lp.max() - 30))
    picks = finite[rng.choice(len(finite), size=min(16, len(finite)), replace=False)]
    values = {name: np.array([axes[i][p[i]] for p in picks]) for i, name in enumerate(ctx.latents)}
    model_lp, grid_lp = ck.batched_log_joint(spec, ds, values), lp[tuple(picks.T)]
    if not np.allclose(model_lp, grid_lp, rtol=1e-5, atol=2e-3):
        worst = float(np.max(np.abs(model_lp - grid_lp)))
        raise Fail(f"the grid differs from the model's log joint by up to {worst:.3g}: "
                   "log_density_grid must be the model's unnormalised log posterior, same constants")
    return None


def predictive(ctx: Context) -> str | None:
    """On prior draws: predictive_check gives finite floats, draw_probs (n_draws, n_points) and
    predictive_probs (n_points,) give probabilities."""
    spec, ds = ctx.spec, ctx.ds
    if spec.predictive_check is None:
        return "none (judged on the latent sites)"
    draws = ck.prior_draws(spec, ds, ctx.latents, PRIOR_DRAWS)
    result = spec.predictive_check(draws, ds)
    if not isinstance(result, Mapping) or not result or not all(
            type(v) is float and np.isfinite(v) for v in result.values()):
        raise Fail(f"predictive_check returned {result!r}: return {{score name: finite float}} "
                   "(convert NumPy scalars with float())")
    p = np.asarray(spec.draw_probs(draws, ds, "test"))
    if p.ndim != 2 or p.shape[0] != PRIOR_DRAWS or not np.all((p >= 0) & (p <= 1)):
        raise Fail(f"draw_probs gave shape {p.shape} for {PRIOR_DRAWS} draws: return "
                   "probabilities in [0, 1], an array (n_draws, n_points)")
    q = np.asarray(spec.predictive_probs(draws, ds))
    if q.shape != p.shape[1:] or not np.all((q >= 0) & (q <= 1)):
        raise Fail(f"predictive_probs gave shape {q.shape}: return the mean probability per "
                   f"point of the split, shape {p.shape[1:]}, in [0, 1]")
    return None


def data_plot(ctx: Context) -> str | None:
    if ctx.spec.data_plot is None:
        return "none (the report shows histograms of the array arguments)"
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = ctx.spec.data_plot(ctx.ds)
    if not isinstance(fig, Figure):
        raise Fail(f"data_plot returned {type(fig).__name__}: return the matplotlib Figure")
    plt.close(fig)
    return None
