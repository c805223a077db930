"""The registry of methods: one ``register`` line each, built-ins and users' alike.

A name resolves to a ``Method``; ``manual:<guide>`` names resolve through the prefix of the
models' hand-written guides (``numpyro_guides.manual_guide_method``). The built-in methods are
registered on first use, so importing this module costs nothing until a method is asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from svi_bench.benchmarks.methods.base import Method
from svi_bench.models import ModelSpec

REGISTRY: dict[str, Method] = {}
_PREFIXES: dict[str, tuple[Callable[[str], Method], Callable[[ModelSpec], list[str]]]] = {}
_BUILTINS_LOADED = False


class MethodError(ValueError):
    """A method name or declaration that cannot be used; the message is one line for the user."""


def register(method: Method, replace: bool = False) -> Method:
    """Add ``method`` to the registry (a user's method: ``--method-file``, entry points)."""
    _load_builtins()
    problems = method.problems()
    if problems:
        raise MethodError(f"method {method.name!r} is not a valid declaration: {problems[0]}")
    if not replace and method.name in REGISTRY and REGISTRY[method.name] is not method:
        raise MethodError(f"method name {method.name!r} is already taken: rename it")
    if method.baseline and any(m.baseline for n, m in REGISTRY.items() if n != method.name):
        raise MethodError(f"method {method.name!r} declares baseline=True, but "
                          f"{baseline()!r} is the baseline: drop baseline")
    REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def register_prefix(prefix: str, factory: Callable[[str], Method],
                    variants: Callable[[ModelSpec], list[str]]) -> None:
    """Methods named ``prefix<variant>`` made per model (``manual:`` + a model's guide)."""
    _PREFIXES[prefix] = (factory, variants)


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from svi_bench.benchmarks.methods import flows, mclmc, nuts, pathfinder
    from svi_bench.benchmarks.methods import numpyro_guides as guides

    for method in nuts.METHODS:
        REGISTRY[method.name] = method
    register_prefix(guides.MANUAL_PREFIX, guides.manual_guide_method, guides.manual_guides_of)
    for order, name in enumerate(guides.AUTOGUIDES):
        REGISTRY[name] = guides.autoguide_method(name, order)
    for method in (*pathfinder.METHODS, *mclmc.METHODS, *flows.METHODS):
        REGISTRY[method.name] = method


def prefixes() -> list[str]:
    """The prefixes of per-model method names (``manual:``)."""
    _load_builtins()
    return list(_PREFIXES)


def _prefix_of(name: str) -> str | None:
    return next((p for p in _PREFIXES if name.startswith(p)), None)


def resolve(name: str) -> Method:
    """The method called ``name``; an unknown name raises ``MethodError`` naming the valid ones."""
    _load_builtins()
    if name in REGISTRY:
        return REGISTRY[name]
    prefix = _prefix_of(name)
    if prefix is not None and len(name) > len(prefix):
        return _PREFIXES[prefix][0](name)
    raise MethodError(f"unknown method {name!r}; valid: {describe_valid()}")


def is_known(name: str) -> bool:
    try:
        resolve(name)
    except MethodError:
        return False
    return True


def methods_for(spec: ModelSpec) -> list[str]:
    """Every method of the grid for this model, in display order."""
    _load_builtins()
    names = list(REGISTRY)
    for _, variants in _PREFIXES.values():
        names += variants(spec)
    return sorted(names, key=lambda n: (resolve(n).order, names.index(n)))


def describe_valid() -> str:
    """The valid method names in one line, the prefixed ones as ``prefix<variant of the model>``."""
    _load_builtins()
    names = sorted(REGISTRY, key=lambda n: (REGISTRY[n].order, n))
    return ", ".join([*names[:1], *(f"{p}<guide of the model>" for p in _PREFIXES), *names[1:]])


def baseline() -> str:
    """The name of the method speed-ups are relative to."""
    _load_builtins()
    return next(name for name, m in REGISTRY.items() if m.baseline)


def settings_types() -> list[type]:
    """Every registered method's settings type (``--set`` keys are validated against these)."""
    _load_builtins()
    return list(dict.fromkeys(m.settings_type for m in REGISTRY.values()))


def setting_names() -> set[str]:
    return {f.name for t in settings_types() for f in dataclasses.fields(t)}


def manifest_entry(method: Method, origin: dict[str, Any]) -> dict[str, Any]:
    """What the results manifest records of a method (the report's only source about it)."""
    return {"family": method.family, "description": method.description, "order": method.order,
            "baseline": method.baseline, "column": method.column or method.name,
            "budget": method.budget,  # the settings per profile, in the profiles' order
            "defaults": [[profile, _json_safe(_all_settings(method, values))]
                         for profile, values in method.defaults.items()],
            "origin": origin}


def _all_settings(method: Method, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """A profile's declared values with the settings type's own defaults filled in."""
    try:
        return dataclasses.asdict(method.settings_type(**values))
    except Exception:  # a declaration the contract refuses: its values as declared
        return values


def _json_safe(value: Any) -> Any:
    """``value`` with tuples as lists and anything JSON cannot hold as its text (the manifest's
    record of a method's per-profile settings, for the report)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def all_names(specs: Iterable[ModelSpec]) -> list[str]:
    """Every method name offered for any of ``specs``, in display order, without repeats."""
    return list(dict.fromkeys(n for spec in specs for n in methods_for(spec)))
