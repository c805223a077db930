"""Trusted reference posteriors, built by a command and stored with their provenance.

Kinds: ``exact`` (the model's exact sampler), ``quadrature`` (draws from the model's density on a
grid, with the grid error stated) and ``nuts`` (long NUTS that must pass posteriordb-style gates:
>= 4 chains, >= 10,000 retained draws thinned until lag-1 autocorrelation < 0.05, max R-hat < 1.01,
bulk and tail ESS >= half the retained draws, no divergences, E-BFMI > 0.2). A reference that fails
a gate is stored as failed with the reasons; verdicts that lean on it say so. Files: the
draws as ArviZ netCDF (``az.from_netcdf`` opens them) and a JSON of provenance; a reference whose
hashes no longer match, or whose file is corrupt, is rebuilt with a message. Never pickled. The
builders are in ``reference_builders``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svi_bench import models
from svi_bench.benchmarks.artifacts import atomic_write
from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.inference.fingerprints import (  # re-exported: their home
    data_hash,
    source_hash,
)
from svi_bench.benchmarks.progress_line import throttled
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring.reference_builders import (
    QUALITIES,
    build_exact,
    build_nuts,
    build_quadrature,
    recipe_hash,
    with_extra_sites,
)
from svi_bench.models import Dataset, ModelSpec
from svi_bench.models.contract.precision_checks import precision_scope


@dataclass
class Reference:
    """Reference draws {site: (n, *shape)} with provenance; ``ok`` is False if a gate failed."""

    model: str
    kind: str
    draws: dict[str, np.ndarray]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.provenance.get("ok", False))

    @property
    def failure(self) -> str:
        text = "; ".join(self.provenance.get("failed_checks", []))
        advice = self.provenance.get("advice", "")
        return f"{text} ({advice})" if advice and text else text


def precision_advice(precision: str, checks: dict[str, Any], draws: dict[str, np.ndarray]) -> str:
    """For a float32 reference with divergences or non-finite values: the likely cause and the fix
    (round-off in a Cholesky factor, an inverse or a long sum is what 64-bit mode removes)."""
    if precision != "float32":
        return ""
    signs = []
    if checks.get("divergences"):
        signs.append(f"{checks['divergences']} divergences")
    nonfinite = [k for k, v in draws.items() if not np.all(np.isfinite(np.asarray(v, float)))]
    nonfinite += [k for k, v in checks.items() if isinstance(v, float) and not np.isfinite(v)]
    if nonfinite:
        signs.append(f"non-finite values ({', '.join(nonfinite[:4])})")
    if not signs:
        return ""
    return (f"the model runs in float32 and its reference has {' and '.join(signs)}: if float32 "
            "round-off is the cause, declare ModelSpec(precision=\"float64\") or run with "
            "--set precision=float64; `svi-bench check` compares both precisions")


def _versions() -> dict[str, str]:
    import jax
    import numpyro
    import scipy

    return {"jax": jax.__version__, "numpyro": numpyro.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "arviz": arviz_adapter.library_version(),
            "python": platform.python_version()}


REFERENCE_SEED = 20_251_121
SHIPPED_DIR = Path(models.__file__).resolve().parent
"""The built-in models' references ship with the suite in ``models/references/`` (package data):
a fresh machine builds none (``svi-bench reference --model all --ship`` regenerates them)."""


def reference_paths(out_dir: Path, spec: ModelSpec, data_key: dict[str, Any],
                    quality: str = "full", precision: str = "float32") -> tuple[Path, Path]:
    """(draws ``.nc``, provenance ``.json``) of a reference under ``out_dir/references``; a
    float64 reference is named apart from a float32 one of the same model and data."""
    tag = hashlib.sha256(json.dumps(data_key, sort_keys=True).encode()).hexdigest()[:8]
    suffix = "" if quality == "full" or spec.reference_kind != "nuts" else f"__{quality}"
    suffix += "" if precision == "float32" else f"__{precision}"
    base = Path(out_dir) / "references" / f"{spec.name}__{tag}{suffix}"
    return base.with_suffix(".nc"), base.with_suffix(".json")


def save_reference(draws_path: Path, json_path: Path, draws: dict[str, np.ndarray],
                   provenance: dict[str, Any]) -> None:
    """Draws as ArviZ netCDF (provenance also in the posterior group's attrs) plus the JSON."""
    text = json.dumps(provenance, indent=2, sort_keys=True, default=float)
    draws_path.parent.mkdir(parents=True, exist_ok=True)
    arviz_adapter.save_posterior(draws_path, {k: np.asarray(v) for k, v in draws.items()},
                                 {"provenance": text})
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(text + "\n"))


# --- load or build ----------------------------------------------------------------------------


