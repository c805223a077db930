"""One ``RunSpec`` from plan to row: a (model, method) cell with its resolved profile, settings,
seeds, data key, reference quality and identity, consumed by the grid, Dask, the studies and the
perf suite. Its identity (``hash``) is computed here alone (``profiles.settings_hash``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from svi_bench.benchmarks.grid.profiles import (
    reference_quality,
    settings_for,
    settings_hash,
    with_overrides,
)
from svi_bench.models import ModelSpec


@dataclass(frozen=True)
class RunSpec:
    """One (model, method) cell of the grid with its settings and seeds."""

    spec: ModelSpec
    method: str
    settings: Any
    seeds: tuple[int, ...]
    data_key: dict[str, Any]
    hash: str
    profile: str
    family: str = ""

    @property
    def reference_quality(self) -> str:
        return reference_quality(self.profile)


def make_run_spec(spec: ModelSpec, method: str, settings: Any, seeds: Sequence[int],
                  data_key: dict[str, Any], profile: str) -> RunSpec:
    """A RunSpec whose identity is computed from what defines it."""
    from svi_bench.benchmarks.methods import registry

    return RunSpec(spec, method, settings, tuple(seeds), data_key,
                   settings_hash(spec.name, method, settings, data_key), profile,
                   registry.resolve(method).family)


def plan(
    specs: Sequence[ModelSpec],
    method_names: Sequence[str] | None,
    seeds: Sequence[int],
    profile: str,
    overrides: dict[str, Any] | None = None,
    sizes: dict[str, dict[str, Any]] | None = None,
    skip: Sequence[str] = (),
) -> Iterator[RunSpec]:
    """The grid as data: every (model, method) cell, settings resolved and validated; ``skip``
    leaves methods out of the default (every method each model offers)."""
    from svi_bench.benchmarks.methods import registry

    overrides = overrides or {}
    for spec in specs:
        size = (sizes or {}).get(spec.name, {})
        data_key = spec.data_key(**size)
        for method in method_names or [m for m in registry.methods_for(spec) if m not in skip]:
            settings = dataclasses.replace(settings_for(profile, spec.name, method),
                                           precision=spec.precision)
            kind_overrides = {
                k: v for k, v in overrides.items()
                if k in {f.name for f in dataclasses.fields(settings)}
            }
            settings = with_overrides(settings, kind_overrides)
            yield make_run_spec(spec, method, settings, seeds, data_key, profile)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def run_provenance() -> dict[str, str]:
    """When a row was started and with which JAX, NumPyro and XLA flags (every row has them)."""
    import jax
    import numpyro

    return {"started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "jax_version": jax.__version__, "numpyro_version": numpyro.__version__,
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def base_row(run: RunSpec, seed: int) -> dict[str, Any]:
    """The columns every row of ``run`` has before it runs: its identity and provenance."""
    return {
        "model": run.spec.name,
        "method": run.method,
        "family": run.family,
        "seed": seed,
        "profile": run.profile,
        "settings_hash": run.hash,
        "settings": json.dumps(dataclasses.asdict(run.settings), sort_keys=True),
        "precision": run.settings.precision,
        "optimizer": getattr(run.settings, "optimizer", ""),
        "data": json.dumps(run.data_key, sort_keys=True),
        "status": "ok",
        "error": "",
        "warning": "",
        "artifact": "",
        **run_provenance(),
        "seeds_in_program": len(run.seeds),
    }


def failed_rows(run: RunSpec, reason: str) -> list[dict[str, Any]]:
    """Every row of ``run`` as failed with ``reason`` (a broken model, a lost worker)."""
    rows = [base_row(run, s) for s in run.seeds]
    for row in rows:
        row.update(status="failed", error=reason)
    return rows
