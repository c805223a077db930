"""The model contract as one function: ``check_spec(spec)`` runs every check a model must pass.

Each result is a ``Check(name, ok, message)``; a failure's message says what is wrong and how to
fix it (e.g. "data() returned float64 arrays (x): use float32, ..."). A check that needs an
earlier one which failed is reported as skipped (not ok). ``assert_spec(spec)`` raises
``ContractError`` listing every failure. Nothing here knows a particular model: the same checks
run over the registry (``tests/test_model_contract.py``) and accept a model written outside this
project. They run the model briefly (tracing, an AutoNormal initialisation, prior draws, exact
draws), no inference: seconds per model, most of it JAX compilation.

``PLAN`` lists the checks in order with what each needs; one ``guide:<name>`` check per manual
guide runs after ``autonormal``. The checks live in ``model_checks`` (the spec, its data, the
model, guides, reference_model) and ``reference_checks`` (the functions references, scoring and
the report call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from svi_bench.models.base import PRECISIONS, ModelSpec
from svi_bench.models.contract import model_checks as m
from svi_bench.models.contract import reference_checks as r
from svi_bench.models.contract.precision_checks import precision_scope
from svi_bench.models.contract.tools import Context, Detected, Fail

CheckFn = Callable[[Context], "str | None"]

PLAN: tuple[tuple[str, tuple[str, ...], CheckFn], ...] = (
    ("name", (), m.name),
    ("description", (), m.description),
    ("source", (), m.source),
    ("reference_kind", (), m.reference_kind),
    ("functions", (), m.functions),
    ("settings", (), m.settings),
    ("reference_requirements", ("reference_kind", "functions"), m.reference_requirements),
    ("module_source", ("functions",), m.module_source),
    ("data", ("functions", "settings"), m.data),
    ("data_deterministic", ("data",), m.data_deterministic),
    ("data_seed", ("data",), m.data_seed),
    ("data_dtypes", ("data",), m.data_dtypes),
    ("model_trace", ("data",), m.model_trace),
    ("true_values", ("model_trace",), m.true_values),
    ("extra_sites", ("model_trace",), m.extra_sites),
    ("autonormal", ("model_trace",), m.autonormal),
    ("reference_model", ("model_trace",), m.reference_model),
    ("exact_sampler", ("model_trace",), r.exact_sampler),
    ("exact_moments", ("model_trace",), r.exact_moments),
    ("exact_agreement", ("exact_sampler", "exact_moments"), r.exact_agreement),
    ("log_evidence", ("data",), r.log_evidence),
    ("quadrature_grid", ("model_trace",), r.quadrature_grid),
    ("predictive", ("model_trace", "reference_requirements"), r.predictive),
    ("data_plot", ("data",), r.data_plot),
)
GUIDES_AFTER = "autonormal"


@dataclass(frozen=True)
class Check:
    """One named check: ``ok``, and a message (on failure: what is wrong and the fix)."""

    name: str
    ok: bool
    message: str = ""
    skipped: bool = False
    detected: bool = False
    """Passed by what the contract detected in a user's model, not by what it declared."""

    def __str__(self) -> str:
        status = "ok" if self.ok else ("skipped" if self.skipped else "FAILED")
        return f"{status:7} {self.name}" + (f": {self.message}" if self.message else "")


class ContractError(ValueError):
    """A spec failed the contract; ``failures`` holds every failed or skipped check."""

    def __init__(self, name: str, failures: list[Check]) -> None:
        self.failures = failures
        lines = "\n".join(f"  {c}" for c in failures)
        super().__init__(f"model {name!r} breaks the model contract:\n{lines}")


def check_spec(spec: ModelSpec) -> list[Check]:
    """Every check of the model contract on ``spec``, in order (never raises for the model's
    sake: a model function that raises is a failed check)."""
    ctx = Context(spec)
    precision = getattr(spec, "precision", "float32")
    with precision_scope(precision if precision in PRECISIONS else "float32"):
        return _run_plan(spec, ctx)


def _run_plan(spec: ModelSpec, ctx: Context) -> list[Check]:
    guides = getattr(spec, "guides", None)
    guides = guides if isinstance(guides, Mapping) else {}
    plan: list[tuple[str, tuple[str, ...], CheckFn]] = []
    for step in PLAN:
        plan.append(step)
        if step[0] == GUIDES_AFTER:
            plan += [(f"guide:{g}", ("model_trace",), m.guide(g)) for g in guides]
    out: dict[str, Check] = {}
    for name, needs, fn in plan:
        broken = [n for n in needs if not out[n].ok]
        if broken:
            out[name] = Check(name, False, f"not checked: needs {', '.join(broken)}", skipped=True)
            continue
        try:
            note = fn(ctx)
        except Fail as e:
            out[name] = Check(name, False, str(e))
        except Exception as e:  # a model function raised: report it and go on
            out[name] = Check(name, False, f"raised {type(e).__name__}: {e}")
        else:
            out[name] = Check(name, True, note or "", detected=isinstance(note, Detected))
    return list(out.values())


def assert_spec(spec: ModelSpec) -> list[Check]:
    """``check_spec``, raising ContractError with every failure; the checks if all pass."""
    checks = check_spec(spec)
    failures = [c for c in checks if not c.ok]
    if failures:
        raise ContractError(str(getattr(spec, "name", spec)), failures)
    return checks


__all__ = ["PLAN", "Check", "ContractError", "Fail", "assert_spec", "check_spec"]
