"""Recorded noise floors: equal to the recomputed ones bit for bit, reused, keyed by everything
they depend on, and a corrupt entry is a miss."""

from __future__ import annotations

import numpy as np

from svi_bench.benchmarks.scoring import floor_cache, metrics


def _ref(seed=0):
    return np.random.default_rng(seed).standard_normal((2000, 3))


def test_recorded_floor_equals_recomputed_and_is_reused(tmp_path, monkeypatch):
    ref = _ref()
    first = floor_cache.noise_floor(ref, 200, 7, 3, tmp_path)
    assert first == metrics.noise_floor(ref, 200, np.random.default_rng(7), 3)
    monkeypatch.setattr(metrics, "noise_floor", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("recomputed")))
    assert floor_cache.noise_floor(ref, 200, 7, 3, tmp_path) == first


def test_key_covers_reference_draws_seed_and_repeats():
    ref = _ref()
    keys = {floor_cache.floor_key(ref, 200, 7, 3), floor_cache.floor_key(ref, 201, 7, 3),
            floor_cache.floor_key(ref, 200, 8, 3), floor_cache.floor_key(ref, 200, 7, 4),
            floor_cache.floor_key(_ref(1), 200, 7, 3)}
    assert len(keys) == 5


def test_a_corrupt_entry_is_recomputed(tmp_path):
    ref = _ref()
    first = floor_cache.noise_floor(ref, 100, 7, 2, tmp_path)
    (entry,) = (tmp_path / floor_cache.FOLDER).glob("*.json")
    entry.write_text('{"w1_max_floor": "zero"}')
    assert floor_cache.noise_floor(ref, 100, 7, 2, tmp_path) == first
