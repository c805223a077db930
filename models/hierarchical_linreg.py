"""Hierarchical linear regression (001, "SVI Vs MCMC In High Dimensions").

J groups (size parameter ``n_groups``, the document's N_data = 8), each a straight line
y = m_j x + c_j with per-point error bars, and the population hyper-parameters m_mu, m_sig, c_mu,
c_sig: D = 2J + 4 latents. The model is the document's ``model_hierarchy`` (m and c drawn with
``sample_shape=(J,)``, as in the NumPyro tutorial it follows), except that the number of groups is
passed as the plain int ``n_groups`` instead of ``len(np.unique(I))``, which cannot run on traced
arrays. The data generator is the document's, draw for draw; ``seed`` replaces its seed 1 in both
places (NumPy's global seed and the JAX key of the Binomial group sizes). The reference is exact
(``exact_sampler``): given the two population scales the model is linear-Gaussian, so the scales'
posterior is tabulated on a grid and everything else drawn from its Gaussian conditionals. It
agrees with the gated long NUTS reference it replaces (the non-centred ``reference_model`` at
0.995) to the noise of two exact draw sets (``tests/test_model_contract.py``), and it exists at
every size: at n_groups = 2 NUTS could not pass its gates within 15 minutes of sampling.

The non-centred parameterisation of the same posterior (``noncentred_model``, m = m_mu + m_sig
m_z) is the registered model ``hierarchical_linreg_nc``: same data, and an exact reference that is
these exact draws mapped through the change of variables (``noncentred_exact_sampler``). It lives
here, not in its spec's module, so that the one source hash both models are keyed by covers the
sampler it is mapped from.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from svi_bench.models.base import Dataset, ModelSpec

XMIN, XMAX = -10, 10  # range of x values
EBAR, ESCATTER = 2.5, 1000  # average & spread of the error bars
LENMIN, LENMAX = 6, 18  # points per group: LENMIN + Binomial(LENMAX - LENMIN, 0.5)
TRUTH = {"m_mu": 0.5, "m_sig": 0.2, "c_mu": 10.0, "c_sig": 1.0}


def _hyperpriors() -> tuple:
    """Vague hyper-priors (the code's HalfNormal scales 10 and 15; the prose says 15 and 25)."""
    m_mu = numpyro.sample("m_mu", dist.Normal(0.0, 15.0))
    m_sig = numpyro.sample("m_sig", dist.HalfNormal(10.0))
    c_mu = numpyro.sample("c_mu", dist.Normal(0.0, 25.0))
    c_sig = numpyro.sample("c_sig", dist.HalfNormal(15.0))
    return m_mu, m_sig, c_mu, c_sig


def model(
    I: jnp.ndarray,
    X: jnp.ndarray,
    Y: jnp.ndarray | None = None,
    E: jnp.ndarray | None = None,
    *,
    n_groups: int,
) -> None:
    m_mu, m_sig, c_mu, c_sig = _hyperpriors()

    # Gradients & offsets for the entire population
    m = numpyro.sample("m", dist.Normal(m_mu, m_sig), sample_shape=(n_groups,))
    c = numpyro.sample("c", dist.Normal(c_mu, c_sig), sample_shape=(n_groups,))
    pred = m[I] * X + c[I]

    with numpyro.plate("samples", size=len(X)):
        numpyro.sample("y", dist.Normal(pred, E), obs=Y)


def noncentred_model(
    I: jnp.ndarray,
    X: jnp.ndarray,
    Y: jnp.ndarray | None = None,
    E: jnp.ndarray | None = None,
    *,
    n_groups: int,
) -> None:
    """The same posterior, non-centred: the document's centred model has a funnel between
    (m_sig, c_sig) and (m, c) that NUTS cannot explore without divergences. ``m`` and ``c`` are
    deterministic sites here, so it has the centred model's sites (the centred model's
    ``reference_model``, and the model of ``hierarchical_linreg_nc``)."""
    m_mu, m_sig, c_mu, c_sig = _hyperpriors()
    m_z = numpyro.sample("m_z", dist.Normal(0.0, 1.0), sample_shape=(n_groups,))
    c_z = numpyro.sample("c_z", dist.Normal(0.0, 1.0), sample_shape=(n_groups,))
    m = numpyro.deterministic("m", m_mu + m_sig * m_z)
    c = numpyro.deterministic("c", c_mu + c_sig * c_z)
    with numpyro.plate("samples", size=len(X)):
        numpyro.sample("y", dist.Normal(m[I] * X + c[I], E), obs=Y)


def gen_data(seed: int = 1, n_groups: int = 8) -> dict[str, np.ndarray]:
    """The document's generator. ``np.random.RandomState(seed)`` reproduces its global
    ``np.random.seed(seed)`` stream without touching NumPy's global state."""
    rs = np.random.RandomState(seed)
    lens = LENMIN + dist.Binomial(LENMAX - LENMIN, 0.5).sample(
        jax.random.PRNGKey(seed), sample_shape=(n_groups,)
    )
    lens = np.asarray(lens).astype(int)
    xs, ys, es, mtrue, ctrue = [], [], [], [], []
    for i in range(n_groups):
        n = int(lens[i])
        x = rs.rand(n) * (XMAX - XMIN) + XMIN
        x.sort()
        m = rs.randn() * TRUTH["m_sig"] + TRUTH["m_mu"]
        c = rs.randn() * TRUTH["c_sig"] + TRUTH["c_mu"]
        mtrue.append(m)
        ctrue.append(c)
        e = (rs.poisson(lam=ESCATTER, size=len(x)) / ESCATTER + 1) / 2 * EBAR
        y = m * x + c + e * rs.normal(size=len(x))
        xs.append(x)
        ys.append(y)
        es.append(e)
    return {
        "I": np.concatenate([np.full(len(x), i) for i, x in enumerate(xs)]),
        "X": np.concatenate(xs),
        "Y": np.concatenate(ys),
        "E": np.concatenate(es),
        "Mtrue": np.asarray(mtrue),
        "Ctrue": np.asarray(ctrue),
        "lens": lens,
    }


def data(seed: int, n_groups: int = 8) -> Dataset:
    g = gen_data(seed, int(n_groups))
    as32 = {k: jnp.asarray(g[k], dtype=jnp.float32) for k in ("X", "Y", "E")}
    truth = {k: np.asarray(v) for k, v in TRUTH.items()}
    truth |= {"m": g["Mtrue"], "c": g["Ctrue"]}
    return Dataset(
        model_kwargs={"I": jnp.asarray(g["I"], dtype=jnp.int32), **as32, "n_groups": int(n_groups)},
        true_values=truth,
        extras={"lens": g["lens"]},
    )


def noncentred_data(seed: int, n_groups: int = 8) -> Dataset:
    """``data`` for ``noncentred_model``: the same arrays, the true group values given as the
    standardised offsets m_z = (m - m_mu) / m_sig and c_z (its latent sites)."""
    ds = data(seed, n_groups)
    truth = dict(ds.true_values)
    for site in ("m", "c"):
        truth[f"{site}_z"] = (truth.pop(site) - truth[f"{site}_mu"]) / truth[f"{site}_sig"]
    return dataclasses.replace(ds, true_values=truth)


# --- the exact posterior: the scales by quadrature, everything else Gaussian given them ----------
#
# Given the scales S = diag(m_sig^2, c_sig^2), the model is linear-Gaussian in (m_mu, c_mu, m, c).
# Group j's likelihood is Gaussian in beta_j = (m_j, c_j) with precision A_j = Phi' W Phi and
# least-squares fit bhat_j = A_j^-1 Phi' W y (Phi = [x, 1], W = diag(1 / E^2)); integrating beta_j
# out leaves bhat_j ~ N(mu, V_j), V_j = S + A_j^-1, and integrating mu ~ N(0, T) out leaves
# p(y | S) in closed form. The two scales' posterior is then tabulated on a grid in log scale,
# refined twice around its mass; draws pick a cell by mass and a point within it, then draw mu and
# every beta_j from their exact Gaussian conditionals. No NUTS, no funnel, any n_groups.

HYPER_SD = np.array([15.0, 25.0])  # sd of the Normal priors of (m_mu, c_mu)
SCALE_SD = np.array([10.0, 15.0])  # scales of the HalfNormal priors of (m_sig, c_sig)
GRID_POINTS = (200, 200, 400)  # per axis: the wide search, then two refinements
GRID_TAIL = 1e-9  # a refinement drops the tails of each scale holding less than this mass
_LOG_RANGE = (math.log(1e-12), math.log(300.0))  # the wide search's range of log scale


def _inv2(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log determinants of a stack of symmetric positive 2 x 2 matrices (..., 2, 2)."""
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    inv = np.empty_like(a)
    inv[..., 0, 0], inv[..., 1, 1] = a[..., 1, 1] / det, a[..., 0, 0] / det
    inv[..., 0, 1], inv[..., 1, 0] = -a[..., 0, 1] / det, -a[..., 1, 0] / det
    return inv, np.log(det)


def _group_fits(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: the likelihood's precision A_j (J, 2, 2), its inverse and the fit bhat_j (J, 2),
    in float64 from the data exactly as the model sees them."""
    kw = ds.model_kwargs
    group = np.asarray(kw["I"]).astype(int)
    x, y, e = (np.asarray(kw[k]).astype(np.float64) for k in ("X", "Y", "E"))
    w = 1.0 / e**2
    n_groups = int(kw["n_groups"])
    sums = [np.bincount(group, weights=v, minlength=n_groups)
            for v in (w * x * x, w * x, w, w * x * y, w * y)]
    a = np.stack([np.stack([sums[0], sums[1]], -1), np.stack([sums[1], sums[2]], -1)], -2)
    b = np.stack([sums[3], sums[4]], -1)
    a_inv, _ = _inv2(a)
    return a, a_inv, np.einsum("jab,jb->ja", a_inv, b)


def _conditionals(scales: np.ndarray, a_inv: np.ndarray, bhat: np.ndarray):
    """For scale pairs (G, 2): log p(y | S) up to a constant, and mu's Gaussian conditional
    (mean (G, 2), covariance (G, 2, 2))."""
    s = np.zeros(scales.shape[:-1] + (2, 2))
    s[..., 0, 0], s[..., 1, 1] = scales[..., 0] ** 2, scales[..., 1] ** 2
    v_inv, v_logdet = _inv2(s[:, None] + a_inv[None])  # (G, J, 2, 2)
    h = np.einsum("gjab,jb->ga", v_inv, bhat)
    prec = v_inv.sum(1) + np.diag(1.0 / HYPER_SD**2)
    cov, prec_logdet = _inv2(prec)
    mean = np.einsum("gab,gb->ga", cov, h)
    quad = np.einsum("ja,gjab,jb->g", bhat, v_inv, bhat)
    loglik = -0.5 * (v_logdet.sum(1) + prec_logdet + quad - np.einsum("ga,ga->g", h, mean))
    return loglik, mean, cov


def _scale_grid(ds: Dataset) -> tuple[list[np.ndarray], np.ndarray]:
    """The grid in (log m_sig, log c_sig) and the log posterior density there (the scales'
    HalfNormal priors and the Jacobian of the log included), refined around its mass."""
    _, a_inv, bhat = _group_fits(ds)
    box = [_LOG_RANGE, _LOG_RANGE]
    for points in GRID_POINTS:
        axes = [np.linspace(lo, hi, points) for lo, hi in box]
        u = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        scales = np.exp(u)
        logp = np.concatenate([_conditionals(chunk, a_inv, bhat)[0]
                               for chunk in np.array_split(scales, max(1, len(u) // 4096))])
        logp += (-0.5 * (scales / SCALE_SD) ** 2 + u).sum(1)
        logp = logp.reshape(points, points)
        mass = np.exp(logp - logp.max())
        mass /= mass.sum()
        box = []
        for axis, ax in enumerate(axes):
            cumulative = np.cumsum(mass.sum(axis=1 - axis))
            lo = max(int(np.searchsorted(cumulative, GRID_TAIL)) - 1, 0)
            hi = min(int(np.searchsorted(cumulative, 1.0 - GRID_TAIL)) + 1, len(ax) - 1)
            step = ax[1] - ax[0]  # a tail that reaches the edge of the range: one step further
            box.append((ax[lo] - step * (lo == 0), ax[hi] + step * (hi == len(ax) - 1)))
    return axes, logp


def _gaussian(rng: np.random.Generator, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """One draw per row of N(mean, cov) for stacks of 2-vectors and 2 x 2 covariances."""
    l00 = np.sqrt(cov[..., 0, 0])
    l10 = cov[..., 1, 0] / l00
    l11 = np.sqrt(np.maximum(cov[..., 1, 1] - l10**2, 0.0))
    z = rng.standard_normal(mean.shape)
    return mean + np.stack([l00 * z[..., 0], l10 * z[..., 0] + l11 * z[..., 1]], -1)


def exact_sampler(rng: np.random.Generator, n: int, ds: Dataset) -> dict[str, np.ndarray]:
    """Exact posterior draws: the scales from the quadrature grid (a cell by mass, a uniform
    point within it), then mu and every group's (m_j, c_j) from their Gaussian conditionals."""
    axes, logp = _scale_grid(ds)
    p = np.exp(logp - logp.max()).ravel()
    cells = np.unravel_index(rng.choice(p.size, size=n, p=p / p.sum()), logp.shape)
    u = np.stack([ax[i] + (rng.uniform(size=n) - 0.5) * (ax[1] - ax[0])
                  for ax, i in zip(axes, cells, strict=True)], -1)
    scales = np.exp(u)
    a, a_inv, bhat = _group_fits(ds)
    mu = np.concatenate([_gaussian(rng, *_conditionals(chunk, a_inv, bhat)[1:])
                         for chunk in np.array_split(scales, max(1, n // 4096))])
    s_inv = 1.0 / scales**2  # beta_j | mu, S, y: precision S^-1 + A_j, mean K_j (S^-1 mu + A_j bhat_j)
    k, _ = _inv2(a[None] + np.einsum("na,ab->nab", s_inv, np.eye(2))[:, None])
    rhs = (s_inv * mu)[:, None] + np.einsum("jab,jb->ja", a, bhat)[None]
    beta = _gaussian(rng, np.einsum("njab,njb->nja", k, rhs), k)
    return {"m_mu": mu[:, 0], "m_sig": scales[:, 0], "c_mu": mu[:, 1], "c_sig": scales[:, 1],
            "m": beta[..., 0], "c": beta[..., 1]}


def _node_moments(ds: Dataset) -> dict[str, np.ndarray]:
    """At every node of the scales' quadrature grid: its weight ``w`` (G,), the ``scales``
    (G, 2), mu's conditional mean and covariance (G, 2) and (G, 2, 2), and beta_j | mu's linear
    map ``ks`` = K_j S^-1 (how mu moves beta_j), covariance ``k`` = K_j (G, J, 2, 2) and the
    conditional mean of beta_j with mu integrated out (G, J, 2)."""
    axes, logp = _scale_grid(ds)
    w = np.exp(logp - logp.max()).ravel()
    w /= w.sum()
    scales = np.exp(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2))
    a, a_inv, bhat = _group_fits(ds)
    _, mu_mean, mu_cov = _conditionals(scales, a_inv, bhat)
    s_inv = 1.0 / scales**2
    k, _ = _inv2(a[None] + np.einsum("na,ab->nab", s_inv, np.eye(2))[:, None])  # (G, J, 2, 2)
    ks = k * s_inv[:, None, None, :]
    beta_mean = np.einsum("gjab,gb->gja", ks, mu_mean) + np.einsum(
        "gjab,jb->gja", k, np.einsum("jab,jb->ja", a, bhat))
    return {"w": w, "scales": scales, "mu_mean": mu_mean, "mu_cov": mu_cov, "ks": ks, "k": k,
            "beta_mean": beta_mean}


def _total(w: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd over the grid's nodes of conditional means and variances (law of total
    variance: E[var] + var[E])."""
    m = np.tensordot(w, mean, axes=1)
    return m, np.sqrt(np.tensordot(w, var + mean**2, axes=1) - m**2)


def _scale_and_mu_moments(nodes: dict[str, np.ndarray]) -> dict[str, tuple]:
    w, scales = nodes["w"], nodes["scales"]
    s_mean, s_sd = _total(w, scales, np.zeros_like(scales))
    mu_m, mu_sd = _total(w, nodes["mu_mean"], np.einsum("gaa->ga", nodes["mu_cov"]))
    return {"m_mu": (mu_m[0], mu_sd[0]), "c_mu": (mu_m[1], mu_sd[1]),
            "m_sig": (s_mean[0], s_sd[0]), "c_sig": (s_mean[1], s_sd[1])}


def exact_moments(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Posterior means and sds by the same quadrature: scale moments over the grid's nodes, the
    rest from the conditional means and covariances (total variance = E[var] + var[E])."""
    nodes = _node_moments(ds)
    ks = nodes["ks"]
    beta_var = (np.einsum("gjaa->gja", nodes["k"])
                + np.einsum("gjab,gbc,gjac->gja", ks, nodes["mu_cov"], ks))
    b_m, b_sd = _total(nodes["w"], nodes["beta_mean"], beta_var)
    return {**_scale_and_mu_moments(nodes),
            "m": (b_m[:, 0], b_sd[:, 0]), "c": (b_m[:, 1], b_sd[:, 1])}


def noncentred_exact_sampler(rng: np.random.Generator, n: int, ds: Dataset
                             ) -> dict[str, np.ndarray]:
    """Exact draws of ``noncentred_model``: ``exact_sampler``'s, with the standardised offsets
    m_z = (m - m_mu) / m_sig and c_z = (c - c_mu) / c_sig (the change of variables is one to
    one given the scales, so these are exact too); m and c kept as its deterministic sites."""
    draws = exact_sampler(rng, n, ds)
    return {**draws,
            "m_z": (draws["m"] - draws["m_mu"][:, None]) / draws["m_sig"][:, None],
            "c_z": (draws["c"] - draws["c_mu"][:, None]) / draws["c_sig"][:, None]}


def noncentred_exact_moments(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Means and sds of ``noncentred_model``'s latent sites by the same quadrature. Given the
    scales, beta_j - mu = (K_j S^-1 - 1) mu + const + N(0, K_j), so z_j = (beta_j - mu) / s is
    Gaussian with the moments below; the grid then integrates the scales out."""
    nodes = _node_moments(ds)
    scales = nodes["scales"][:, None, :]  # (G, 1, 2)
    lift = nodes["ks"] - np.eye(2)  # (G, J, 2, 2)
    diff_mean = nodes["beta_mean"] - nodes["mu_mean"][:, None]
    diff_var = (np.einsum("gjaa->gja", nodes["k"])
                + np.einsum("gjab,gbc,gjac->gja", lift, nodes["mu_cov"], lift))
    z_m, z_sd = _total(nodes["w"], diff_mean / scales, diff_var / scales**2)
    return {**_scale_and_mu_moments(nodes),
            "m_z": (z_m[:, 0], z_sd[:, 0]), "c_z": (z_m[:, 1], z_sd[:, 1])}


def data_plot(ds: Dataset):
    """One panel per group: points, error bars and the group's true line."""
    import matplotlib.pyplot as plt

    group = np.asarray(ds.model_kwargs["I"]).astype(int)
    x, y, e = (np.asarray(ds.model_kwargs[k], dtype=float) for k in ("X", "Y", "E"))
    n_groups = int(ds.model_kwargs.get("n_groups", group.max() + 1))
    cols = min(4, n_groups)
    rows = math.ceil(n_groups / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.9 * rows), sharex=True, sharey=True,
                             squeeze=False)
    tv = ds.true_values or {}
    m_true, c_true = tv.get("m"), tv.get("c")
    grid = np.linspace(x.min(), x.max(), 20)
    for j, ax in enumerate(axes.ravel()):
        if j >= n_groups:
            ax.set_visible(False)
            continue
        sel = group == j
        ax.errorbar(x[sel], y[sel], yerr=e[sel], fmt="o", ms=3, color="#1f77b4",
                    ecolor="#9ecae1", elinewidth=0.8)
        if m_true is not None and c_true is not None:
            ax.plot(grid, float(m_true[j]) * grid + float(c_true[j]), "k--", lw=0.8)
        ax.set_title(f"group {j} (n={int(sel.sum())})", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.supxlabel("x", fontsize=9)
    fig.supylabel("y", fontsize=9)
    fig.tight_layout()
    return fig


SPEC = ModelSpec(
    name="hierarchical_linreg",
    description="Hierarchical straight-line fits: J groups sharing Normal population priors on "
    "slope and offset; D = 2J + 4 latents (20 at J = 8). Exact reference: the two scales by "
    "quadrature, the rest Gaussian given them.",
    source="001_72ee50f5248cddec.txt, 'SVI Vs MCMC In High Dimensions'",
    model=model,
    data=data,
    guides={},
    reference_kind="exact",
    default_data_seed=1,
    size_defaults={"n_groups": 8},
    exact_sampler=exact_sampler,
    exact_moments=exact_moments,
    reference_model=noncentred_model,
    data_plot=data_plot,
    notes="The group count is passed as the plain int model argument n_groups instead of the "
    "document's len(np.unique(I)). Hyper-prior scales follow the document's code (HalfNormal(10) "
    "and HalfNormal(15)); its prose says 15 and 25. The group sizes come from a JAX Binomial "
    "draw, so the exact data can change with the JAX version. No manual guide in the document.",
)
