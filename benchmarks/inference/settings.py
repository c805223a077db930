"""The parameters of one inference program: an SVI fit or a NUTS run, validated on creation.

``precision`` (float32 or float64) is the floating-point precision the program runs in; the grid
fills it from the model's declared ``ModelSpec.precision`` unless ``--set precision=...`` says
otherwise. ``optimizer`` (``OPTIMIZERS``) is the SVI optimiser, ``--set optimizer=onecycle``;
the program builds it from its name (``benchmarks.inference.svi.make_optimizer``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from svi_bench.models.base import PRECISIONS

OPTIMIZERS: dict[str, str] = {
    "adam": "Adam at a constant learning_rate (NumPyro's Adam; the default)",
    "onecycle": "Adam on optax's linear OneCycle schedule over num_steps, peaking at "
                "learning_rate (002: pct_start 0.2, pct_final 0.8, div_factor 3, "
                "final_div_factor 4)",
    "onecycle_plateau": "onecycle chained with optax.contrib.reduce_on_plateau (002: factor 0.1, "
                        "patience 10, accumulation_size 100) fed each step's loss",
}
"""The SVI optimisers by name, with what each is. The default, adam, is left out of identities."""
DEFAULT_OPTIMIZER = "adam"


@dataclass(frozen=True, repr=False)
class SVISettings:
    """One SVI fit: ``optimizer`` at ``learning_rate`` (a schedule's peak) for ``num_steps`` steps
    of a ``num_particles`` ELBO."""

    num_steps: int
    num_particles: int
    learning_rate: float
    num_draws: int
    final_elbo_particles: int = 1000
    guide_options: dict[str, Any] = field(default_factory=dict)
    precision: str = "float32"
    optimizer: str = DEFAULT_OPTIMIZER

    kind = "svi"

    def __repr__(self) -> str:
        """The dataclass repr without a default optimiser, so that the repr (part of stored
        executables' and perf programs' keys) of a setting made before optimisers is unchanged."""
        shown = {k: v for k, v in dataclasses.asdict(self).items()
                 if not (k == "optimizer" and v == DEFAULT_OPTIMIZER)}
        return f"SVISettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def validate(self) -> None:
        _precision(self)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        _positive(self, "num_steps", "num_particles", "num_draws", "final_elbo_particles")
        if not _number(self.learning_rate) or not math.isfinite(self.learning_rate) \
                or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0 and finite, got {self.learning_rate!r}")
        if not isinstance(self.guide_options, dict) or not all(
                isinstance(k, str) for k in self.guide_options):
            raise ValueError("guide_options must be a JSON object such as '{\"K\": 8}', "
                             f"got {self.guide_options!r}")


@dataclass(frozen=True, repr=False)
class NUTSSettings:
    """One NUTS run: ``num_chains`` chains of ``num_warmup`` adaptation and ``num_samples`` draws;
    ``dense_mass`` adapts a dense mass matrix in warm-up instead of a diagonal one (its cost per
    step grows with the square of the dimension; it pays on correlated posteriors)."""

    num_warmup: int
    num_samples: int
    num_chains: int
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    precision: str = "float32"
    dense_mass: bool = False

    kind = "nuts"

    def __repr__(self) -> str:
        """The dataclass repr without the default diagonal mass matrix, so that the repr (part of
        stored executables' keys) of a setting made before ``dense_mass`` is unchanged."""
        shown = {k: v for k, v in dataclasses.asdict(self).items()
                 if not (k == "dense_mass" and v is False)}
        return f"NUTSSettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def validate(self) -> None:
        _precision(self)
        _positive(self, "num_warmup", "num_samples", "num_chains", "max_tree_depth")
        if not _number(self.target_accept_prob) or not 0 < self.target_accept_prob < 1:
            raise ValueError(f"target_accept_prob must be in (0, 1), got {self.target_accept_prob!r}")
        if not isinstance(self.dense_mass, bool):
            raise ValueError(f"dense_mass must be true or false, got {self.dense_mass!r}")


Settings = SVISettings | NUTSSettings


def identity(settings: Settings) -> dict[str, Any]:
    """The settings as hashed into a run's or a reference's identity. The default precision,
    float32, the default optimiser, adam, and NUTS's default diagonal mass matrix are left out so
    that identities made before any was a setting stay valid."""
    out = dataclasses.asdict(settings)
    if out.get("precision") == "float32":
        del out["precision"]
    if out.get("dense_mass") is False:
        del out["dense_mass"]
    if out.get("optimizer") == DEFAULT_OPTIMIZER:
        del out["optimizer"]
    return out


def _precision(obj: Any) -> None:
    if obj.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {obj.precision!r}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
