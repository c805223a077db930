"""The explicit model registry: every model the suite benchmarks, by name.

Adding a built-in model is one new module in ``models/`` defining ``SPEC = ModelSpec(...)``, then
its name in the import and one line in the tuple below. ``models.contract.check_spec`` holds
every model to the contract; ``tests/test_model_contract.py`` runs it over the registry. A model
written elsewhere joins with ``register(spec)``.
"""

from __future__ import annotations

from svi_bench.models import (
    bnn,
    coin,
    correlated_gaussian,
    dirichlet_categorical,
    gamma_concentration,
    hierarchical_linreg,
    linreg_outliers,
    multimodal_2d,
)
from svi_bench.models.base import Dataset, ModelSpec, SizeParam

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


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to REGISTRY under its name: how a model written outside this project joins
    (import its file, then ``models.register(module.SPEC)``; ``models.contract.check_spec`` says
    whether it keeps the contract). A taken name raises unless ``replace``. Built-in models are
    listed above instead, one line each."""
    taken = REGISTRY.get(spec.name)
    if taken is not None and taken is not spec and not replace:
        raise ValueError(f"a model named {spec.name!r} is already registered; pass replace=True "
                         "or choose another name")
    REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> ModelSpec:
    """Remove the model ``name`` from REGISTRY (what ``register`` added) and return it."""
    try:
        return REGISTRY.pop(name)
    except KeyError:
        raise ValueError(f"no registered model {name!r}") from None


def get_model(name: str) -> ModelSpec:
    """The registered model ``name``, or a one-line error listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}") from None


__all__ = ["REGISTRY", "Dataset", "ModelSpec", "SizeParam", "get_model", "register", "unregister"]
