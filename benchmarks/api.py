"""The notebook front door: ``compare(model, model_kwargs)`` runs NUTS and the SVI guides on one
model and returns the tidy results table, writing the usual results folder.

Everything the command line does for ``--model-file`` happens here for a model function defined
in a notebook or script: the spec is built, held to the model contract, registered, its origin
recorded in ``DIR/models.json``, the grid run and scored against a reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from svi_bench import models
from svi_bench.models import Dataset, ModelSpec

#: checks a model defined in a notebook cannot pass and does not need to (its source is hashed
#: from the function when the module has no file)
_NOT_NEEDED = ("module_source",)


def make_spec(model: Callable[..., None], model_kwargs: Mapping[str, Any],
              guides: Mapping[str, Callable[..., None]] | None = None, *, name: str = "my_model",
              description: str = "", source: str = "", reference_kind: str | None = None,
              **spec_fields: Any) -> ModelSpec:
    """A ModelSpec for a model with fixed data; ``reference_kind`` defaults to ``exact`` when an
    ``exact_sampler`` is given, ``quadrature`` with a ``log_density_grid``, else ``nuts``."""
    kwargs = dict(model_kwargs)

    def data(seed: int = 0) -> Dataset:
        return Dataset(model_kwargs=kwargs)

    if reference_kind is None:
        reference_kind = ("exact" if spec_fields.get("exact_sampler") else
                          "quadrature" if spec_fields.get("log_density_grid") else "nuts")
    return ModelSpec(
        name=name, description=description or f"{name} (compare() from Python)",
        source=source or f"{getattr(model, '__qualname__', 'model')} defined in Python",
        model=model, data=data, guides=dict(guides or {}), reference_kind=reference_kind,
        data_uses_seed=False, **spec_fields)


def compare(model: Callable[..., None], model_kwargs: Mapping[str, Any],
            guides: Mapping[str, Callable[..., None]] | None = None, *, name: str = "my_model",
            methods: Sequence[str] | None = None, profile: str = "quick",
            seeds: int | Sequence[int] = 1, out: str | Path = "results",
            reference_kind: str | None = None, **spec_fields: Any) -> pd.DataFrame:
    """Run NUTS and every SVI guide (or ``methods``) on ``model(**model_kwargs)`` and return the
    model's rows of ``out/results.parquet`` (one per method and seed, verdicts included).

    ``guides`` are manual guides {name: guide}; ``spec_fields`` are further ModelSpec fields
    (``exact_sampler``, ``extra_sites``, ...). Raises ValueError on bad input or a broken model.
    """
    from svi_bench.benchmarks.grid import (
        execution,
        manifest,
        model_sources,
        profiles,
        run_spec,
        store,
    )
    from svi_bench.benchmarks.inference import jax_setup
    from svi_bench.models.contract import check_spec

    if profile not in profiles.PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(profiles.PROFILES)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds: give a count >= 1 or a non-empty list of seeds")
    spec = make_spec(model, model_kwargs, guides, name=name, reference_kind=reference_kind,
                     **spec_fields)
    failed = [c for c in check_spec(spec) if not c.ok and not c.skipped
              and c.name not in _NOT_NEEDED]
    if failed:
        raise ValueError(f"model {name!r} breaks the model contract: "
                         + "; ".join(str(c) for c in failed))
    taken = models.REGISTRY.get(name)
    if taken is not None and getattr(taken.data, "__qualname__", "").startswith("make_spec"):
        models.unregister(name)  # an earlier compare() of the same name: this one replaces it
    models.register(spec)
    cells = list(run_spec.plan([spec], list(methods) if methods else None, seed_list, profile))
    try:
        results = store.ResultsStore(Path(out))
    except store.ResultsError as exc:
        raise ValueError(str(exc)) from None
    origin = model_sources.origin_of(name)
    manifest.record_folder(results.out_dir, cells, {name: {**origin, "kind": "python"}})
    jax_setup.configure_jax()
    execution.run_grid(cells, results)
    df = store.load_results(results.out_dir)
    return df[df["model"] == name].reset_index(drop=True)
