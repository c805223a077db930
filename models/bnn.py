"""Bayesian neural network classifier (002, "End-to-End Example: Bayesian Neural Network Model").

The talk's MLP (2 inputs, hidden layers [4, 3] with tanh, one sigmoid output) as a flax nnx
module, made random by ``numpyro.contrib.module.random_nnx_module("nn", ...)`` with a
SoftLaplace(0, 1) prior on the kernels and Normal(0, 1) on the biases; ``p`` is a deterministic
site and the labels ``y`` are Bernoulli(p) in a plate. 31 latents, one sample site per parameter
array: ``nn/layers.0.kernel`` (2, 4), ``nn/layers.0.bias`` (4,), ``nn/layers.1.kernel`` (4, 3),
``nn/layers.1.bias`` (3,), ``nn/layers.2.kernel`` (3, 1), ``nn/layers.2.bias`` (1,). The module
also registers an (unused, gradient-free) ``nn$params`` param site with the eager weights.

The talk shows no data generator ("classification problem with non-linear decision boundary"), so
the suite draws two interleaved half-moons with NumPy: each point picks its class with probability
1/2, an angle t ~ U(0, pi) on its moon (class 0: (cos t, sin t); class 1: (1 - cos t, 1/2 - sin t)),
isotropic Gaussian feature noise of sd 0.15, then the whole set is shifted by (-1/2, -1/4) so it is
centred, and 5% of the labels are flipped (label noise). One stream gives n_train + n_val + n_test
points (defaults 200, 100, 200), split in that order; the model sees only the training split.

The weight-space posterior is multimodal (hidden-unit permutations, sign flips), so moments of the
weights are not comparable across methods: ``predictive_check`` scores posterior draws by the
held-out log predictive density and accuracy on the test split. The reference is NUTS.

Deviation from the talk's code: flax >= 0.12 refuses a plain Python list of sub-modules as a
module attribute, so ``self.layers`` is an ``nnx.List`` (same parameter paths and behaviour).
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from flax import nnx
from numpyro import handlers
from numpyro.contrib.module import random_nnx_module
from scipy import special

from svi_bench.models.base import Dataset, ModelSpec

HIDDEN_LAYERS = [4, 3]
FEATURE_NOISE = 0.15
LABEL_FLIP = 0.05
SHIFT = np.array([-0.5, -0.25])
MODULE_SEED = 0
"""Seed of the nnx.Rngs building the module; its initial weights are never used."""


class MLP(nnx.Module):
    """The talk's MLP: tanh hidden layers, sigmoid output."""

    def __init__(self, din: int, dout: int, hidden_layers: list[int], *, rngs: nnx.Rngs) -> None:
        self.layers = nnx.List()
        layer_dims = [din, *hidden_layers, dout]
        for in_dim, out_dim in pairwise(layer_dims):
            self.layers.append(nnx.Linear(in_dim, out_dim, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = jax.nn.tanh(layer(x))
        return jax.nn.sigmoid(self.layers[-1](x))


@cache
def nnx_module(din: int = 2) -> MLP:
    """The module, built once and deterministically (fixed nnx.Rngs)."""
    return MLP(din=din, dout=1, hidden_layers=HIDDEN_LAYERS, rngs=nnx.Rngs(MODULE_SEED))


def prior(name: str, shape: tuple[int, ...]) -> dist.Distribution:
    if "bias" in name:
        return dist.Normal(loc=0, scale=1)
    return dist.SoftLaplace(loc=0, scale=1)


def model(x: jnp.ndarray, y: jnp.ndarray | None = None) -> None:
    n_obs: int = x.shape[0]
    nn = random_nnx_module("nn", nnx_module(x.shape[1]), prior=prior)
    p = numpyro.deterministic("p", nn(x).squeeze(-1))
    with numpyro.plate("data", n_obs):
        numpyro.sample("y", dist.Bernoulli(probs=p), obs=y)


def make_moons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy interleaved half-moons, centred, with a fraction LABEL_FLIP of labels flipped."""
    label = rng.integers(0, 2, size=n)
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(label[:, None] == 0, upper, lower)
    x = x + FEATURE_NOISE * rng.standard_normal(size=(n, 2)) + SHIFT
    flip = rng.uniform(size=n) < LABEL_FLIP
    y = np.where(flip, 1 - label, label)
    return x, y


def data(seed: int, n_train: int = 200, n_val: int = 100, n_test: int = 200) -> Dataset:
    n_train, n_val, n_test = int(n_train), int(n_val), int(n_test)
    x, y = make_moons(np.random.default_rng(seed), n_train + n_val + n_test)
    x, y = x.astype(np.float32), y.astype(np.float32)
    cut = np.cumsum([n_train, n_val])
    x_tr, x_va, x_te = np.split(x, cut)
    y_tr, y_va, y_te = np.split(y, cut)
    return Dataset(
        model_kwargs={"x": jnp.asarray(x_tr), "y": jnp.asarray(y_tr)},
        true_values=None,
        extras={
            "x_val": jnp.asarray(x_va),
            "y_val": jnp.asarray(y_va),
            "x_test": jnp.asarray(x_te),
            "y_test": jnp.asarray(y_te),
        },
    )


def _split(ds: Dataset, split: str) -> tuple[jnp.ndarray, jnp.ndarray]:
    if split == "train":
        return ds.model_kwargs["x"], ds.model_kwargs["y"]
    if split in ("val", "test"):
        return ds.extras[f"x_{split}"], ds.extras[f"y_{split}"]
    raise ValueError(f"unknown split {split!r}; valid: train, val, test")


def _p_one(sample: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """The model's deterministic ``p`` at one set of network parameters."""
    conditioned = handlers.substitute(handlers.seed(model, 0), sample)
    return handlers.trace(conditioned).get_trace(x=x)["p"]["value"]


_p_batch = jax.jit(jax.vmap(_p_one, in_axes=(0, None)))


def draw_probs(draws: dict[str, np.ndarray], ds: Dataset, split: str = "test") -> np.ndarray:
    """p for every draw and point of ``split``: an array (n_draws, n_points), float64.

    Only the ``nn/...`` latent sites of ``draws`` are used; other keys (``p``, ``y``) are ignored.
    """
    x, _ = _split(ds, split)
    latents = {k: jnp.asarray(v) for k, v in draws.items() if k.startswith("nn/")}
    return np.asarray(_p_batch(latents, jnp.asarray(x)), dtype=np.float64)


def predictive_probs(draws: dict[str, np.ndarray], ds: Dataset, split: str = "test") -> np.ndarray:
    """Posterior mean predictive probability of class 1 per point of ``split``: (n_points,)."""
    return draw_probs(draws, ds, split).mean(axis=0)


def predictive_check(draws: dict[str, np.ndarray], ds: Dataset) -> dict[str, float]:
    """Held-out scores on the test split.

    ``test_lpd``: mean over points of log(mean over draws of Bernoulli(y | p)).
    ``test_accuracy``: accuracy of the posterior mean probability thresholded at 0.5.
    """
    p = draw_probs(draws, ds, "test")
    y = np.asarray(ds.extras["y_test"], dtype=np.float64)
    with np.errstate(divide="ignore"):
        loglik = np.where(y == 1.0, np.log(p), np.log1p(-p))
    lpd = special.logsumexp(loglik, axis=0) - np.log(p.shape[0])
    accuracy = np.mean((p.mean(axis=0) > 0.5) == (y == 1.0))
    return {"test_lpd": float(lpd.mean()), "test_accuracy": float(accuracy)}


def data_plot(ds: Dataset):
    """The two classes over the input plane: training points filled, test points hollow."""
    import matplotlib.pyplot as plt

    x, y = (np.asarray(ds.model_kwargs[k], dtype=float) for k in ("x", "y"))
    fig, ax = plt.subplots(figsize=(4.0, 3.2))
    for label, color in ((0, "#1f77b4"), (1, "#d62728")):
        sel = y == label
        ax.scatter(x[sel, 0], x[sel, 1], s=10, color=color, label=f"class {label} (train)")
    if "x_test" in ds.extras:
        xt, yt = np.asarray(ds.extras["x_test"], float), np.asarray(ds.extras["y_test"], float)
        for label, color in ((0, "#1f77b4"), (1, "#d62728")):
            sel = yt == label
            ax.scatter(xt[sel, 0], xt[sel, 1], s=10, facecolors="none", edgecolors=color,
                       linewidths=0.6, label=f"class {label} (test)")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return fig


SPEC = ModelSpec(
    name="bnn",
    description="Bayesian MLP classifier (2-4-3-1, tanh, sigmoid; SoftLaplace/Normal priors) on "
    "two noisy moons; 31 latents, multimodal; NUTS reference scored by held-out predictions.",
    source="002_7e631ce2bd6c7731.txt, 'End-to-End Example: Bayesian Neural Network Model'",
    model=model,
    data=data,
    guides={},
    reference_kind="nuts",
    default_data_seed=0,
    size_defaults={"n_train": 200, "n_val": 100, "n_test": 200},
    predictive_check=predictive_check,
    draw_probs=draw_probs,
    predictive_probs=predictive_probs,
    data_plot=data_plot,
    # At the default 0.98 and 2000 warm-up steps the reference had 5 divergent transitions in
    # 46,000 draws and failed its gate; smaller steps and a longer adaptation remove them.
    reference_nuts={"target_accept_prob": 0.995, "num_warmup": 4000},
    notes="The talk gives no data generator or seed: two interleaved moons (feature noise sd "
    "0.15, 5% label flips, centred), NumPy default_rng(seed), split train/val/test = 200/100/200. "
    "self.layers is an nnx.List (flax >= 0.12 rejects a plain list). Latent sites "
    "nn/layers.{0,1,2}.{kernel,bias}. No manual guide (the talk uses AutoNormal).",
)
