"""The parameters of one inference program: an SVI fit or a NUTS run, validated on creation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SVISettings:
    """One SVI fit: Adam at ``learning_rate`` for ``num_steps`` steps of a ``num_particles`` ELBO."""

    num_steps: int
    num_particles: int
    learning_rate: float
    num_draws: int
    final_elbo_particles: int = 1000
    guide_options: dict[str, Any] = field(default_factory=dict)

    kind = "svi"

    def validate(self) -> None:
        _positive(self, "num_steps", "num_particles", "num_draws", "final_elbo_particles")
        if not _number(self.learning_rate) or not math.isfinite(self.learning_rate) \
                or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0 and finite, got {self.learning_rate!r}")
        if not isinstance(self.guide_options, dict) or not all(
                isinstance(k, str) for k in self.guide_options):
            raise ValueError("guide_options must be a JSON object such as '{\"K\": 8}', "
                             f"got {self.guide_options!r}")


@dataclass(frozen=True)
class NUTSSettings:
    """One NUTS run: ``num_chains`` chains of ``num_warmup`` adaptation and ``num_samples`` draws."""

    num_warmup: int
    num_samples: int
    num_chains: int
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10

    kind = "nuts"

    def validate(self) -> None:
        _positive(self, "num_warmup", "num_samples", "num_chains", "max_tree_depth")
        if not _number(self.target_accept_prob) or not 0 < self.target_accept_prob < 1:
            raise ValueError(f"target_accept_prob must be in (0, 1), got {self.target_accept_prob!r}")


Settings = SVISettings | NUTSSettings


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
