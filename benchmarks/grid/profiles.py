"""The three profiles (smoke, quick, paper): every cell's settings, declared once as data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from svi_bench.benchmarks.inference.settings import NUTSSettings, Settings, SVISettings, identity

PROFILES = ("smoke", "quick", "paper")


# Profile defaults, then per-model overrides (from the documents for `paper`).
_SVI_BASE = {
    "smoke": dict(num_steps=300, num_particles=1, learning_rate=1e-2, num_draws=400,
                  final_elbo_particles=200),
    "quick": dict(num_steps=4000, num_particles=4, learning_rate=5e-3, num_draws=4000,
                  final_elbo_particles=4000),
    "paper": dict(num_steps=10000, num_particles=1, learning_rate=1e-3, num_draws=20000,
                  final_elbo_particles=4000),
}
_NUTS_BASE = {
    "smoke": dict(num_warmup=150, num_samples=150, num_chains=4),
    "quick": dict(num_warmup=500, num_samples=1000, num_chains=4),
    "paper": dict(num_warmup=1000, num_samples=20000, num_chains=1),
}
_DAIS_PAPER = dict(K=16, eta_max=0.12, eta_init=0.1, gamma_init=0.9)

_SVI_MODEL = {
    "paper": {
        # 001 heads or tails: Adam 5e-4, 10000 steps (the normal guide: 50000 steps).
        "coin": dict(learning_rate=5e-4, num_steps=10000),
        "coin/manual:normal": dict(num_steps=50000),
        # 002 toy example: Trace_ELBO(num_particles=10), adam 0.005, 1000 steps.
        "gamma_concentration": dict(learning_rate=5e-3, num_particles=10, num_steps=1000),
        # 000: Adam 1e-3 (the document anneals alpha in 100 stages of >= 100 steps).
        "dirichlet_categorical": dict(learning_rate=1e-3, num_steps=10000),
        # 001 mixtures: Adam 5e-4, 16 particles, 10000 steps.
        "multimodal_2d": dict(learning_rate=5e-4, num_particles=16, num_steps=10000),
        # 001 autoguides: Adam 5e-4, 50000 steps.
        "correlated_gaussian": dict(learning_rate=5e-4, num_steps=50000),
        # 001 practical example: Adam 1e-3, 10000 steps x 8 particles, 40000 draws.
        "linreg_outliers": dict(learning_rate=1e-3, num_particles=8, num_steps=10000,
                                num_draws=40000),
        # 001 high dimensions: Adam 1e-2, 5000 steps x 100 particles; DAIS 50000 steps.
        "hierarchical_linreg": dict(learning_rate=1e-2, num_particles=100, num_steps=5000),
        "hierarchical_linreg/autodais": dict(num_steps=50000, guide_options=_DAIS_PAPER),
        # 002 end-to-end example: Adam 0.01, 10000 steps.
        "bnn": dict(learning_rate=1e-2, num_steps=10000),
    },
    "quick": {
        "coin": dict(learning_rate=5e-3, num_steps=3000),
        "gamma_concentration": dict(learning_rate=5e-3, num_particles=10, num_steps=2000),
        "correlated_gaussian": dict(learning_rate=1e-2, num_steps=4000),
        "multimodal_2d": dict(learning_rate=5e-3, num_particles=16, num_steps=4000),
        "hierarchical_linreg": dict(learning_rate=1e-2, num_particles=16, num_steps=3000),
        "bnn": dict(learning_rate=1e-2, num_steps=4000, num_particles=2),
    },
    "smoke": {},
}
_NUTS_MODEL = {
    "paper": {"hierarchical_linreg": dict(num_warmup=2000, num_samples=20000)},
    "quick": {},
    "smoke": {},
}


def settings_for(profile: str, model: str, method: str) -> Settings:
    """The settings of one (profile, model, method) cell of the grid."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    if method == "nuts":
        values = {**_NUTS_BASE[profile], **_NUTS_MODEL[profile].get(model, {})}
        settings: Settings = NUTSSettings(**values)
    else:
        table = _SVI_MODEL[profile]
        values = {**_SVI_BASE[profile], **table.get(model, {}), **table.get(f"{model}/{method}", {})}
        settings = SVISettings(**values)
    settings.validate()
    return settings


def with_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Settings with command-line overrides applied; unknown or impossible values raise."""
    valid = {f.name for f in dataclasses.fields(settings)}
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        raise ValueError(
            f"unknown {settings.kind} setting {unknown[0]!r}; valid: {', '.join(sorted(valid))}"
        )
    updated = dataclasses.replace(settings, **overrides)
    updated.validate()
    return updated


def settings_hash(model: str, method: str, settings: Settings, data_key: dict[str, Any]) -> str:
    """A short stable hash of everything that defines a run except its seed."""
    payload = {
        "model": model,
        "method": method,
        "settings": identity(settings),
        "data": data_key,
    }
    return payload_hash(payload)


def payload_hash(payload: dict[str, Any]) -> str:
    """The short stable hash of a JSON payload that names a run's settings (the grid's and the
    studies' own programs' ``settings_hash``)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
