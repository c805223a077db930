"""The one place the suite calls ArviZ (pinned to 0.23.x; ArviZ 1.x needs Python 3.12).

NumPy in, NumPy out: draws are ``(chain, draw)`` arrays for one scalar component.
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az


def ess_bulk(draws: np.ndarray) -> float:
    """Bulk effective sample size of one scalar, draws shaped (chain, draw)."""
    return float(az.ess(np.asarray(draws, dtype=float), method="bulk"))


def ess_tail(draws: np.ndarray) -> float:
    """Tail effective sample size of one scalar, draws shaped (chain, draw)."""
    return float(az.ess(np.asarray(draws, dtype=float), method="tail"))


def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat of one scalar, draws shaped (chain, draw)."""
    return float(az.rhat(np.asarray(draws, dtype=float), method="rank"))


def bfmi(energy: np.ndarray) -> np.ndarray:
    """Energy Bayesian fraction of missing information per chain, energy shaped (chain, draw)."""
    return np.asarray(az.bfmi(np.asarray(energy, dtype=float)))


def psis_khat(log_weights: np.ndarray) -> float:
    """Pareto k-hat of importance log weights log p(x, z) - log q(z) (Yao et al. 2018)."""
    lw = np.asarray(log_weights, dtype=float).ravel()
    if not np.all(np.isfinite(lw)):
        return float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, khat = az.psislw(lw)
    return float(khat)


def library_version() -> str:
    return str(az.__version__)