def expected_provenance(spec: ModelSpec, ds: Dataset, data_key: dict[str, Any], seed: int,
                        quality: str, precision: str = "float32") -> dict:
    """What a stored reference's provenance must say to be used for this data and recipe."""
    if spec.reference_kind != "nuts":
        quality = "full"  # exact and quadrature references cost nothing to make well
    return {"model": spec.name, "kind": spec.reference_kind, "seed": seed, "data": data_key,
            "quality": quality, "data_hash": data_hash(ds), "source_hash": source_hash(spec),
            "recipe_hash": recipe_hash(spec, quality), "precision": precision}


def load_reference(draws_path: Path, json_path: Path, expected: dict[str, Any]
                   ) -> tuple[Reference | None, str]:
    """The stored reference if it is intact and its hashes match, else (None, why not).

    Library versions are recorded, not compared: only the data, the model's source and the
    recipe (settings, gates) make a reference stale."""
    if not draws_path.exists() and not json_path.exists():
        return None, "no stored reference"
    if not draws_path.exists():
        return None, f"stored reference {draws_path.stem} lacks its draws ({draws_path.name})"
    try:
        provenance = json.loads(json_path.read_text())
        if not isinstance(provenance, dict):
            raise ValueError("provenance is not a JSON object")
        draws, _ = arviz_adapter.load_posterior(draws_path)
    except Exception as exc:
        return None, f"stored reference {draws_path.stem} is corrupt ({type(exc).__name__})"
    for key in ("data_hash", "source_hash", "recipe_hash", "kind", "seed", "quality", "precision"):
        # references stored before precision was recorded were all float32
        if provenance.get(key, "float32" if key == "precision" else None) != expected[key]:
            return None, f"stored reference {draws_path.stem} is stale ({key} changed)"
    if not draws:
        return None, f"stored reference {draws_path.stem} has no draws"
    return Reference(provenance["model"], provenance["kind"], draws, provenance), ""


def get_reference(spec: ModelSpec, ds: Dataset, data_key: dict[str, Any], sites: tuple[str, ...],
                  out_dir: Path, quality: str = "full", seed: int = REFERENCE_SEED,
                  rebuild: bool = False, log=lambda msg: print(msg, file=sys.stderr),
                  ship: bool = False, precision: str | None = None,
                  progress: Callable[[str], None] | None = None) -> Reference:
    """The model's reference, from the first valid of: ``out_dir/references``, the references
    shipped with the suite, the machine's cache (``$SVI_BENCH_CACHE/references``); a copy found
    elsewhere is copied into ``out_dir`` so results stay self-contained. Otherwise it is built and
    stored in ``out_dir`` and the cache (and, with ``ship``, among the shipped references).
    It is built in ``precision`` (default: the model's declared one); a NUTS build tells
    ``progress`` how it goes (default: ``log`` every 30 s)."""
    if quality not in QUALITIES:
        raise ValueError(f"unknown reference quality {quality!r}; valid: {', '.join(QUALITIES)}")
    precision = precision or spec.precision
    here = reference_paths(out_dir, spec, data_key, quality, precision)
    shipped = reference_paths(SHIPPED_DIR, spec, data_key, quality, precision)
    cached = reference_paths(jax_setup.DEFAULT_CACHE_DIR, spec, data_key, quality, precision)
    expected = expected_provenance(spec, ds, data_key, seed, quality, precision)
    if not rebuild:
        for where, paths in (("results folder", here), ("shipped", shipped), ("cache", cached)):
            ref, why = load_reference(*paths, expected)
            if ref is not None:
                if paths != here:
                    here[0].parent.mkdir(parents=True, exist_ok=True)
                    for src, dst in zip(paths, here, strict=True):
                        shutil.copyfile(src, dst)
                if ship and paths != shipped:
                    save_reference(*shipped, ref.draws, ref.provenance)
                return ref
            if why != "no stored reference":
                log(f"{spec.name}: {why} ({where}); not used")
        log(f"{spec.name}: building the {quality} {spec.reference_kind} reference")
    start = time.perf_counter()
    with precision_scope(precision):
        if spec.reference_kind == "exact":
            draws, prov = build_exact(spec, ds, seed)
        elif spec.reference_kind == "quadrature":
            draws, prov = build_quadrature(spec, ds, seed, sites)
        else:
            draws, prov = build_nuts(spec, ds, seed, sites, log, quality, precision,
                                     progress or throttled(log))
        draws = with_extra_sites(spec, ds, draws, seed)
    provenance = {**expected, **prov, "versions": _versions(),
                  "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "build_s": time.perf_counter() - start}
    provenance["ok"] = not provenance["failed_checks"]
    advice = precision_advice(precision, provenance.get("checks", {}), draws)
    if advice and not provenance["ok"]:
        provenance["advice"] = advice
    for paths in (here, cached, *((shipped,) if ship else ())):
        save_reference(*paths, draws, provenance)
    if not provenance["ok"]:
        ref = Reference(spec.name, spec.reference_kind, draws, provenance)
        log(f"{spec.name}: reference FAILED its checks: {ref.failure}")
    return Reference(spec.name, spec.reference_kind, draws, provenance)
