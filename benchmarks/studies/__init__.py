"""The documents' experiments as declared studies (``svi-bench study NAME``, ``--list``).

Each study module declares one ``STUDY`` (``benchmarks.studies.base.Study``); ``STUDIES`` is the
registry, in the order ``--list`` shows them. Running is ``running.run_study``.
"""

from __future__ import annotations

from svi_bench.benchmarks.studies import (
    annealing,
    diagnostics,
    particles,
    scaling,
    schedules,
    seeds,
)
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

STUDIES: dict[str, Study] = {s.name: s for s in (particles.STUDY, seeds.STUDY, scaling.STUDY,
                                                  annealing.STUDY, schedules.STUDY,
                                                  diagnostics.STUDY)}

#: Studies of the issue not implemented yet, with why (``--list`` names them).
PLANNED: dict[str, str] = {
    "warm_start": "001, \"Pre-Training SVI\": needs warm starts from a previous fit (SVI "
                  "init_params; NUTS step size and mass matrix), which the runner cannot pass yet",
}

__all__ = ["PLANNED", "STUDIES", "Scope", "Study", "Variant"]
