"""The model contract: what every registered model declares.

Modelled on inference_gym targets and posteriordb posteriors: one module per model, an explicit
registry, and one contract (``models.contract.check_spec``) that every model must pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

ReferenceKind = Literal["exact", "quadrature", "nuts"]
Precision = Literal["float32", "float64"]
PRECISIONS: tuple[str, ...] = ("float32", "float64")
"""The floating-point precisions a model's programs can run in (JAX's 64-bit mode off or on)."""


@dataclass(frozen=True)
class SizeParam:
    """A size parameter's type and valid range, so ``--size n_groups=2.5`` is refused rather than
    silently run as 2 groups. ``low``/``high`` are inclusive unless ``low_open``."""

    type: type = int
    low: float | None = 1
    high: float | None = None
    low_open: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.type is int else "a finite number"
        parts = [] if self.low is None else [f"{'>' if self.low_open else '>='} {self.low:g}"]
        parts += [] if self.high is None else [f"<= {self.high:g}"]
        return f"{kind} {' and '.join(parts)}".strip()

    def parse(self, name: str, value: Any) -> int | float:
        """``value`` (a number or its text) as this parameter's type; ValueError naming the range."""
        bad = ValueError(f"size parameter {name} must be {self.describe()}, got {value!r}")
        if isinstance(value, bool):
            raise bad
        try:
            if self.type is int:
                if isinstance(value, float) or not str(value).strip().lstrip("+-").isdigit():
                    raise bad
                number: int | float = int(value)
            else:
                number = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if not np.isfinite(number) or (self.high is not None and number > self.high) or (
                self.low is not None and (number <= self.low if self.low_open else number < self.low)):
            raise bad
        return number


