"""Measure the suite's own speed and keep the figures as data: one JSON record per measurement.

``python -m svi_bench.benchmarks.measure bench [nox -s bench args]`` times the README's main job
as a newcomer meets it: ``nox -s bench`` in a fresh clone of the committed ``HEAD`` with an empty
``$SVI_BENCH_CACHE``, recording the machine's load from other processes meanwhile and each model's
cost (the quick profile's cost table in the docs). ``grid [svi-bench run args]`` times a grid cold
(empty ``$SVI_BENCH_CACHE``) and then warm (the same cache); ``linreg`` times the paper
``linreg_outliers`` run against the document-style script; ``time NAME -- COMMAND...`` times any
command (the CI run: ``time ci -- bash .ci/run``). Each writes ``OUT/<name>-<commit>-<time>.json``
(machine, commit, command, figures; ``OUT`` defaults to ``docs/measurements``), which the docs
render as a table (``benchmarks.docs_pages.measurements_table``): no prose states a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("docs/measurements")
GRID_DEFAULTS = ("--profile", "quick", "--seeds", "3")
#: The paper experiment of ``linreg_outliers`` the document-style script also runs.
LINREG_RUN = ("--profile", "paper", "--models", "linreg_outliers", "--methods",
              "nuts,manual:independent,autodiagonalnormal,automvn", "--seeds", "1")
LINREG_SCRIPT = ("-m", "svi_bench.benchmarks.baselines.linreg_document_style")
ENV = {"PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}


class MeasureError(RuntimeError):
    """A measured command failed: the record would be meaningless, so none is written."""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"host": platform.node(), "platform": platform.platform(terse=True),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def commit(cwd: Path | None = None) -> str:
    """The checked-out commit (``+dirty`` when the tree has changes), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def timed(command: Sequence[str], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> float:
    """Wall seconds of ``command``; a failure raises ``MeasureError`` with its last output."""
    return _timed_run(command, env, cwd)[0]


def _timed_run(command: Sequence[str], env: dict[str, str] | None = None,
               cwd: Path | None = None) -> tuple[float, str]:
    """Wall seconds and output (stdout, then stderr) of ``command`` (run to completion, failure raising)."""
    start = time.perf_counter()
    done = subprocess.run(list(command), env={**os.environ, **ENV, **(env or {})},
                          capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise MeasureError(f"{' '.join(command)} exited {done.returncode}: {tail[0]}")
    return seconds, done.stdout + done.stderr


def write_record(name: str, command: Sequence[str], figures: dict[str, Any], out: Path) -> Path:
    """Store one measurement as ``out/<name>-<commit>-<time>.json``; returns its path."""
    now = datetime.now(UTC)
    record = {"name": name, "recorded_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "commit": commit(), "machine": machine(), "command": list(command),
              "figures": figures}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{record['commit'].replace('+', '-')}-{now:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _svi_bench() -> str:
    return str(Path(sys.executable).with_name("svi-bench"))


def _contended(results: Path) -> int:
    import pandas as pd

    df = pd.read_parquet(results / "results.parquet")
    return int((df.get("contended", pd.Series(dtype=object)) == True).sum())  # noqa: E712


def measure_grid(run_args: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """A grid cold (empty cache) then warm (the same cache), each into a fresh results folder."""
    args = list(run_args) or list(GRID_DEFAULTS)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="svi-bench-measure-") as tmp:
        env = {"SVI_BENCH_CACHE": str(Path(tmp) / "cache")}
        for state in ("cold", "warm"):
            out = Path(tmp) / state
            figures[f"{state}_s"] = round(timed([_svi_bench(), "run", *args, "--out", str(out)],
                                                env), 2)
            figures[f"{state}_contended_runs"] = _contended(out)
        import pandas as pd

        figures["rows"] = len(pd.read_parquet(Path(tmp) / "warm" / "results.parquet"))
    return ["svi-bench", "run", *args], figures


def model_costs(results: Path) -> dict[str, dict[str, Any]]:
    """Per model of a results folder: its runs, the seconds spent compiling (one program per
    cell) and in timed runs, and how many MCMC runs failed their own health checks."""
    import pandas as pd

    from svi_bench.benchmarks.scoring.evaluate import has_sampler_health, sampler_health

    df = pd.read_parquet(results / "results.parquet")
    out: dict[str, dict[str, Any]] = {}
    for model, rows in df.groupby("model", sort=True):
        compile_s = rows.groupby("method")["compile_s"].max().fillna(0.0).sum()
        ok = [r for r in rows[rows["status"] == "ok"].to_dict("records") if has_sampler_health(r)]
        unhealthy = sum((sampler_health(r) or ("",))[0] == "fail" for r in ok)
        out[str(model)] = {"runs": len(rows), "ok": int((rows["status"] == "ok").sum()),
                           "compile_s": round(float(compile_s), 1),
                           "run_s": round(float(rows["run_s"].fillna(0.0).sum()), 1),
                           "mcmc_runs": len(ok), "mcmc_unhealthy": int(unhealthy)}
    return out


def measure_bench(nox_args: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """``nox -s bench`` in a fresh clone of the committed HEAD with an empty cache."""
    from svi_bench.benchmarks.inference import host_load

    nox = shutil.which("nox")
    if nox is None:
        raise MeasureError("nox is not installed (pip install nox)")
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0:
        raise MeasureError("bench measures a git checkout: run it inside the repository")
    passed = list(nox_args)
    command = ["nox", "-s", "bench", *(["--"] if passed and passed[0] != "--" else []), *passed]
    with tempfile.TemporaryDirectory(prefix="svi-bench-measure-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", top.stdout.strip(), str(clone)], check=True)
        env = {"SVI_BENCH_CACHE": str(Path(tmp) / "cache")}
        load_before = os.getloadavg()
        before, children_before = host_load.sample(), _children_cpu_s()
        seconds, output = _timed_run([nox, *command[1:]], env, cwd=clone)
        after, children = host_load.sample(), _children_cpu_s() - children_before
        figures: dict[str, Any] = {"wall_s": round(seconds, 1)}
        if before is not None and after is not None:
            others = (after.host_busy_s - before.host_busy_s) - children
            figures["others_cpu_share"] = round(max(0.0, others) / (seconds * (os.cpu_count() or 1)), 3)
        figures["load_1min_before"] = round(load_before[0], 2)
        figures["run_summary"] = next((line.strip() for line in output.splitlines()
                                       if " s compiling (" in line), "")
        per_model = model_costs(clone / "results")
        figures["runs"] = sum(m["runs"] for m in per_model.values())
        figures["ok"] = sum(m["ok"] for m in per_model.values())
        figures["per_model"] = per_model
    return command, figures


def _children_cpu_s() -> float:
    times = os.times()
    return times.children_user + times.children_system


def measure_linreg() -> tuple[list[str], dict[str, Any]]:
    """The paper linreg run, cold and warm, against the document-style script."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="svi-bench-measure-") as tmp:
        env = {"SVI_BENCH_CACHE": str(Path(tmp) / "cache")}
        figures["script_s"] = round(timed([sys.executable, *LINREG_SCRIPT]), 2)
        for state in ("cold", "warm"):
            figures[f"suite_{state}_s"] = round(timed(
                [_svi_bench(), "run", *LINREG_RUN, "--out", str(Path(tmp) / state)], env), 2)
    figures["speedup_cold"] = round(figures["script_s"] / figures["suite_cold_s"], 2)
    figures["speedup_warm"] = round(figures["script_s"] / figures["suite_warm_s"], 2)
    return ["svi-bench", "run", *LINREG_RUN], figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svi_bench.benchmarks.measure",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of the records (default: docs/measurements)")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("bench", help="nox -s bench in a fresh clone with an empty cache; further "
                                 "arguments reach nox after --")
    sub.add_parser("grid", help="svi-bench run cold then warm; further arguments reach run")
    sub.add_parser("linreg", help="the paper linreg_outliers run against the document-style script")
    time_cmd = sub.add_parser("time", help="the wall time of any command: time NAME -- COMMAND...")
    time_cmd.add_argument("name")
    args, rest = parser.parse_known_args(argv)
    if args.what == "time":
        command = rest[1:] if rest[:1] == ["--"] else rest
        if not command:
            parser.error("time needs a command after --, e.g. time ci -- bash .ci/run")
        name, figures = args.name, {"wall_s": None}
    elif args.what == "linreg" and rest:
        parser.error(f"linreg takes no arguments, got {' '.join(rest)}")
    try:
        if args.what == "time":
            figures["wall_s"] = round(timed(command), 2)
        elif args.what == "grid":
            name = "grid"
            command, figures = measure_grid(rest)
        elif args.what == "bench":
            name = "bench"
            command, figures = measure_bench(rest)
        else:
            name = "linreg"
            command, figures = measure_linreg()
    except MeasureError as exc:
        print(f"error: {exc}; no record written", file=sys.stderr)
        return 1
    print(write_record(name, command, figures, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
