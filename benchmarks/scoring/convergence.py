"""The documented plateau rule for SVI loss traces, and loss-trace summaries.

Plateau rule: fit a line to the last quarter of the losses; if its drop over that quarter exceeds
three standard errors (plus a tolerance of 1e-3 max(1, |L|)) the loss is still moving: no plateau
(NaN). Otherwise let L be the mean of the last 10% and s the sd of the residuals about the line, cut the trace
into windows of w = max(10, N // 100) steps, and the loss converged at the end of the first window
after which every window mean stays within L +/- (4 s / sqrt(w) + tolerance). A trace whose first
such window starts inside the last 10% has not shown a plateau either: NaN.
"""

from __future__ import annotations

import numpy as np


def plateau_step(losses: np.ndarray) -> float:
    """The step at which the loss reached its final plateau, or NaN if it never did."""
    losses = np.asarray(losses, dtype=float)
    n = losses.size
    if n < 20 or not np.all(np.isfinite(losses[-max(4, n // 4) :])):
        return float("nan")
    tail = losses[-max(1, n // 10) :]
    level = tail.mean()
    quarter = losses[-max(4, n // 4) :]
    steps = np.arange(quarter.size, dtype=float)
    slope, intercept = np.polyfit(steps, quarter, 1)
    spread = float(np.std(quarter - (slope * steps + intercept)))
    tolerance = 1e-3 * max(1.0, abs(level))
    # Still falling (or rising): the fitted drop over the last quarter exceeds 3 standard errors.
    drop = abs(slope) * quarter.size
    if drop > 3.0 * spread * np.sqrt(12.0 / quarter.size) + tolerance:
        return float("nan")
    w = max(10, n // 100)
    num_windows = n // w
    means = losses[: num_windows * w].reshape(num_windows, w).mean(axis=1)
    band = 4.0 * spread / np.sqrt(w) + tolerance
    outside = ~(np.abs(means - level) <= band)  # NaN windows count as outside
    last_outside = np.flatnonzero(outside)
    first_inside = 0 if last_outside.size == 0 else int(last_outside[-1]) + 1
    if first_inside >= num_windows or first_inside * w >= n - n // 10:
        return float("nan")
    return float((first_inside + 1) * w)


def nan_summary(losses: np.ndarray) -> tuple[int, float]:
    """How many losses are non-finite and the first such step (NaN if none)."""
    bad = ~np.isfinite(np.asarray(losses, dtype=float))
    count = int(bad.sum())
    return count, (float(np.argmax(bad)) if count else float("nan"))


def final_loss(losses: np.ndarray) -> tuple[float, float]:
    """Mean and sd of the finite losses over the last 10% of the steps (NaN if none)."""
    losses = np.asarray(losses, dtype=float)
    tail = losses[-max(1, losses.size // 10) :]
    tail = tail[np.isfinite(tail)]
    if tail.size == 0:
        return float("nan"), float("nan")
    return float(tail.mean()), float(tail.std())
