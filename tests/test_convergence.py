from __future__ import annotations

import numpy as np

from svi_bench.benchmarks.scoring.convergence import final_loss, nan_summary, plateau_step


def test_plateau_of_an_exponential_decay_is_where_it_enters_the_noise_band():
    rng = np.random.default_rng(0)
    t = np.arange(5000)
    losses = 10 + 100 * np.exp(-t / 300) + rng.normal(size=t.size)
    band = 4 / np.sqrt(50) + 0.01
    expected = 300 * np.log(100 / band)
    assert abs(plateau_step(losses) - expected) < 300


def test_pure_noise_is_a_plateau_for_most_seeds():
    found = [plateau_step(5 + np.random.default_rng(s).normal(size=2000)) for s in range(50)]
    assert np.mean(np.isfinite(found)) > 0.9


def test_a_trace_still_falling_has_no_plateau():
    t = np.arange(5000)
    assert np.isnan(plateau_step(10 + 100 * np.exp(-t / 3000)))


def test_nan_bookkeeping():
    losses = np.array([3.0, 2.0, np.nan, 1.0, np.inf])
    assert nan_summary(losses) == (2, 2.0)
    # A clean trace: no non-finite loss, and no first step (NaN; a tuple compare with np.nan
    # would test identity, not the values).
    count, first = nan_summary(np.ones(5))
    assert count == 0 and isinstance(count, int)
    assert np.isnan(first)
    count, first = nan_summary(np.r_[np.ones(4), -np.inf])
    assert (count, first) == (1, 4.0)
    mean, sd = final_loss(np.r_[np.full(90, 5.0), np.full(10, 1.0)])
    assert mean == 1.0 and sd == 0.0


def test_a_trace_falling_steeply_inside_noise_has_no_plateau():
    """A noisy loss still dropping through its last 10% must not be called converged."""
    rng = np.random.default_rng(1)
    t = np.arange(300)
    losses = 1000 - 0.6 * t + rng.normal(scale=20, size=t.size)
    assert np.isnan(plateau_step(losses))
