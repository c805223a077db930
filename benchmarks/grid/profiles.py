"""The three profiles (smoke, quick, paper) and what each means beyond a method's settings.

Each method declares its settings' defaults per profile as data (``benchmarks.methods``); this
module resolves a cell's settings through the method registry, applies ``--set`` overrides, and
is the one place that says what a profile means for references and compiling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from svi_bench import models
from svi_bench.benchmarks.inference.fingerprints import source_hash
from svi_bench.benchmarks.inference.settings import identity
from svi_bench.benchmarks.methods.base import PROFILES

__all__ = ["PROFILES", "payload_hash", "reference_quality", "settings_for", "settings_hash",
           "smoke_compile", "with_overrides"]


def reference_quality(profile: str) -> str:
    """The reference a profile's runs are scored against: the cheap one (which fails its gates
    and says so) at smoke, the gated full one otherwise."""
    return "smoke" if profile == "smoke" else "full"


def smoke_compile(profile: str) -> bool:
    """Smoke runs test plumbing, not speed: they compile with XLA's cheapest optimisation."""
    return profile == "smoke"


def settings_for(profile: str, model: str, method: str) -> Any:
    """The settings of one (profile, model, method) cell of the grid."""
    from svi_bench.benchmarks.methods import registry

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    return registry.resolve(method).settings(profile, model)


def with_overrides(settings: Any, overrides: dict[str, Any]) -> Any:
    """Settings with command-line overrides applied; unknown or impossible values raise."""
    valid = {f.name for f in dataclasses.fields(settings)}
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        kind = getattr(settings, "kind", type(settings).__name__)
        raise ValueError(
            f"unknown {kind} setting {unknown[0]!r}; valid: {', '.join(sorted(valid))}"
        )
    updated = dataclasses.replace(settings, **overrides)
    updated.validate()
    return updated


def settings_hash(model: str, method: str, settings: Any, data_key: dict[str, Any] | None,
                  **program: Any) -> str:
    """A run's identity: a short stable hash of everything that defines it except its seed (the
    one function every run's identity comes from: the grid's cells and the studies' own staged
    programs, which add what defines their program, e.g. ``study``, ``stage``, ``schedule``).
    ``settings`` may be None for a program whose ``program`` entries hold all its settings;
    ``data_key`` None for a program whose rows carry their data key (a study over several data
    sets: the store's identity includes it). The registered model's source hash is part of it,
    so an edited model file runs anew (and ``--resume`` never keeps the old model's rows for it)
    while the old rows stay under their own identity."""
    spec = models.REGISTRY.get(model)
    payload = {
        "model": model,
        "model_source": None if spec is None else source_hash(spec),
        "method": method,
        "settings": None if settings is None else identity(settings),
        "data": data_key,
        **program,
    }
    return payload_hash(payload)


def payload_hash(payload: dict[str, Any]) -> str:
    """The short stable hash of a JSON payload that names a run's settings (the grid's and the
    studies' own programs' ``settings_hash``)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
