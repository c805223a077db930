"""The regression comparator on synthetic pytest-benchmark JSON: no benchmarking here.

It must catch a 2x slowdown, an accuracy drift beyond the noise floor and a changed deterministic
figure; pass changes within the noise; and name a benchmark that errored or vanished in head.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

from svi_bench.benchmarks.regress import Run, RunError, compare, main  # noqa: E402
from svi_bench.benchmarks.regress import thresholds as regress  # noqa: E402

SVI = "benchmarks/regress/perf/test_svi_perf.py::test_svi_steps[coin-autonormal]"
NUTS = "benchmarks/regress/perf/test_nuts_perf.py::test_nuts_draws[coin-nuts]"
ACC = "benchmarks/regress/perf/test_accuracy.py::test_accuracy[correlated_gaussian-automvn]"
FLOORS = {"w1_max": 0.02, "std_mean_err_max": 0.015, "sd_log_ratio_max": 0.014,
          "joint_sliced_w1": 0.02}
ACCURACY = {"w1_max": 0.05, "std_mean_err_max": 0.024, "sd_log_ratio_max": 0.044,
            "joint_sliced_w1": 0.04}


def bench(fullname: str, group: str, times: list[float], **extra) -> dict:
    """One benchmark entry shaped like pytest-benchmark 5's JSON."""
    return {
        "group": group,
        "name": fullname.split("::")[-1],
        "fullname": fullname,
        "params": None,
        "stats": {"min": min(times), "max": max(times), "mean": statistics.fmean(times),
                  "median": statistics.median(times), "stddev": statistics.pstdev(times),
                  "rounds": len(times), "iterations": 1},
        "extra_info": extra,
        "options": {"timer": "process_time", "disable_gc": True},
    }


def run_json(benches: list[dict], outcomes: dict | None = None, commit: str = "a" * 40) -> dict:
    passed = {b["fullname"]: {"outcome": "passed", "reason": ""} for b in benches}
    return {
        "machine_info": {"node": "ci", "cpu": {"brand_raw": "test cpu"}},
        "commit_info": {"id": commit, "time": "2025-01-01T00:00:00+00:00", "branch": "main",
                        "dirty": False},
        "benchmarks": benches,
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.1.0",
        "svi_bench": {"outcomes": {**passed, **(outcomes or {})}},
    }


def suite(scale: dict[str, float] | None = None, jitter: float = 0.0, *, grad_evals: int = 4608,
          final_loss: float = 14.87113, accuracy: dict | None = None, drop: tuple = (),
          outcomes: dict | None = None) -> Run:
    """A run of three benchmarks; ``scale`` multiplies one benchmark's times."""
    scale = scale or {}
    f = 1.0 + jitter
    benches = [
        bench(SVI, "svi", [x * f * scale.get(SVI, 1.0) for x in (0.0080, 0.0082, 0.0090)],
              kind="svi", grad_evals=2000, final_loss=final_loss, compile_s=1.2),
        bench(NUTS, "nuts", [x * f * scale.get(NUTS, 1.0) for x in (0.020, 0.021, 0.025)],
              kind="nuts", grad_evals=grad_evals, grad_evals_warmup=855, divergences=0),
        bench(ACC, None, [2.0 * scale.get(ACC, 1.0)], kind="accuracy", grad_evals=300.0,
              accuracy=accuracy or ACCURACY, accuracy_floor=FLOORS),
    ]
    benches = [b for b in benches if b["fullname"] not in drop]
    return Run.from_json(run_json(benches, outcomes))


def alternations(head_kwargs: dict | None = None, jitters=(0.05, -0.08, 0.12)) -> tuple:
    """Three ABBA alternations with machine noise: base and head each get their own jitter."""
    base = [suite(jitter=j) for j in jitters]
    head = [suite(jitter=-j, **(head_kwargs or {})) for j in jitters]
    return base, head


def names(findings, severity=regress.FAIL) -> list[tuple[str, str]]:
    return [(f.benchmark, f.kind) for f in findings if f.severity == severity]


