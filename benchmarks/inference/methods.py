"""Inference methods by name: NUTS, the models' manual guides and NumPyro's autoguides."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from numpyro.infer import autoguide

from svi_bench.models import ModelSpec

AUTOGUIDES: dict[str, type[autoguide.AutoGuide]] = {
    "autonormal": autoguide.AutoNormal,
    "autodiagonalnormal": autoguide.AutoDiagonalNormal,
    "automvn": autoguide.AutoMultivariateNormal,
    "autodais": autoguide.AutoDAIS,
    "autobnaf": autoguide.AutoBNAFNormal,
    "autoiaf": autoguide.AutoIAFNormal,
}
FLOW_GUIDES = ("autobnaf", "autoiaf")
AUTODAIS_DEFAULT_K: int = inspect.signature(autoguide.AutoDAIS).parameters["K"].default
"""NumPyro's default number of AutoDAIS annealing steps (``K``)."""
MANUAL_PREFIX = "manual:"


def methods_for(spec: ModelSpec) -> list[str]:
    """Every method of the grid for this model, in display order."""
    return ["nuts", *(MANUAL_PREFIX + g for g in spec.guides), *AUTOGUIDES]


def is_known_method(name: str) -> bool:
    return name == "nuts" or name in AUTOGUIDES or name.startswith(MANUAL_PREFIX)


def describe_valid_methods() -> str:
    return "nuts, manual:<guide of the model>, " + ", ".join(AUTOGUIDES)


def not_applicable_reason(spec: ModelSpec, method: str, latent_dim: int) -> str | None:
    """Why ``method`` cannot run on ``spec`` by construction, or None if it can."""
    if method.startswith(MANUAL_PREFIX) and method[len(MANUAL_PREFIX) :] not in spec.guides:
        guides = ", ".join(spec.guides) or "none"
        return f"model {spec.name!r} has no manual guide {method[len(MANUAL_PREFIX):]!r} (has: {guides})"
    if method in FLOW_GUIDES and latent_dim < 2:
        return (
            f"{AUTOGUIDES[method].__name__} needs a latent dimension of at least 2 "
            f"(NumPyro refuses latent dim = {latent_dim}); use AutoDiagonalNormal instead"
        )
    return None


def guide_factory(spec: ModelSpec, method: str, guide_options: dict[str, Any]) -> Callable[[], Any]:
    """A zero-argument builder of a fresh guide: autoguides keep traced state on the instance,
    so every traced function builds its own."""
    if method.startswith(MANUAL_PREFIX):
        guide = spec.guides[method[len(MANUAL_PREFIX) :]]
        return lambda: guide
    cls = AUTOGUIDES[method]
    return lambda: cls(spec.model, **guide_options)


def inner_steps(method: str, guide_options: Mapping[str, Any]) -> int:
    """Gradient evaluations per particle and SVI step: ``K`` for AutoDAIS (its annealing steps,
    ``AUTODAIS_DEFAULT_K`` unless set), 1 for every other guide. The grid and the perf suite both
    count ``grad_evals`` as steps x particles x this."""
    return guide_options.get("K", AUTODAIS_DEFAULT_K) if method == "autodais" else 1
