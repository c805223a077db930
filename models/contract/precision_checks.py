"""Does float32 round-off change this model's log density? Both precisions at the same points.

A model whose log density goes through a Cholesky factorisation, a matrix inverse or a long sum
can be fine in float64 and meaningless in float32, and then every float32 run measures round-off,
not inference. ``compare_precisions`` evaluates the potential (minus the log joint in the
unconstrained space) and its gradient at a few points (the initial point NUTS and the guides start
from, and prior draws pushed through the model) in float64 and in float32, and says whether the
float32 values differ materially. ``svi-bench check`` prints it as a warning with the figures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from svi_bench.models.base import PRECISIONS, Dataset, ModelSpec

TOLERANCE = {"log_density_rel": 2e-5, "gradient_rel": 1e-4}
"""Material difference between float32 and float64: a relative log-density error (scaled by
max(1, |log density|)) or a relative gradient error (norm of the difference over the float64
gradient's norm) above these, or a non-finite float32 value where float64 is finite. Set between
the built-in models (at most 3.6e-6 and 4.4e-6 at nine points each) and the Gaussian process of
``docs/gp_poisson.py`` (9.7e-5 and 1.4e-3): about five times from each."""


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Run JAX code in ``precision`` (64-bit mode on for float64, off for float32) and restore
    the caller's mode afterwards: the setting never leaks from one model's programs to the next."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    import jax

    with jax.enable_x64(precision == "float64"):
        yield


def cast_floats(kwargs: Mapping[str, Any], precision: str) -> dict[str, Any]:
    """The model's arguments with every floating array in ``precision`` (others unchanged)."""
    dtype = np.dtype(precision)
    out = {}
    for key, value in kwargs.items():
        kind = getattr(getattr(value, "dtype", None), "kind", None)
        out[key] = np.asarray(value, dtype=dtype) if kind == "f" else value
    return out


@dataclass(frozen=True)
class PrecisionComparison:
    """Float32 against float64 at ``points`` unconstrained points of one model."""

    points: int
    max_log_density_rel: float
    max_gradient_rel: float
    nonfinite_float32: int
    """Points where float32's value or gradient is not finite while float64's is."""
    nonfinite_float64: int
    """Points skipped because float64 itself is not finite there."""

    @property
    def material(self) -> bool:
        return bool(self.nonfinite_float32
                    or self.max_log_density_rel > TOLERANCE["log_density_rel"]
                    or self.max_gradient_rel > TOLERANCE["gradient_rel"])

    def describe(self) -> str:
        figures = (f"at {self.points} points, float32 vs float64: max relative log-density error "
                   f"{self.max_log_density_rel:.1e}, max relative gradient error "
                   f"{self.max_gradient_rel:.1e}, {self.nonfinite_float32} point(s) non-finite "
                   f"only in float32 (material above {TOLERANCE['log_density_rel']:g} / "
                   f"{TOLERANCE['gradient_rel']:g})")
        if self.nonfinite_float64:
            figures += f"; {self.nonfinite_float64} point(s) non-finite in float64 too, skipped"
        return figures


def _potential(spec: ModelSpec, ds: Dataset, precision: str, seed: int):
    """(jitted value-and-gradient of the potential on a flat vector, initial point as a dict,
    the model's arguments in ``precision``)."""
    import jax
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    kwargs = cast_floats(ds.model_kwargs, precision)
    info = initialize_model(jax.random.PRNGKey(seed), spec.model, model_kwargs=kwargs)
    _, unravel = ravel_pytree(info.param_info.z)
    fn = jax.jit(jax.value_and_grad(lambda x: info.potential_fn(unravel(x))))
    return fn, info.param_info.z, kwargs


def _flat(point: Mapping[str, Any]) -> np.ndarray:
    from jax.flatten_util import ravel_pytree

    return np.asarray(ravel_pytree(dict(point))[0], dtype=np.float64)


def _prior_points(spec: ModelSpec, kwargs: dict[str, Any], sites: list[str], size: int, n: int,
                  seed: int) -> list[np.ndarray]:
    """Prior draws of the latent sites pushed to the unconstrained space, as flat vectors; for
    a model with an improper prior, which cannot be drawn from, points uniform in (-2, 2) about
    the origin of the unconstrained space (NumPyro's ``init_to_uniform``)."""
    import jax
    from numpyro.infer import Predictive
    from numpyro.infer.util import unconstrain_fn

    try:
        draws = Predictive(spec.model, num_samples=n, return_sites=sites)(
            jax.random.PRNGKey(seed + 1), **kwargs)
    except NotImplementedError:  # ImproperUniform has no sampler
        return list(np.random.default_rng(seed).uniform(-2.0, 2.0, size=(n, size)))
    return [_flat(unconstrain_fn(spec.model, (), kwargs, {k: v[i] for k, v in draws.items()}))
            for i in range(n)]


def compare_precisions(spec: ModelSpec, ds: Dataset | None = None, prior_points: int = 8,
                       seed: int = 0) -> PrecisionComparison:
    """Potential and gradient in float64 and float32 at the initial point and ``prior_points``
    prior draws (the points computed in float64, then rounded for float32)."""
    if ds is None:
        with precision_scope(spec.precision):
            ds = spec.make_data()
    with precision_scope("float64"):
        fn64, init, kwargs64 = _potential(spec, ds, "float64", seed)
        start = _flat(init)
        points = [start, *_prior_points(spec, kwargs64, list(init), start.size, prior_points, seed)]
        exact = [tuple(np.asarray(a, dtype=np.float64) for a in fn64(p)) for p in points]
    with precision_scope("float32"):
        fn32, *_ = _potential(spec, ds, "float32", seed)
        rounded = [tuple(np.asarray(a, dtype=np.float64) for a in fn32(p.astype(np.float32)))
                   for p in points]
    lp_rel, grad_rel, bad32, bad64 = [0.0], [0.0], 0, 0
    for (v64, g64), (v32, g32) in zip(exact, rounded, strict=True):
        if not (np.isfinite(v64) and np.all(np.isfinite(g64))):
            bad64 += 1
            continue
        if not (np.isfinite(v32) and np.all(np.isfinite(g32))):
            bad32 += 1
            continue
        lp_rel.append(float(abs(v32 - v64) / max(1.0, abs(v64))))
        grad_rel.append(float(np.linalg.norm(g32 - g64) / max(np.linalg.norm(g64), 1e-12)))
    return PrecisionComparison(len(points), max(lp_rel), max(grad_rel), bad32, bad64)