def test_identical_code_with_noise_passes():
    base, head = alternations()
    result = compare(base, head)
    assert result.ok, result.to_markdown()
    row = next(r for r in result.rows if r.benchmark == SVI)
    assert row.gated and len(row.ratios) == 3
    assert 0.7 < row.ratio < 1.3


def test_catches_a_2x_slowdown_and_names_it():
    base, head = alternations({"scale": {SVI: 2.0}})
    result = compare(base, head)
    assert not result.ok
    assert names(result.findings) == [(SVI, "time")]
    text = result.to_markdown()
    assert "FAIL" in text and "test_svi_steps[coin-autonormal]" in text and "slower" in text


def test_one_noisy_alternation_does_not_fail():
    # A 1.9x outlier in one of three alternations (another job took the core) is noise: the
    # median over alternations stays within the threshold.
    base = [suite(), suite(), suite()]
    head = [suite({SVI: 1.9}), suite({SVI: 1.05}), suite({SVI: 0.97})]
    result = compare(base, head)
    assert result.ok, result.to_markdown()


def test_change_within_threshold_passes_beyond_fails():
    base = [suite() for _ in range(3)]
    within = [suite({NUTS: 1 + regress.TIME_THRESHOLD * 0.8}) for _ in range(3)]
    beyond = [suite({NUTS: 1 + regress.TIME_THRESHOLD * 1.25}) for _ in range(3)]
    assert compare(base, within).ok
    assert names(compare(base, beyond).findings) == [(NUTS, "time")]


def test_speedup_is_a_note_and_accuracy_time_is_never_gated():
    base = [suite() for _ in range(3)]
    head = [suite({NUTS: 0.4, ACC: 5.0}) for _ in range(3)]
    result = compare(base, head)
    assert result.ok
    assert (NUTS, "time") in names(result.findings, regress.INFO)
    assert not next(r for r in result.rows if r.benchmark == ACC).gated


def test_allow_slowdown_and_single_pair_report_only():
    base, head = [suite()], [suite({SVI: 3.0})]
    assert not compare(base, head).ok
    assert compare(base, head, allow_slowdown=True).ok
    relaxed = compare(base, head, gate_time=False)
    assert relaxed.ok and (SVI, "time") in names(relaxed.findings, regress.WARN)


def test_changed_gradient_evaluations_are_flagged_exactly():
    base, head = alternations({"grad_evals": 4609})
    result = compare(base, head)
    assert names(result.findings) == [(NUTS, "figure")]
    assert "grad_evals changed: 4608 -> 4609" in result.to_markdown()
    assert compare(base, head, allow_figure_changes=True).ok


def test_final_loss_tolerance():
    base = [suite()]
    assert compare(base, [suite(final_loss=14.87113 * (1 + 1e-7))]).ok
    result = compare(base, [suite(final_loss=14.87113 * (1 + 1e-4))])
    assert names(result.findings) == [(SVI, "figure")]


def test_a_method_programs_time_and_draws_are_gated():
    """The whole-program benchmarks of BlackJAX's and FlowJAX's methods are gated like the SVI
    steps: a 2x slower program fails on time, a moved draws mean fails as a figure."""
    name = "benchmarks/regress/perf/test_method_perf.py::test_method_program[correlated_gaussian-mams]"

    def runs(scale: float = 1.0, draws_mean: float = -0.2001993743, jitters=(0.05, -0.08, 0.12)):
        return [Run.from_json(run_json([bench(name, "method", [x * (1 + j) * scale for x in
                                                               (0.0097, 0.0099, 0.0104)],
                                              kind="method", grad_evals=1760.0, divergences=0,
                                              draws_mean=draws_mean)])) for j in jitters]

    base = runs()
    assert compare(base, runs(jitters=(-0.05, 0.08, -0.12))).ok
    assert names(compare(base, runs(scale=2.0)).findings) == [(name, "time")]
    moved = compare(base, runs(draws_mean=-0.2001993743 * (1 + 1e-4)))
    assert names(moved.findings) == [(name, "figure")]
    assert "draws_mean changed" in moved.to_markdown()


