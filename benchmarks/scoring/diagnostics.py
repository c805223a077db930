"""Per-seed NUTS diagnostics (through the ArviZ adapter) and per-seed SVI trace summaries."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from svi_bench.benchmarks.scoring import arviz_adapter, convergence
from svi_bench.benchmarks.scoring.draws import chain_components


def nuts_diagnostics(
    draws: Mapping[str, np.ndarray], diverging: np.ndarray | None, energy: np.ndarray | None
) -> dict[str, float]:
    """Divergences, worst R-hat, smallest bulk/tail ESS and E-BFMI for one seed's chains; a
    sampler without divergences or energies (None) has NaN for those."""
    comps = chain_components(draws)
    finite = all(np.all(np.isfinite(c)) for c in comps)
    return {
        "divergences": int(np.sum(diverging)) if diverging is not None else float("nan"),
        "max_rhat": max(arviz_adapter.rhat(c) for c in comps) if finite else float("nan"),
        "min_ess_bulk": min(arviz_adapter.ess_bulk(c) for c in comps) if finite else float("nan"),
        "min_ess_tail": min(arviz_adapter.ess_tail(c) for c in comps) if finite else float("nan"),
        "min_bfmi": float(np.min(arviz_adapter.bfmi(energy))) if energy is not None
        else float("nan"),
    }


def svi_trace_summary(losses: np.ndarray, particle_elbos: np.ndarray | None
                      ) -> dict[str, float]:
    """Final loss, final ELBO with its standard error (NaN without particle ELBOs), plateau
    step and NaN bookkeeping."""
    mean, sd = convergence.final_loss(losses)
    nan_count, first_nan = convergence.nan_summary(losses)
    pe = np.asarray([np.nan] if particle_elbos is None else particle_elbos, dtype=float)
    return {
        "final_loss_mean": mean,
        "final_loss_sd": sd,
        "final_elbo": float(np.mean(pe)),  # -inf when a particle leaves the model's support
        "final_elbo_se": float(np.std(pe) / np.sqrt(pe.size)),
        "converged_step": convergence.plateau_step(losses),
        "nan_count": nan_count,
        "first_nan_step": first_nan,
    }
