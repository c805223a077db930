"""Regression gate for the perf suite (``benchmarks/regress/perf``): interleaved base-vs-head runs.

Command line (``python -m svi_bench.benchmarks.regress``):

* ``gate --base REF [--head REF] [--alternations 3] [--confirm 2]``: the interleaved gate (head:
  the working tree by default, uncommitted changes included; a ref is checked out in a temporary
  worktree, a directory is used as it is, so ``--base .`` measures this tree against itself).
  Writes every run's JSON, ``comparison.json`` and ``summary.md`` under ``--out`` (default
  ``.benchmarks/gate/<time>``; the summary also goes to ``$GITHUB_STEP_SUMMARY``); head runs are
  also autosaved by pytest-benchmark under ``.benchmarks/``. Exit status 1 on a regression.
* ``run``: one run of the suite in this tree (``--benchmark-json`` and ``--benchmark-autosave``
  under ``.benchmarks/``), compared with ``--baseline FILE`` (default: the previous autosaved run
  from this machine): deterministic figures and accuracy gated, time reported only (one pair of
  runs cannot separate a slowdown from noise).
* ``compare --base A.json ... --head B.json ...``: the comparator on saved runs (paired in order);
  exit status 2 when a file is not a usable run.
* ``history --runs DIR --out DIR``: ``benchmarks.regress.history.build_history`` (the
  runtime-history page).

Modules: ``thresholds`` (the gate's facts), ``runs`` (loading JSON, merging passes),
``comparator`` (findings), ``summary`` (Markdown), ``gate`` (interleaved runs in worktrees),
``history`` (the page) and ``perf/`` (the pytest-benchmark suite).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from svi_bench.benchmarks.regress.comparator import Comparison, compare
from svi_bench.benchmarks.regress.gate import REPO, gate, run_suite
from svi_bench.benchmarks.regress.runs import Run, RunError, latest_autosave
from svi_bench.benchmarks.regress.thresholds import (
    DEFAULT_ALTERNATIONS,
    DEFAULT_CONFIRM,
    TIME_THRESHOLD,
    TIMER,
)


def _emit(result: Comparison, summary: Path | None, title: str = "Benchmark gate") -> int:
    text = result.to_markdown(title)
    print(text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    for target in filter(None, [summary, Path(step_summary) if step_summary else None]):
        with open(target, "a") as fh:
            fh.write(text)
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svi_bench.benchmarks.regress",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--allow-figure-changes", action="store_true",
                       help="report changed deterministic figures and accuracy drift as "
                            "warnings (an intended change)")
        p.add_argument("--summary", type=Path, help="also append the Markdown summary here")

    g = sub.add_parser("gate", help="interleaved base-vs-head runs and comparison")
    g.add_argument("--base", required=True,
                   help="git ref of the base (e.g. origin/main), or a directory to use as is")
    g.add_argument("--head", default=None,
                   help="git ref or directory of the head (default: this working tree)")
    g.add_argument("--alternations", type=int, default=DEFAULT_ALTERNATIONS)
    g.add_argument("--confirm", type=int, default=DEFAULT_CONFIRM,
                   help="extra alternations of suspected slowdowns only (default "
                        f"{DEFAULT_CONFIRM}; 0: judge on the first alternations alone)")
    g.add_argument("--threshold", type=float, default=TIME_THRESHOLD,
                   help=f"allowed slowdown as a fraction (default {TIME_THRESHOLD})")
    g.add_argument("--out", type=Path, default=None)
    g.add_argument("--suite-from", default="head", metavar="head|each|DIR",
                   help="whose benchmarks/regress/perf to run: head's on both sides (default), each "
                        "side its own, or a directory copied into both checkouts")
    g.add_argument("--no-autosave", action="store_true")
    g.add_argument("--timer", default=TIMER, help=f"pytest-benchmark timer (default {TIMER})")
    g.add_argument("--allow-slowdown", action="store_true",
                   help="report slowdowns as warnings (an accepted cost)")
    common(g)
    g.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")

    r = sub.add_parser("run", help="one run here, compared with a stored baseline")
    r.add_argument("--baseline", type=Path, default=None,
                   help="pytest-benchmark JSON to compare with (default: previous autosave)")
    r.add_argument("--json", type=Path, default=REPO / ".benchmarks" / "latest.json")
    r.add_argument("--storage", type=Path, default=REPO / ".benchmarks",
                   help="pytest-benchmark autosave storage (default .benchmarks)")
    r.add_argument("--report-only", action="store_true",
                   help="exit 0 whatever the comparison says (recording history on main)")
    common(r)
    r.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")

    h = sub.add_parser("history", help="build history.html from stored runs")
    h.add_argument("--runs", type=Path, default=REPO / ".benchmarks")
    h.add_argument("--out", type=Path, required=True)

    c = sub.add_parser("compare", help="compare saved runs (paired in order)")
    c.add_argument("--base", type=Path, nargs="+", required=True)
    c.add_argument("--head", type=Path, nargs="+", required=True)
    c.add_argument("--threshold", type=float, default=TIME_THRESHOLD)
    c.add_argument("--no-time-gate", action="store_true")
    common(c)

    args = parser.parse_args(argv)
    if args.command == "gate":  # a cancelled CI job sends SIGTERM: remove the worktrees first
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        result = gate(args.base, args.head, args.alternations, args.out, args.threshold,
                      args.suite_from, args.pytest_args, not args.no_autosave,
                      args.allow_figure_changes, args.allow_slowdown, args.timer, args.confirm)
        return _emit(result, args.summary)
    if args.command == "run":
        previous = args.baseline or latest_autosave(args.storage)
        code, tail = run_suite(REPO, args.json, "run", args.pytest_args, args.storage)
        print(tail)
        try:
            head = Run.load(args.json)
        except RunError as exc:
            print(f"[regress] no results: {exc}", file=sys.stderr)
            return code or 1
        if previous is None:
            print("[regress] no baseline yet (first autosaved run); nothing to compare")
            return code
        print(f"[regress] baseline: {previous}")
        try:
            base = Run.load(previous)
        except RunError as exc:
            print(f"[regress] baseline unusable: {exc}", file=sys.stderr)
            return code or 1
        result = compare([base], [head], gate_time=False,
                         allow_figure_changes=args.allow_figure_changes)
        status = _emit(result, args.summary, "Benchmark run vs the previous run (time not gated)")
        return code if args.report_only else (code or status)
    if args.command == "history":
        from svi_bench.benchmarks.regress.history import build_history

        page = build_history(args.runs, args.out)
        print(page or f"[regress] no pytest-benchmark runs under {args.runs}")
        return 0 if page else 1
    try:
        base_runs = [Run.load(p) for p in args.base]
        head_runs = [Run.load(p) for p in args.head]
    except RunError as exc:
        print(f"[regress] {exc}", file=sys.stderr)
        return 2
    result = compare(base_runs, head_runs, threshold=args.threshold,
                     gate_time=not args.no_time_gate,
                     allow_figure_changes=args.allow_figure_changes)
    return _emit(result, args.summary, "Benchmark comparison")


if __name__ == "__main__":
    sys.exit(main())