def test_a_changed_flop_count_fails_however_fast_the_program():
    """XLA's static cost of the timed program is compared exactly: one more operation in a step
    fails the gate even when the clock cannot see it; a figure only the head records (the change
    that introduced it) is reported, not gated."""
    name = "benchmarks/regress/perf/test_method_perf.py::test_method_program[correlated_gaussian-mams]"

    def runs(**figures):
        return [Run.from_json(run_json([bench(name, "method", [x * (1 + j) for x in
                                                               (0.0097, 0.0099, 0.0104)],
                                              kind="method", grad_evals=1760.0, **figures)]))
                for j in (0.05, -0.08, 0.12)]

    base = runs(xla_flops=29016.0, xla_bytes_accessed=78538.0)
    assert compare(base, runs(xla_flops=29016.0, xla_bytes_accessed=78538.0)).ok
    more = compare(base, runs(xla_flops=29017.0, xla_bytes_accessed=78538.0))
    assert names(more.findings) == [(name, "figure")]
    assert "xla_flops changed" in more.to_markdown()
    added = compare(runs(), runs(xla_flops=29016.0))
    assert added.ok and (name, "figure") in names(added.findings, regress.INFO)


def test_nondeterministic_figure_is_warned_not_gated():
    base = [suite(grad_evals=4608), suite(grad_evals=4700)]
    head = [suite(grad_evals=4608), suite(grad_evals=4608)]
    result = compare(base, head)
    assert result.ok
    assert (NUTS, "figure") in names(result.findings, regress.WARN)


def test_accuracy_drift_beyond_the_noise_floor_fails():
    drifted = {**ACCURACY, "w1_max": ACCURACY["w1_max"] + 4 * FLOORS["w1_max"]}
    base, head = alternations({"accuracy": drifted})
    result = compare(base, head)
    assert names(result.findings) == [(ACC, "accuracy")]
    assert "w1_max" in result.to_markdown()


def test_accuracy_change_within_the_noise_floor_passes():
    moved = {k: v + 1.5 * FLOORS[k] for k, v in ACCURACY.items()}
    base, head = alternations({"accuracy": moved})
    assert compare(base, head).ok


def test_accuracy_improvement_is_a_note():
    worse = {**ACCURACY, "w1_max": 0.30}
    result = compare([suite(accuracy=worse)], [suite()])
    assert result.ok and (ACC, "accuracy") in names(result.findings, regress.INFO)


def test_non_finite_accuracy_in_head_fails():
    broken = {**ACCURACY, "w1_max": None}
    assert names(compare([suite()], [suite(accuracy=broken)]).findings) == [(ACC, "accuracy")]


def test_errored_benchmark_in_head_is_named_with_its_reason():
    why = "call: AssertionError: 3 non-finite losses"
    base = [suite() for _ in range(2)]
    head = [suite(), suite(drop=(SVI,), outcomes={SVI: {"outcome": "failed", "reason": why}})]
    result = compare(base, head)
    assert names(result.findings) == [(SVI, "status")]
    message = result.failures[0].message
    assert "failed in head run 2 of 2" in message and "non-finite losses" in message


def test_failed_after_timing_still_fails():
    # pytest-benchmark keeps the timings of a test that failed after the timed call.
    why = "call: AssertionError: no finite agreement metric"
    head = [suite(outcomes={ACC: {"outcome": "failed", "reason": why}})]
    assert names(compare([suite()], head).findings) == [(ACC, "status")]


def test_missing_in_head_fails_and_says_why():
    head = [suite(drop=(NUTS,))]  # no timings and no outcome: not collected at all
    result = compare([suite()], head)
    assert names(result.findings) == [(NUTS, "status")]
    assert "not collected" in result.failures[0].message

    skipped = [suite(drop=(NUTS,), outcomes={NUTS: {"outcome": "skipped", "reason": "n/a"}})]
    result = compare([suite()], skipped)
    assert "measured on base but skipped in head: n/a" in result.failures[0].message


