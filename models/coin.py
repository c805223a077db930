"""Heads or tails (001, "Heads or Tails: A Simple Model"): a Beta-Bernoulli coin.

Uniform(0, 1) prior on ``latent_fairness`` and 12 heads, 8 tails, so the exact posterior is
Beta(13, 9). The document's "truth" Beta(12, 8) forgets the prior's +1; the suite uses Beta(13, 9).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from scipy import special, stats

from svi_bench.models.base import Dataset, ModelSpec


def model(data: jnp.ndarray) -> None:
    f = numpyro.sample("latent_fairness", dist.Uniform(0.0, 1.0))
    with numpyro.plate("N", data.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(f), obs=data)


def guide_beta(data: jnp.ndarray) -> None:
    """The document's exact-family guide, both concentrations started at 10."""
    alpha_q = numpyro.param("alpha_q", 10.0, constraint=constraints.positive)
    beta_q = numpyro.param("beta_q", 10.0, constraint=constraints.positive)
    numpyro.sample("latent_fairness", dist.Beta(alpha_q, beta_q))


def guide_normal(data: jnp.ndarray) -> None:
    """The document's Normal guide: its support (the real line) deliberately exceeds (0, 1).

    Draws outside (0, 1) get -inf under the Uniform prior, so the ELBO can turn infinite or NaN;
    the suite records whatever happens rather than hiding it.
    """
    mean = numpyro.param("mean", 0.5, constraint=constraints.unit_interval)
    scale = numpyro.param("var", 0.1, constraint=constraints.positive)
    numpyro.sample("latent_fairness", dist.Normal(mean, scale))


def data(seed: int, heads: int = 12, tails: int = 8) -> Dataset:
    """The document's fixed flips; ``seed`` only shuffles their order, which the model ignores."""
    flips = np.concatenate([np.ones(heads), np.zeros(tails)]).astype(np.float32)
    np.random.default_rng(seed).shuffle(flips)
    return Dataset(model_kwargs={"data": jnp.asarray(flips)}, true_values=None)


def _posterior_ab(ds: Dataset) -> tuple[float, float]:
    flips = np.asarray(ds.model_kwargs["data"])
    heads = float(flips.sum())
    return 1.0 + heads, 1.0 + float(flips.size - heads)


def exact_sampler(rng: np.random.Generator, n: int, ds: Dataset) -> dict[str, np.ndarray]:
    a, b = _posterior_ab(ds)
    return {"latent_fairness": rng.beta(a, b, size=n)}


def exact_moments(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    a, b = _posterior_ab(ds)
    post = stats.beta(a, b)
    return {"latent_fairness": (np.asarray(post.mean()), np.asarray(post.std()))}


def log_evidence(ds: Dataset) -> float:
    """log Z = log B(1 + heads, 1 + tails) under the Uniform prior."""
    a, b = _posterior_ab(ds)
    return float(special.betaln(a, b))


def data_plot(ds: Dataset):
    """Bar chart of heads and tails."""
    import matplotlib.pyplot as plt

    flips = np.asarray(ds.model_kwargs["data"], dtype=float)
    heads, tails = int(flips.sum()), int(flips.size - flips.sum())
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    ax.bar(["heads", "tails"], [heads, tails], color=["#1f77b4", "#ff7f0e"])
    for i, v in enumerate((heads, tails)):
        ax.text(i, v, str(v), ha="center", va="bottom")
    ax.set_ylabel("count")
    ax.set_title(f"{flips.size} coin flips", fontsize=10)
    ax.set_ylim(0, max(heads, tails) * 1.2 + 1)
    return fig


SPEC = ModelSpec(
    name="coin",
    description="Beta-Bernoulli coin: 12 heads, 8 tails, Uniform prior; exact posterior Beta(13, 9).",
    source="001_72ee50f5248cddec.txt, 'Heads or Tails: A Simple Model'",
    model=model,
    data=data,
    guides={"beta": guide_beta, "normal": guide_normal},
    reference_kind="exact",
    default_data_seed=0,
    size_defaults={"heads": 12, "tails": 8},
    exact_sampler=exact_sampler,
    exact_moments=exact_moments,
    log_evidence=log_evidence,
    data_plot=data_plot,
    notes="The document's 'truth' Beta(12, 8) omits the Uniform prior's +1: the posterior is "
    "Beta(13, 9). The `normal` guide's support mismatch is kept on purpose.",
)
