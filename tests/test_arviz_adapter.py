"""The ArviZ adapter's diagnostics on chains whose answer is known."""

from __future__ import annotations

import numpy as np

from svi_bench.benchmarks.scoring import arviz_adapter


def test_one_chain_has_a_split_rhat_that_sees_a_drift():
    """A single chain (warm_start's and anytime's NUTS runs) is judged by its halves: mixed iid
    draws read about 1, a chain drifting through the posterior reads far above the 1.1 limit."""
    rng = np.random.default_rng(0)
    mixed = rng.normal(size=(1, 1000))
    drifting = mixed + np.linspace(0.0, 6.0, 1000)[None]
    assert abs(arviz_adapter.rhat(mixed) - 1.0) < 0.01
    assert arviz_adapter.rhat(drifting) > 1.5
    two = rng.normal(size=(2, 500))
    assert abs(arviz_adapter.rhat(two) - 1.0) < 0.02  # several chains: ArviZ as before