def test_benchmark_only_head_can_run_is_a_warning():
    base = [suite(drop=(SVI,), outcomes={SVI: {"outcome": "error", "reason": "ImportError"}})]
    result = compare(base, [suite()])
    assert result.ok and (SVI, "status") in names(result.findings, regress.WARN)


def test_not_applicable_on_both_sides_is_not_a_row():
    skip = {SVI: {"outcome": "skipped", "reason": "needs latent dim >= 2"}}
    result = compare([suite(drop=(SVI,), outcomes=skip)], [suite(drop=(SVI,), outcomes=skip)])
    assert result.ok
    assert SVI not in [r.benchmark for r in result.rows]
    assert result.settings["skipped_on_both_sides"] == [SVI]


def test_passes_are_merged_into_one_benchmark():
    def entry(k: int, times: list[float]) -> dict:
        return bench(SVI.replace("]", f"-pass{k}]"), "svi", times, kind="svi", grad_evals=2000)

    data = run_json([entry(1, [0.012, 0.013]), entry(2, [0.008, 0.011]), entry(3, [0.010])])
    data["svi_bench"]["outcomes"][SVI.replace("]", "-pass4]")] = {
        "outcome": "failed", "reason": "call: AssertionError: boom"}
    run = Run.from_json(data)
    assert list(run.benchmarks) == [SVI]
    stats = run.benchmarks[SVI]["stats"]
    assert stats["min"] == 0.008 and stats["pass_min"] == [0.012, 0.008, 0.010]
    assert stats["rounds"] == 5 and stats["max"] == 0.013
    assert run.status(SVI) == ("failed", "pass4: call: AssertionError: boom")


def test_confirmation_runs_only_count_what_they_ran():
    # The gate re-measures a suspected slowdown alone: those partial runs lack the other
    # benchmarks, which must not count as missing.
    limit = 1 + regress.TIME_THRESHOLD
    base = [suite() for _ in range(3)]
    head = [suite({NUTS: limit * f}) for f in (1.15, 1.05, 1.1)]  # a noise phase on head
    assert names(compare(base, head).findings) == [(NUTS, "time")]
    partial = dict(drop=(SVI, ACC))
    base += [suite(**partial), suite(**partial)]
    head += [suite({NUTS: 1.05}, **partial), suite({NUTS: 0.98}, **partial)]
    for run in (*base[3:], *head[3:]):
        run.partial = True
    result = compare(base, head)
    assert result.ok, result.to_markdown()
    row = next(r for r in result.rows if r.benchmark == NUTS)
    assert len(row.ratios) == 5 and row.pooled_ratio < 1.0  # the quiet windows were found
    assert len(next(r for r in result.rows if r.benchmark == SVI).ratios) == 3

    # a real slowdown stays slow when measured again
    head[3:] = [suite({NUTS: limit * 1.1}, **partial), suite({NUTS: limit * 1.08}, **partial)]
    for run in head[3:]:
        run.partial = True
    assert names(compare(base, head).findings) == [(NUTS, "time")]


def test_corrupt_or_foreign_json_raises_run_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RunError, match="unreadable"):
        Run.load(bad)
    other = tmp_path / "comparison.json"
    other.write_text(json.dumps({"ok": True}))
    with pytest.raises(RunError, match="not pytest-benchmark"):
        Run.load(other)
    with pytest.raises(RunError, match="no such file"):
        Run.load(tmp_path / "absent.json")


def _write(path: Path, run_kwargs: dict | None = None, scale=None) -> Path:
    benches = [
        bench(SVI, "svi", [0.008 * (scale or 1.0), 0.009 * (scale or 1.0)], kind="svi",
              grad_evals=2000, final_loss=1.0),
    ]
    path.write_text(json.dumps(run_json(benches, **(run_kwargs or {}))))
    return path


