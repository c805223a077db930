"""The results manifest, ``DIR/manifest.json``: what a results folder holds, for the report.

It records the methods (family, description, display order, leaderboard column, baseline, origin),
the models (description, source, reference kind, the methods offered for each, origin) and the
planned cells, so that ``svi-bench report`` reads the folder alone: no engine import for method
tables, no user file re-imported for a model's description. Each ``run`` and ``study`` merges its
entries into the file (atomically); entries of other runs are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from svi_bench.benchmarks.artifacts import atomic_write, folder_lock
from svi_bench.benchmarks.grid.run_spec import RunSpec
from svi_bench.models import ModelSpec

NAME = "manifest.json"
FORMAT = 1


def read(out_dir: Path) -> dict[str, Any]:
    """The folder's manifest, or an empty one (absent or unreadable: it is rewritten whole)."""
    path = Path(out_dir) / NAME
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return data
    except (OSError, ValueError):
        pass
    return {"format": FORMAT, "methods": {}, "models": {}, "cells": []}


def _model_entry(spec: ModelSpec, origin: Mapping[str, Any] | None) -> dict[str, Any]:
    from svi_bench.benchmarks.grid.model_sources import origin_of
    from svi_bench.benchmarks.methods import registry

    return {"description": spec.description, "source": spec.source,
            "reference_kind": spec.reference_kind, "notes": getattr(spec, "notes", "") or "",
            "methods": registry.methods_for(spec), "origin": dict(origin or origin_of(spec.name))}


def _method_entries(names: Iterable[str], specs: Mapping[str, ModelSpec],
                    origins: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    from svi_bench.benchmarks.methods import numpyro_guides, registry, sources

    out = {}
    for name in names:
        method = registry.resolve(name)
        entry = registry.manifest_entry(method, dict(origins.get(name) or sources.origin_of(method)))
        if name.startswith(numpyro_guides.MANUAL_PREFIX):
            entry["description"] = numpyro_guides.describe_manual(name, specs)
        out[name] = entry
    return out


def write(out_dir: Path, runs: Iterable[RunSpec], specs: Iterable[ModelSpec],
          model_origins: Mapping[str, Mapping[str, Any]],
          method_origins: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Merge the models of ``specs``, every method offered for them and the cells of ``runs``
    into ``out_dir/manifest.json`` as it is now, under the folder's lock (runs sharing the folder
    keep each other's entries)."""
    from svi_bench.benchmarks.methods import registry

    specs = {s.name: s for s in specs}
    models = {name: _model_entry(spec, model_origins.get(name)) for name, spec in specs.items()}
    methods = _method_entries(registry.all_names(specs.values()), specs, method_origins or {})
    with folder_lock(out_dir, NAME):
        return _merge(out_dir, runs, models, methods)


def _merge(out_dir: Path, runs: Iterable[RunSpec], models: Mapping[str, Any],
           methods: Mapping[str, Any]) -> Path:
    manifest = read(out_dir)
    manifest["models"].update(models)
    manifest["methods"].update(methods)
    cells = {(c["model"], c["method"], c["settings_hash"]): c for c in manifest["cells"]}
    for run in runs:
        key = (run.spec.name, run.method, run.hash)
        seeds = sorted(set(cells.get(key, {}).get("seeds", [])) | set(run.seeds))
        cells[key] = {"model": run.spec.name, "method": run.method, "profile": run.profile,
                      "settings_hash": run.hash, "seeds": seeds}
    manifest["cells"] = list(cells.values())
    path = Path(out_dir) / NAME
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def record_folder(out_dir: Path, runs: Iterable[RunSpec],
                  model_origins: Mapping[str, Mapping[str, Any]],
                  method_origins: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Before anything runs: where the folder's models come from (``models.json``) and its
    manifest (methods, models, planned cells: what the report reads). Raises OSError, or
    SourceError for a model name the folder holds from another source."""
    from svi_bench.benchmarks.grid import model_sources

    runs = list(runs)
    specs = list({r.spec.name: r.spec for r in runs}.values())
    model_sources.write_record(out_dir, {s.name for s in specs}, dict(model_origins))
    write(out_dir, runs, specs, model_origins, method_origins)
