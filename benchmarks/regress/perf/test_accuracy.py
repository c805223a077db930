"""Accuracy drift: the suite's own quick-profile cell (``runner.run_cell``, seed 0: settings,
fit, diagnostics and scoring exactly as the grid runs them) scored against the model's exact
reference, with the agreement metrics and their noise floors in ``extra_info``.

``benchmarks.regress`` flags a metric whose distance from its ideal value grows between base and
head by more than ``ACCURACY_FLOOR_FACTOR`` x its noise floor. The deterministic ``grad_evals``
and ``final_loss`` (SVI: the tail mean of the loss trace) are gated strictly. The time of this
benchmark includes compilation and is recorded, never gated.
"""

from __future__ import annotations

import math

import pytest

from svi_bench.benchmarks.grid import run_spec, runner
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.regress.perf import programs
from svi_bench.benchmarks.scoring.metrics import AGREEMENT_KEYS
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.scoring.verdict import LEVELS

#: Verdicts known by construction, asserted (a changed one fails the benchmark, and the gate with
#: it): NUTS and the exact families (the Beta guide on the Beta posterior, a full-covariance
#: Gaussian on a Gaussian) pass; a mean-field Gaussian cannot express correlated_gaussian's 0.8
#: correlation and fails. Other cases record their verdict, which must be a verdict: an empty one
#: means the evaluation failed.
EXPECTED_VERDICT = {
    "coin/nuts": "pass",
    "correlated_gaussian/nuts": "pass",
    "dirichlet_categorical/nuts": "pass",
    "coin/manual:beta": "pass",
    "correlated_gaussian/automvn": "pass",
    "correlated_gaussian/autonormal": "fail",
    "correlated_gaussian/autodiagonalnormal": "fail",
}
VERDICTS = LEVELS


def _num(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def test_accuracy(benchmark, accuracy_case: str, tmp_path_factory) -> None:
    case = programs.Case.parse(accuracy_case)
    spec, ds, why = programs.skip_reason(case)
    if why:
        pytest.skip(why)
    if spec.reference_kind != "exact":
        pytest.skip(f"{spec.name} has no exact reference (kind {spec.reference_kind!r})")
    profile = programs.ACCURACY_PROFILE
    cell = next(run_spec.plan([spec], [case.method], (programs.FIGURE_SEED,), profile))
    info = latent_info(spec.model, ds.model_kwargs)
    out = tmp_path_factory.mktemp(case.id.replace(":", "_"))
    (out / "runs").mkdir()  # the runner saves each run's draws there, as the CLI's grid does
    reference = get_reference(spec, ds, cell.data_key, info.sites, out, quality="smoke",
                              log=lambda _msg: None)  # exact references ignore the quality
    assert reference.ok, f"exact reference failed its checks: {reference.failure}"

    benchmark.group = "accuracy"  # before timing: pytest-benchmark reads it when it records
    args = (cell, ds, info, out, lambda: reference)
    rows = benchmark.pedantic(runner.run_cell, args=args, rounds=1, iterations=1)
    row = rows[0]
    assert row["status"] == "ok", f"{row['status']}: {row['error']}"
    missing = [k for k in AGREEMENT_KEYS if _num(row.get(k)) is None]
    assert not missing, f"no finite agreement metric {missing} ({row.get('verdict_reason', '')})"
    benchmark.extra_info.update(
        kind="accuracy", model=case.model, method=case.method,
        grad_evals=_num(row.get("grad_evals")), final_loss=_num(row.get("final_loss_mean")),
        verdict=row.get("verdict", ""), verdict_reason=row.get("verdict_reason", ""),
        accuracy={k: _num(row[k]) for k in AGREEMENT_KEYS},
        accuracy_floor={k: _num(row.get(f"{k}_floor")) for k in AGREEMENT_KEYS},
    )
    verdict, reason = row.get("verdict", ""), row.get("verdict_reason", "")
    assert verdict in VERDICTS, f"no verdict ({reason})"
    expected = EXPECTED_VERDICT.get(accuracy_case)
    assert expected is None or verdict == expected, (
        f"verdict {verdict}, expected {expected} by construction: {reason}")
