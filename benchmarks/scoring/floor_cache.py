"""Noise floors recorded in the suite's cache, so a warm run does not recompute them.

A floor (``metrics.noise_floor``) is a pure function of the reference draws, the number of draws,
the seed, the repeats and the metric code, and costs a few tenths of a second (five agreement
computations against the reference), once per model and per NUTS run's ESS. It is recorded as
``$SVI_BENCH_CACHE/floors/<key>.json``, keyed by all of those (the reference by its bytes, the code
by the source of ``metrics``). JSON keeps every float exactly, so a recorded floor equals a
recomputed one bit for bit. A cache, never results: an unreadable entry is a miss, an unwritable
folder only costs the recomputation.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np

from svi_bench.benchmarks.artifacts import cached_json
from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.scoring import metrics

FOLDER = "floors"


@cache
def _metrics_source() -> str:
    return hashlib.sha256(Path(metrics.__file__).read_bytes()).hexdigest()


def floor_key(ref: np.ndarray, n_draws: int, seed: int, repeats: int) -> str:
    """Everything a floor depends on, hashed."""
    r = np.ascontiguousarray(ref)
    h = hashlib.sha256(f"{r.dtype}|{r.shape}|{n_draws}|{seed}|{repeats}|".encode())
    h.update(_metrics_source().encode())
    h.update(r.tobytes())
    return h.hexdigest()[:32]


def noise_floor(ref: np.ndarray, n_draws: int, seed: int, repeats: int,
                cache_dir: Path | None = None) -> dict[str, float]:
    """``metrics.noise_floor(ref, n_draws, default_rng(seed), repeats)``, recorded."""
    path = Path(cache_dir or jax_setup.cache_root()) / FOLDER / (
        floor_key(ref, n_draws, seed, repeats) + ".json")
    return cached_json(
        path, lambda: metrics.noise_floor(ref, n_draws, np.random.default_rng(seed), repeats),
        to_json=lambda floors: {k: float(v) for k, v in floors.items()},
        from_json=_floors)


def _floors(doc) -> dict[str, float]:
    if not (isinstance(doc, dict) and doc and all(isinstance(v, (int, float))
                                                  for v in doc.values())):
        raise ValueError("not a recorded floor")
    return {k: float(v) for k, v in doc.items()}
