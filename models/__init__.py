"""The explicit model registry: every model the suite benchmarks, by name."""

from __future__ import annotations

from models import (
    bnn,
    coin,
    correlated_gaussian,
    dirichlet_categorical,
    gamma_concentration,
    hierarchical_linreg,
    linreg_outliers,
    multimodal_2d,
)
from models.base import Dataset, ModelSpec

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        coin.SPEC,
        gamma_concentration.SPEC,
        dirichlet_categorical.SPEC,
        multimodal_2d.SPEC,
        correlated_gaussian.SPEC,
        linreg_outliers.SPEC,
        hierarchical_linreg.SPEC,
        bnn.SPEC,
    )
}


def get_model(name: str) -> ModelSpec:
    """The registered model ``name``, or a one-line error listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}") from None


__all__ = ["REGISTRY", "Dataset", "ModelSpec", "get_model"]
