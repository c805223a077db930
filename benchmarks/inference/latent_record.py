"""The latent dimension of every model, recorded so ``svi-bench list`` needn't work it out again.

One small JSON file, ``$SVI_BENCH_CACHE/latent_dims.json``: per model name, what identifies the
model and its data (the source hashes of the model's and the data generator's modules, the data
key, NumPyro's version), the dimension and a seal (a digest of both). A record that does not
match, or whose seal does not, and a file that is
missing, unreadable or corrupt, is a miss: the dimension is computed abstractly (``jax.eval_shape``
of NumPyro's initialisation: nothing compiled; only the data generator runs, with JAX's persistent
cache on) and the record rewritten. The record is a cache, never a result: failing to write it is
not an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svi_bench.benchmarks.artifacts import atomic_write
from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.inference.fingerprints import function_source_hash, source_hash

if TYPE_CHECKING:
    from svi_bench.models import ModelSpec

FORMAT = 1
"""Layout of the file; another value makes the whole file a miss."""
FILENAME = "latent_dims.json"


def record_path(cache_dir: Path | None = None) -> Path:
    """``<cache_dir or $SVI_BENCH_CACHE>/latent_dims.json`` (the default read when called)."""
    return Path(cache_dir or jax_setup.DEFAULT_CACHE_DIR) / FILENAME


def identity(spec: ModelSpec, data_key: Mapping[str, Any]) -> dict[str, Any]:
    """What the dimension of ``spec`` with the data ``data_key`` depends on."""
    import numpyro

    return {"source_hash": source_hash(spec), "data_source_hash": function_source_hash(spec.data),
            "data": json.loads(json.dumps(dict(data_key), sort_keys=True, default=str)),
            "numpyro": numpyro.__version__}


def read(path: Path) -> dict[str, dict[str, Any]]:
    """The file's records by model name; a missing or corrupt file (or entry) is no record."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(
            doc.get("models"), dict):
        return {}
    return {name: entry for name, entry in doc["models"].items()
            if isinstance(entry, dict) and isinstance(entry.get("dim"), int)
            and not isinstance(entry["dim"], bool) and entry["dim"] >= 0}


def write(path: Path, records: Mapping[str, dict[str, Any]]) -> bool:
    """Replace the file atomically; False (and nothing raised) if it cannot be written."""
    text = json.dumps({"format": FORMAT, "models": dict(records)}, indent=1, sort_keys=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    except OSError:
        return False
    return True


def seal(payload: Mapping[str, Any]) -> str:
    """A digest of a record's identity and value, stored beside them: an entry edited by hand,
    copied from another model or written by a bug does not match its seal, so it is a miss."""
    import hashlib

    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(f"{FORMAT}:{text}".encode()).hexdigest()[:24]


class LatentDims:
    """Dimensions of models' default data, from the record or computed and recorded.

    ``dim(spec)`` raises whatever the model or its data raise; ``save()`` writes the record once
    at the end if anything changed."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.path = record_path(cache_dir)
        self.records = read(self.path)
        self.hits = self.misses = 0
        self._changed = False

    def dim(self, spec: ModelSpec) -> int:
        data_key = spec.data_key()
        ident = identity(spec, data_key)
        entry = self.records.get(spec.name)
        if (entry is not None and entry.get("identity") == ident
                and entry.get("seal") == seal({"identity": ident, "dim": entry["dim"]})):
            self.hits += 1
            return entry["dim"]
        from svi_bench.benchmarks.inference.introspect import latent_info

        if not self.misses:  # data generators may run JAX operations: their compiles cached
            try:
                jax_setup.configure_jax()
            except OSError:  # an unusable cache folder: compile without it
                pass
        self.misses += 1
        ds = spec.data_for(data_key)
        dim = latent_info(spec.model, ds.model_kwargs, abstract=True).unconstrained_dim
        self.records[spec.name] = {"identity": ident, "dim": dim,
                                   "seal": seal({"identity": ident, "dim": dim})}
        self._changed = True
        return dim

    def save(self) -> bool:
        return write(self.path, self.records) if self._changed else True


INFO_FORMAT = 1
INFO_DIR = "latent_info"


def run_latent_info_key(spec: ModelSpec, model_kwargs: Mapping[str, Any]) -> str:
    """What the run path's latent info depends on: the model's source, the data's bytes (after
    any precision cast) and the libraries that trace and check it."""
    import hashlib

    import jax
    import numpyro

    from svi_bench.benchmarks.inference.executables import kwargs_hash

    text = json.dumps({"format": INFO_FORMAT, "source_hash": source_hash(spec),
                       "model": [spec.name, getattr(spec.model, "__qualname__", ""),
                                 function_source_hash(spec.model)],
                       "data": kwargs_hash(model_kwargs),
                       "versions": [jax.__version__, numpyro.__version__]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_latent_info(spec: ModelSpec, model_kwargs: Mapping[str, Any],
                    cache_dir: Path | None = None):
    """``introspect.latent_info(abstract=True, check_init=True)`` for a grid run, from a record
    when the same model source and data were checked before (a warm run then traces and compiles
    nothing to learn its sites and to validate its initial point). Only a valid model is
    recorded: an invalid one is checked, and raises, every time. The record is a cache: a
    corrupt or unwritable one is a miss."""
    from svi_bench.benchmarks.artifacts import cached_json
    from svi_bench.benchmarks.inference.introspect import latent_info

    key = run_latent_info_key(spec, model_kwargs)
    path = Path(cache_dir or jax_setup.cache_root()) / INFO_DIR / (key + ".json")

    def to_json(info) -> dict[str, Any]:
        doc = {"key": key, "sites": list(info.sites),
               "shapes": {k: list(v) for k, v in info.shapes.items()},
               "unconstrained_dim": info.unconstrained_dim}
        return {**doc, "seal": seal(doc)}

    return cached_json(
        path, lambda: latent_info(spec.model, model_kwargs, abstract=True, check_init=True),
        to_json=to_json, from_json=lambda doc: checked_latent_info(doc, key))


def checked_latent_info(doc: Any, key: str):
    """The ``LatentInfo`` of a record written under ``key``, or ValueError (a miss) if the record
    is not one: another key, a broken seal, or sites, shapes and dimension that do not fit
    together (each site has a shape of non-negative sizes; the unconstrained dimension is at most
    the sites' total size: no transform adds coordinates)."""
    from svi_bench.benchmarks.inference.introspect import LatentInfo

    if not isinstance(doc, dict) or doc.get("key") != key:
        raise ValueError("a latent-info record of another model or data")
    if doc.get("seal") != seal({k: v for k, v in doc.items() if k != "seal"}):
        raise ValueError("a latent-info record whose seal does not match its content")
    sites, shapes, dim = doc.get("sites"), doc.get("shapes"), doc.get("unconstrained_dim")
    if (not isinstance(sites, list) or not all(isinstance(s, str) for s in sites)
            or not isinstance(shapes, dict) or sorted(shapes) != sorted(sites)
            or len(set(sites)) != len(sites)
            or not all(isinstance(v, list) and all(type(n) is int and n >= 0 for n in v)
                       for v in shapes.values())):
        raise ValueError("a latent-info record whose sites and shapes do not match")
    total = sum(math.prod(v) for v in shapes.values())
    if type(dim) is not int or not 0 <= dim <= total:
        raise ValueError(f"a latent-info record with dimension {dim!r} for {total} latent values")
    return LatentInfo(sites=tuple(sites), shapes={k: tuple(shapes[k]) for k in sites},
                      unconstrained_dim=dim)
