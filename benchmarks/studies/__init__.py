"""The documents' experiments as declared studies (``svi-bench study NAME``, ``--list``).

Each study module declares one ``STUDY`` (``benchmarks.studies.base.Study``); ``STUDIES`` is the
registry, in the order ``--list`` shows them. Running is ``running.run_study``.
"""

from __future__ import annotations

from svi_bench.benchmarks.studies import (
    annealing,
    anytime,
    diagnostics,
    document_budgets,
    faster_than_mcmc,
    live_data,
    locked_mode,
    parameter_recovery,
    particles,
    scaling,
    schedules,
    seeds,
    step_size,
    support_mismatch,
    warm_start,
)
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

STUDIES: dict[str, Study] = {s.name: s for s in (particles.STUDY, seeds.STUDY, scaling.STUDY,
                                                  annealing.STUDY, schedules.STUDY,
                                                  diagnostics.STUDY, warm_start.STUDY,
                                                  anytime.STUDY, live_data.STUDY,
                                                  locked_mode.STUDY, document_budgets.STUDY,
                                                  faster_than_mcmc.STUDY, parameter_recovery.STUDY,
                                                  support_mismatch.STUDY, step_size.STUDY)}

#: Studies of the issue not implemented yet, with why (``--list`` names them).
PLANNED: dict[str, str] = {}

__all__ = ["PLANNED", "STUDIES", "Scope", "Study", "Variant"]