def test_cli_compare_exit_status_and_summary(tmp_path, capsys):
    base = [_write(tmp_path / f"base-{i}.json") for i in range(3)]
    same = [_write(tmp_path / f"same-{i}.json") for i in range(3)]
    slow = [_write(tmp_path / f"slow-{i}.json", scale=2.0) for i in range(3)]
    summary = tmp_path / "summary.md"
    args = ["compare", "--base", *map(str, base), "--summary", str(summary), "--head"]
    assert main([*args, *map(str, same)]) == 0
    assert main([*args, *map(str, slow)]) == 1
    out = capsys.readouterr().out
    assert "test_svi_steps[coin-autonormal]" in out and "slower: x2.00" in out
    assert summary.read_text().count("## Benchmark comparison") == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["compare", "--base", str(bad), "--head", str(same[0])]) == 2


def test_default_selection_covers_every_model_and_method():
    from svi_bench.benchmarks.methods.registry import methods_for
    from svi_bench.benchmarks.regress.perf import programs
    from svi_bench.models import REGISTRY

    selected = {*programs.DEFAULT_SVI, *programs.DEFAULT_NUTS, *programs.DEFAULT_METHODS}
    assert {c.model for c in selected} == set(REGISTRY)
    # every method of every model is timed: NumPyro's by their svi.update steps and NUTS draws,
    # the others (BlackJAX, FlowJAX) by their whole cell program
    assert {c.method for c in selected} == {m for s in REGISTRY.values() for m in methods_for(s)}
    assert all(programs.has_own_program(c.method) for c in programs.DEFAULT_METHODS)
    assert not any(programs.has_own_program(c.method)
                   for c in (*programs.DEFAULT_SVI, *programs.DEFAULT_NUTS))
    assert {c.model for c in programs.DEFAULT_ACCURACY} <= set(programs.EXACT_REFERENCE_MODELS)
    assert all(c.model in programs.SVI_STEPS for c in programs.svi_cases(full=True))
    assert all(c.model in programs.NUTS_DRAWS for c in programs.nuts_cases(full=True))
    assert len(programs.svi_cases(full=True)) > len(programs.DEFAULT_SVI)
    assert len(programs.method_cases(full=True)) > len(programs.DEFAULT_METHODS)


def test_accuracy_benchmark_asserts_the_verdicts_known_by_construction():
    """The perf suite's accuracy benchmark fails on a changed verdict where the answer is known
    (and so does the gate): every pinned case is one the suite can run, and the default
    selection holds a pinned pass and a pinned fail."""
    from svi_bench.benchmarks.regress.perf import programs
    from svi_bench.benchmarks.regress.perf import test_accuracy as accuracy

    full = {str(c) for c in programs.accuracy_cases(full=True)}
    assert set(accuracy.EXPECTED_VERDICT) <= full
    default = {str(c): accuracy.EXPECTED_VERDICT.get(str(c)) for c in programs.DEFAULT_ACCURACY}
    assert {"pass", "fail"} <= set(default.values())
    assert set(accuracy.EXPECTED_VERDICT.values()) <= set(accuracy.VERDICTS)


def test_one_case_of_every_perf_benchmark_runs(tmp_path):
    """The perf suite itself (run by the CI gate, not by this suite's default run) on one cheap
    case of each benchmark: an SVI program, NUTS draws, a method's whole program and two
    accuracy cells, one pass of one round, so a change that breaks a benchmark fails here."""
    import os
    import subprocess

    out = tmp_path / "perf.json"
    only = "coin-manual:beta or coin-nuts or correlated_gaussian-mams"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         regress.SUITE,
         "--perf-passes", "1", "--perf-rounds", "1", "-k", only, f"--benchmark-json={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
             "PYTHONHASHSEED": "0"})  # timed as the gate runs it: not as this run's xdist worker
    assert proc.returncode == 0 and out.is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    benches = json.loads(out.read_text())["benchmarks"]
    assert {b["group"] for b in benches} == {"svi", "nuts", "method", "accuracy"}
    # every program a timed benchmark got comes with its cache and the host's load meanwhile,
    # which the history page needs to plot fresh compile times (thresholds.COMPILES)
    programs = {"svi": ("", "init"), "nuts": ("", "warm-up"), "method": ("",)}
    for b in benches:
        for label, *keys in regress.COMPILES:
            if label in programs.get(b["group"], ()):
                assert set(keys) <= set(b["extra_info"]), (b["name"], label)
