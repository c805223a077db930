"""Dirichlet-categorical (000, "Live variational inference").

Twelve categories, ``theta ~ Dirichlet(alpha_scale * ones(12))`` and the document's fixed
observations [2, 2, 2, 2, 2, 5, 5, 5] at site ``obs1``. The document anneals ``alpha_scale`` from
1.0 to 0.02 during SVI; here it is a model argument (and a size parameter), 1.0 by default. The
posterior is Dirichlet(alpha + counts) exactly; at small ``alpha_scale`` the ten unobserved
categories pile up against the simplex boundary, which is what makes the example hard for
Gaussian guides in the stick-breaking space.

``n_obs`` (an optional size parameter, 8 by default) keeps only the first ``n_obs`` observations:
the data seen so far when they arrive during the run (the ``live_data`` study). The others are
masked out, not sliced off, so ``n_obs`` can be a traced argument and one compiled program serves
every batch; the posterior is Dirichlet(alpha + counts of the first n_obs) exactly.

Numerical caveat at small ``alpha_scale``: each unobserved component's posterior is
Beta(alpha, alpha0 - alpha), which at alpha = 0.02 puts 18% of its mass below float32's smallest
normal number (1.2e-38) and 1e-6 below float64's (numpy's exact draws then contain exact zeros).
Evaluating the Dirichlet log density of such draws in float32 gives infinities, so compare
methods on moments or in float64, not by log densities of exact draws.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from scipy import special

from svi_bench.models.base import Dataset, ModelSpec, SizeParam

K = 12
OBSERVATIONS = (2, 2, 2, 2, 2, 5, 5, 5)
N_OBS = len(OBSERVATIONS)


def model(alpha_scale: float = 1.0, n_obs: float = N_OBS) -> None:
    # The document's model: the observations are fixed inside it, with no plate (the Categorical
    # log-probs of all eight observations are summed); those beyond n_obs are masked out.
    alpha = jnp.ones(K) * alpha_scale
    theta = numpyro.sample("theta", dist.Dirichlet(alpha))
    seen = jnp.arange(N_OBS) < n_obs
    with numpyro.handlers.mask(mask=seen):
        numpyro.sample("obs1", dist.Categorical(theta), obs=jnp.array(OBSERVATIONS))


def data(seed: int, alpha_scale: float = 1.0, n_obs: int = N_OBS) -> Dataset:
    """The data are fixed; ``seed`` is ignored. ``alpha_scale`` is the Dirichlet concentration,
    ``n_obs`` the observations seen so far (a model argument only when fewer than all)."""
    kwargs: dict = {"alpha_scale": float(alpha_scale)}
    if int(n_obs) != N_OBS:
        kwargs["n_obs"] = int(n_obs)
    return Dataset(model_kwargs=kwargs, true_values=None)


def _alphas(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Prior and posterior Dirichlet concentrations."""
    prior = np.full(K, float(ds.model_kwargs["alpha_scale"]))
    seen = np.asarray(OBSERVATIONS[:int(ds.model_kwargs.get("n_obs", N_OBS))], dtype=int)
    counts = np.bincount(seen, minlength=K).astype(np.float64)
    return prior, prior + counts


def exact_sampler(rng: np.random.Generator, n: int, ds: Dataset) -> dict[str, np.ndarray]:
    _, post = _alphas(ds)
    return {"theta": rng.dirichlet(post, size=n)}


def exact_moments(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    _, a = _alphas(ds)
    a0 = a.sum()
    mean = a / a0
    sd = np.sqrt(a * (a0 - a) / (a0**2 * (a0 + 1.0)))
    return {"theta": (mean, sd)}


def _log_beta(a: np.ndarray) -> float:
    return float(special.gammaln(a).sum() - special.gammaln(a.sum()))


def log_evidence(ds: Dataset) -> float:
    """Dirichlet-categorical probability of the ordered sequence: log B(alpha+n) - log B(alpha)."""
    prior, post = _alphas(ds)
    return _log_beta(post) - _log_beta(prior)


def data_plot(ds: Dataset):
    """Counts of the fixed observations per category (they live in the model, not in ``ds``)."""
    import matplotlib.pyplot as plt

    obs = np.asarray(OBSERVATIONS[:int(ds.model_kwargs.get("n_obs", N_OBS))], dtype=int)
    counts = np.bincount(obs, minlength=K)
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    ax.bar(np.arange(K), counts, color="#1f77b4")
    ax.set_xticks(np.arange(K))
    ax.set_xlabel("category")
    ax.set_ylabel("observations")
    alpha = ds.model_kwargs.get("alpha_scale")
    title = f"{obs.size} categorical observations"
    if alpha is not None:
        title += f"; Dirichlet prior concentration {float(alpha):g}"
    ax.set_title(title, fontsize=9)
    return fig


SPEC = ModelSpec(
    name="dirichlet_categorical",
    description="12-category Dirichlet prior (concentration alpha_scale) and 8 categorical "
    "observations; exact Dirichlet posterior.",
    source="000_71175e88198ad239.txt, 'Live variational inference'",
    model=model,
    data=data,
    guides={},
    reference_kind="exact",
    default_data_seed=0,
    size_defaults={"alpha_scale": 1.0},
    optional_sizes={"n_obs": N_OBS},
    size_params={"n_obs": SizeParam(int, 0, N_OBS)},
    exact_sampler=exact_sampler,
    exact_moments=exact_moments,
    log_evidence=log_evidence,
    data_uses_seed=False,
    data_plot=data_plot,
    notes="The document anneals alpha_scale from 1.0 to 0.02 (its prose says 0.1) inside one SVI "
    "run; the suite treats each alpha_scale as a separate data set. No manual guide in the "
    "document (it uses AutoNormal). The data do not depend on the seed. At alpha_scale 0.02, "
    "18% of each unobserved component's posterior mass lies below float32's smallest normal "
    "number, so exact draws underflow in float32 (and occasionally are exactly 0 in float64).",
)
