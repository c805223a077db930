"""The explicit model registry: every model the suite benchmarks, by name.

Adding a built-in model is one new module in ``models/`` defining ``SPEC = ModelSpec(...)`` named
as the model, then its name in ``BUILT_IN`` below. ``models.contract.check_spec`` holds every
model to the contract; ``tests/test_model_contract.py`` runs it over the registry. A model written
elsewhere joins with ``register(spec)``.

A built-in model's module is imported when its spec is first asked for (``REGISTRY[name]``,
``.values()``, ...), not with this package: names, ``in`` and ``len`` import nothing, so a run of
``linreg_outliers`` does not pay for flax, which ``bnn`` imports (half a second).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from svi_bench.models.base import Dataset, ModelSpec, SizeParam

BUILT_IN: tuple[str, ...] = (
    "coin",
    "gamma_concentration",
    "dirichlet_categorical",
    "multimodal_2d",
    "correlated_gaussian",
    "funnel",
    "linreg_outliers",
    "hierarchical_linreg",
    "hierarchical_linreg_nc",
    "bnn",
)
"""The built-in models in registry order; each is the module ``models/<name>.py`` and its SPEC."""


class Registry(MutableMapping[str, ModelSpec]):
    """Model name -> ModelSpec, in registration order, a dict in every use; a built-in model's
    module is imported the first time its spec is read."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._specs: dict[str, ModelSpec | None] = dict.fromkeys(names)  # None: not imported yet

    def __getitem__(self, name: str) -> ModelSpec:
        spec = self._specs[name]
        if spec is None:
            spec = self._specs[name] = importlib.import_module(f"{__name__}.{name}").SPEC
        return spec

    def __setitem__(self, name: str, spec: ModelSpec) -> None:
        self._specs[name] = spec

    def __delitem__(self, name: str) -> None:
        del self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def copy(self) -> dict[str, ModelSpec]:
        return dict(self)

    def __repr__(self) -> str:
        return f"Registry({list(self._specs)})"


REGISTRY: Registry = Registry(BUILT_IN)


def __getattr__(name: str):
    """``svi_bench.models.coin`` and the like: a built-in model module, imported when asked for."""
    if name in BUILT_IN:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


__all__ = ["BUILT_IN", "REGISTRY", "Dataset", "ModelSpec", "Registry", "SizeParam", "get_model",
           "register", "unregister"]
