"""Options, parametrisation and JSON bookkeeping of the perf suite.

* ``--perf-full`` (or ``SVI_PERF_FULL=1``): every model x method instead of the default selection.
* ``--perf-rounds N``: timed rounds per benchmark and pass (default ``programs.ROUNDS``).
* ``--perf-passes N``: every timed case runs N times, pass-major (default ``programs.PASSES``);
  its benchmarks are named ``...[case-pass<k>]`` (``thresholds.pass_id``) and
  ``benchmarks.regress.runs`` merges them (``thresholds.series_name``).
* XLA runs single-threaded unless ``XLA_FLAGS`` is set, so a round's CPU time is one core's work:
  on a small machine shared with other jobs a multi-threaded Eigen pool waits at its barriers
  whenever another process holds a core, and the gate times CPU, not wall, time.
* ``PYTHONHASHSEED`` must be 0: NumPyro's ELBO iterates over a set, and the deterministic figures
  (final loss) are compared exactly between runs.
* The JSON written by ``--benchmark-json`` / ``--benchmark-autosave`` gets an ``svi_bench`` section:
  the outcome of every collected test (pytest-benchmark drops benchmarks that errored, and keeps
  those whose test failed after timing), the source tree that was measured and the selection.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

PERF_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ.setdefault("XLA_FLAGS", PERF_XLA_FLAGS)  # before JAX creates its CPU backend

from svi_bench.benchmarks.inference import jax_setup  # noqa: E402
from svi_bench.benchmarks.regress.perf import programs  # noqa: E402
from svi_bench.benchmarks.regress.thresholds import pass_id, series_name  # noqa: E402

_OUTCOMES: dict[str, dict[str, str]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("svi-bench perf suite")
    group.addoption("--perf-full", action="store_true", default=False,
                    help="benchmark every model x method (default: a small selection; "
                         "env SVI_PERF_FULL=1 does the same)")
    group.addoption("--perf-rounds", type=int, default=None,
                    help=f"timed rounds per benchmark and pass (default {programs.ROUNDS})")
    group.addoption("--perf-passes", type=int, default=None,
                    help=f"passes over the timed cases (default {programs.PASSES})")
    group.addoption("--perf-only", default="",
                    help="comma-separated benchmark node ids without the pass "
                         "(path::test[case]): run only those, and mark the JSON as partial "
                         "(the gate's confirmation runs)")


def _full(config: pytest.Config) -> bool:
    return bool(config.getoption("perf_full")) or os.environ.get("SVI_PERF_FULL") == "1"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTHONHASHSEED") != jax_setup.HASH_SEED:
        raise pytest.UsageError(
            "the perf suite needs PYTHONHASHSEED=0 (NumPyro's ELBO iterates over a set, so the "
            "final losses it compares exactly depend on it); rerun as "
            "PYTHONHASHSEED=0 pytest benchmarks/regress/perf"
        )
    jax_setup.configure_jax()


def _passes(config: pytest.Config) -> int:
    value = config.getoption("perf_passes") or programs.PASSES
    if value < 1:
        raise pytest.UsageError(f"--perf-passes must be >= 1, got {value}")
    return int(value)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    full = _full(metafunc.config)
    for fixture, cases in (("svi_case", programs.svi_cases(full)),
                           ("nuts_case", programs.nuts_cases(full)),
                           ("method_case", programs.method_cases(full)),
                           ("accuracy_case", programs.accuracy_cases(full))):
        if fixture in metafunc.fixturenames:
            # plain strings, so pytest-benchmark can store them in the JSON's params
            metafunc.parametrize(fixture, [str(c) for c in cases], ids=[c.id for c in cases])
    if "perf_pass" in metafunc.fixturenames:  # last: ids end in "-pass<k>"
        n = _passes(metafunc.config)
        metafunc.parametrize("perf_pass", range(1, n + 1), ids=[pass_id(k) for k in range(1, n + 1)])


def _only(config: pytest.Config) -> set[str]:
    return {x.strip() for x in str(config.getoption("perf_only") or "").split(",") if x.strip()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--perf-only`` selection, then pass-major order: every case's pass 1, then every case's
    pass 2, ... (stable otherwise)."""
    only = _only(config)
    if only:
        keep = [i for i in items if series_name(i.nodeid) in only]
        dropped = [i for i in items if series_name(i.nodeid) not in only]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    def key(item: pytest.Item) -> int:
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("perf_pass", 0) if callspec is not None else 0

    items.sort(key=key)


@pytest.fixture
def rounds(request: pytest.FixtureRequest) -> int:
    value = request.config.getoption("perf_rounds") or programs.ROUNDS
    if value < 1:
        raise pytest.UsageError(f"--perf-rounds must be >= 1, got {value}")
    return int(value)


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip().splitlines()[0][:300] if crash.message else ""
    return str(report.longrepr or "").strip().splitlines()[-1][:300] if report.longrepr else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _OUTCOMES.setdefault(report.nodeid, {"outcome": "passed", "reason": ""})
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["reason"] = f"{report.when}: {_reason(report)}"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["reason"] = _reason(report)


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    import jax
    import numpyro

    output_json["svi_bench"] = {
        "schema": 1,
        "source_root": str(Path(programs.__file__).resolve().parents[3]),  # the repository
        "full": _full(config),
        "role": os.environ.get("SVI_BENCH_ROLE", ""),
        "partial": bool(_only(config)),
        "passes": _passes(config),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED", ""),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "outcomes": dict(sorted(_OUTCOMES.items())),
    }