@dataclass(frozen=True)
class Dataset:
    """One realisation of a model's data.

    ``model_kwargs`` are passed as keyword arguments to the model and to every guide; ``extras``
    holds what inference must not see (held-out splits, the latent values used to simulate).
    """

    model_kwargs: Mapping[str, Any]
    true_values: Mapping[str, np.ndarray] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the suite needs to know about one model: every function the suite calls on a
    model is a field here, so nothing looks a model up by its module. ``models.contract.check_spec``
    checks the whole contract.

    ``data(seed, **size)`` must be deterministic for a given seed and size.
    ``exact_sampler(rng, n, ds)`` (for reference_kind "exact") draws ``n`` exact posterior samples
    with a NumPy Generator as ``{site: array(n, *shape)}`` in the constrained space.
    ``log_density_grid(ds, refine=1)`` (for "quadrature") returns the grid axes and the
    unnormalised log posterior on it. ``log_evidence`` returns log Z where it is known.
    """

    name: str
    description: str
    source: str
    model: Callable[..., None]
    data: Callable[..., Dataset]
    guides: Mapping[str, Callable[..., None]]
    reference_kind: ReferenceKind
    default_data_seed: int = 0
    size_defaults: Mapping[str, int | float] = field(default_factory=dict)
    size_params: Mapping[str, SizeParam] = field(default_factory=dict)
    """Type and range of size parameters; undeclared ones follow their default's type: integers
    >= 1, floats > 0 (``size_param``)."""
    optional_sizes: Mapping[str, int | float] = field(default_factory=dict)
    """Size parameters added after runs and references were stored, with the default that leaves
    the data as they were: in a data key only at another value, so earlier keys stay valid
    (``dirichlet_categorical``'s ``n_obs``, the observations seen so far)."""
    exact_sampler: Callable[[np.random.Generator, int, Dataset], dict[str, np.ndarray]] | None = None
    exact_moments: Callable[[Dataset], dict[str, tuple[np.ndarray, np.ndarray]]] | None = None
    log_evidence: Callable[[Dataset], float] | None = None
    log_density_grid: Callable[[Dataset], tuple[list[np.ndarray], np.ndarray]] | None = None
    predictive_check: Callable[[dict[str, np.ndarray], Dataset], dict[str, float]] | None = None
    reference_nuts: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of the NUTS reference settings for this model, e.g. a higher target_accept_prob."""
    reference_model: Callable[..., None] | None = None
    """An equivalent parameterisation of the same posterior (the same latent sites, possibly as
    deterministic sites) used only to build a trustworthy NUTS reference, e.g. non-centred."""
    data_uses_seed: bool = True
    """False when ``data`` ignores its seed (the data are fixed by the source, or there are none):
    the contract then requires equal data for every seed instead of different data."""
    draw_probs: Callable[..., np.ndarray] | None = None
    """``draw_probs(draws, ds, split="test")``: the predicted probability of every point of a data
    split under every draw, an array (n_draws, n_points). For models judged in predictive space
    (those with a ``predictive_check``): the NUTS reference gate computes R-hat and ESS on these
    probabilities, since the weights themselves are multimodal; the report draws them over the
    input plane."""
    predictive_probs: Callable[..., np.ndarray] | None = None
    """``predictive_probs(draws, ds, split="test")``: the posterior mean predicted probability per
    point of ``split``, (n_points,). Scoring compares a method's to the reference's."""
    data_plot: Callable[[Dataset], Any] | None = None
    """``data_plot(ds)``: a matplotlib Figure showing the data (import matplotlib inside the
    function, so importing a model never needs it). The report falls back to histograms of the
    model's array arguments when it is None; a model whose observations are fixed inside it (not
    in ``model_kwargs``) needs its own to show them."""
    precision: Precision = "float32"
    """The precision every program of this model runs in: the reference, NUTS, every guide and
    the scoring. ``"float64"`` (JAX's 64-bit mode, as ``numpyro.enable_x64()``) for a model whose
    log density goes through a Cholesky factorisation, a matrix inverse or a long sum, where
    float32 round-off would be measured instead of inference; ``svi-bench check`` compares both."""
    notes: str = ""
    extra_sites: tuple[str, ...] = ()
    """Deterministic sites (``numpyro.deterministic``) scored like latent sites, e.g. a non-centred
    model's ``theta = mu + tau * theta_raw``: their draws are stored and scored (SVI: the model
    replayed on the guide's draws; NUTS: its postprocessing). An ``exact_sampler`` must return them;
    other references compute them from the model."""

    def data_key(self, seed: int | None = None, **size: Any) -> dict[str, Any]:
        """What identifies this model's data: the data seed and every size parameter (defaults
        filled in). Runs, references and the report key their data by it."""
        unknown = set(size) - set(self.all_sizes)
        if unknown:
            raise ValueError(
                f"model {self.name!r} has no size parameter {sorted(unknown)}; "
                f"valid: {sorted(self.all_sizes) or 'none'}"
            )
        size = {k: self.size_param(k).parse(k, v) for k, v in size.items()}
        size = {k: v for k, v in size.items()
                if k not in self.optional_sizes or v != self.optional_sizes[k]}
        return {"seed": self.default_data_seed if seed is None else seed, **self.size_defaults, **size}

    @property
    def all_sizes(self) -> dict[str, int | float]:
        """Every size parameter with its default, the optional ones included."""
        return {**self.size_defaults, **self.optional_sizes}

    def size_param(self, name: str) -> SizeParam:
        """The declared type and range of size parameter ``name``, or one derived from its
        default (integers >= 1, floats > 0)."""
        if name in self.size_params:
            return self.size_params[name]
        if isinstance(self.all_sizes.get(name), float):
            return SizeParam(float, 0.0, low_open=True)
        return SizeParam(int, 1)

    def data_for(self, key: Mapping[str, Any]) -> Dataset:
        """The data a ``data_key`` names."""
        size = {k: v for k, v in key.items() if k != "seed"}
        return self.make_data(key["seed"], **size)

    def make_data(self, seed: int | None = None, **size: Any) -> Dataset:
        """Data for ``seed`` (the document's seed by default) with size defaults filled in."""
        key = self.data_key(seed, **size)
        return self.data(key.pop("seed"), **key)
