"""The interleaved gate: base and head run in their own checkouts, ABBA, one process per run.

A stored baseline does not work on a shared machine: identical code measured twice here differed
by +27.8% (median), so ``--benchmark-compare-fail=median:25%`` fails on noise alone. Instead the
gate measures base and head in the same job, interleaved like ``asv continuous``: ABBA order
(base, head, head, base, base, head), each run a separate ``pytest benchmarks/regress/perf``
process writing its own JSON, and within a run every timed case runs in 5 passes spread over the
run (``programs.PASSES``). ``comparator.compare`` judges the runs; a suspected slowdown is
measured again, alone, in ``DEFAULT_CONFIRM`` more alternations before it fails the gate.

By default the benchmark *suite* is head's, copied into the base checkout (as ``asv`` does), so
both sides run the same benchmarks and only the code under test differs (``--suite-from each``
runs each side's own suite; ``--suite-from DIR`` copies DIR into both checkouts). Both sides run
in the caller's Python environment (one venv): a base whose dependencies differ is measured with
head's. A base from before the suite moved to ``benchmarks/regress/perf`` (or before the program
builders it imports existed) cannot run head's suite: every benchmark is then "not measured on
base", a warning, and nothing is compared.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from svi_bench.benchmarks.regress.comparator import Comparison, Finding, compare
from svi_bench.benchmarks.regress.runs import Run, RunError
from svi_bench.benchmarks.regress.thresholds import (
    DEFAULT_ALTERNATIONS,
    DEFAULT_CONFIRM,
    FAIL,
    SUITE,
    TIME_THRESHOLD,
    TIMER,
    WARN,
)

REPO = Path(__file__).resolve().parents[2]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def suite_env(role: str) -> dict[str, str]:
    # a gate started inside a pytest-xdist worker (the test suite) must not pass the worker's
    # variables on: pytest-benchmark reads PYTEST_XDIST_WORKER and disables every benchmark
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.update({"PYTHONHASHSEED": "0", "SVI_BENCH_ROLE": role})
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_suite(tree: Path, json_out: Path, role: str, pytest_args: Sequence[str] = (),
              autosave_to: Path | None = None, log=_log, timer: str = TIMER) -> tuple[int, str]:
    """One ``pytest benchmarks/regress/perf`` process in ``tree``, the code under test imported from it.

    Returns (exit status, last lines of its output). ``PYTHONPATH`` and the working directory
    both point at ``tree`` so an editable install of another checkout cannot shadow it (the JSON
    records the tree it measured; ``gate`` checks it).
    """
    json_out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", SUITE, "-q", "-p", "no:cacheprovider",
           "--benchmark-json", str(json_out), "--benchmark-disable-gc",
           f"--benchmark-timer={timer}",
           "--benchmark-sort=fullname", "--benchmark-columns=min,median,max,rounds"]
    if autosave_to is not None:
        cmd += ["--benchmark-autosave", f"--benchmark-storage=file://{autosave_to.resolve()}"]
    cmd += list(pytest_args)
    env = suite_env(role)
    root = import_root(tree)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    log(f"[regress] {role}: {' '.join(cmd[1:4])} ... in {tree}")
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # symlinks only: the checkout is untouched
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return proc.returncode, tail


def import_root(tree: Path) -> Path:
    """A folder where ``svi_bench.models``, ``.benchmarks`` and ``.reports`` are ``tree``'s folders.

    The project installs its folders under the ``svi_bench`` namespace; an editable install of
    another checkout would otherwise win. Put first on ``PYTHONPATH``, this regular package is
    found before any installed namespace.
    """
    root = Path(tempfile.mkdtemp(prefix="svi-bench-import-"))
    package = root / "svi_bench"
    package.mkdir()
    (package / "__init__.py").write_text('"""svi_bench of a checkout measured by the gate."""\n')
    for name in ("models", "benchmarks", "reports"):
        if (tree / name).is_dir():
            (package / name).symlink_to(tree.resolve() / name, target_is_directory=True)
    return root


@dataclass
class Tree:
    path: Path
    label: str
    commit: str
    temporary: bool


def _checkout(ref: str, label: str, parent: Path) -> Tree:
    """A git ref as a temporary detached worktree, or an existing directory used as it is."""
    if Path(ref).is_dir():
        path = Path(ref).resolve()
        try:
            commit = _git("rev-parse", "HEAD", cwd=path)
            if _git("status", "--porcelain", "--untracked-files=no", cwd=path):
                commit += "+dirty"
        except (subprocess.CalledProcessError, OSError):
            commit = f"dir:{path}"
        return Tree(path, label, commit, False)
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = parent / label
    _git("worktree", "add", "--detach", "--force", str(path), commit)
    return Tree(path, label, commit, True)


def _copy_suite(suite: Path, dest: Path) -> None:
    """Put the benchmark suite directory ``suite`` at ``dest/benchmarks/regress/perf``."""
    target = dest / SUITE
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(suite, target, ignore=shutil.ignore_patterns("__pycache__"))


def gate(
    base_ref: str,
    head_ref: str | None = None,
    alternations: int = DEFAULT_ALTERNATIONS,
    out: Path | None = None,
    threshold: float = TIME_THRESHOLD,
    suite_from: str = "head",
    pytest_args: Sequence[str] = (),
    autosave: bool = True,
    allow_figure_changes: bool = False,
    allow_slowdown: bool = False,
    timer: str = TIMER,
    confirm: int = DEFAULT_CONFIRM,
    log=_log,
    suite_runner=run_suite,
) -> Comparison:
    """Run base and head interleaved (ABBA), ``alternations`` times each, and compare; a
    benchmark that looks slower is measured in ``confirm`` more alternations, of it alone, and
    judged on all of them. ``suite_runner`` runs one side once (``run_suite``'s signature; the
    tests pass their own)."""
    if alternations < 1:
        raise ValueError(f"alternations must be >= 1, got {alternations}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(out or REPO / ".benchmarks" / "gate" / stamp)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="svi-bench-gate-"))
    trees: list[Tree] = []
    try:
        base = _checkout(base_ref, "base", scratch)
        head = _checkout(str(REPO) if head_ref is None else head_ref, "head", scratch)
        trees += [t for t in (base, head) if t.temporary]
        if suite_from == "each":
            for tree in (base, head):
                if not (tree.path / SUITE).is_dir():
                    raise SystemExit(f"{tree.label} ({tree.commit[:12]}) has no {SUITE}; "
                                     "use --suite-from head")
        else:  # one suite for both sides: head's, or a given directory
            src = head.path / SUITE if suite_from == "head" else Path(suite_from).resolve()
            if not src.is_dir():
                raise SystemExit(f"no benchmark suite at {src}: nothing to run")
            for tree in (base, head):
                if tree.temporary and tree.path / SUITE != src:
                    _copy_suite(src, tree.path)
        log(f"[regress] base {base.commit[:12]} ({base_ref}) vs head {head.commit[:12]} "
            f"({head_ref or 'working tree'}); {alternations} alternations, suite from "
            f"{suite_from}; output {out}")
        runs: dict[str, list[Run]] = {"base": [], "head": []}
        problems: list[Finding] = []

        def alternation(i: int, extra: Sequence[str] = ()) -> None:
            order = (base, head) if i % 2 == 0 else (head, base)  # ABBA
            for tree in order:
                role = tree.label
                path = out / f"{role}-{i + 1}.json"
                save = REPO / ".benchmarks" if autosave and role == "head" and not extra else None
                code, tail = suite_runner(tree.path, path, role, [*pytest_args, *extra], save,
                                          log, timer)
                try:
                    run = Run.load(path)
                except RunError as exc:
                    problems.append(Finding("(whole run)", "status",
                                            FAIL if role == "head" else WARN,
                                            f"{role} run {i + 1} produced no results (exit "
                                            f"{code}): {exc}\n{tail}"))
                    run = Run(f"{role}-{i + 1}", {}, partial=bool(extra))
                else:
                    run.label = f"{role}-{i + 1}"
                    if run.source_root and Path(run.source_root).resolve() != tree.path.resolve():
                        raise SystemExit(f"{role} run {i + 1} imported the suite from "
                                         f"{run.source_root}, not {tree.path}: refusing to "
                                         "compare (is another checkout installed?)")
                runs[role].append(run)
                log(f"[regress] {role} run {i + 1}: exit {code}, "
                    f"{len(run.benchmarks)} benchmarks")

        def judge() -> Comparison:
            return compare(runs["base"], runs["head"], threshold=threshold,
                           allow_figure_changes=allow_figure_changes,
                           allow_slowdown=allow_slowdown)

        for i in range(alternations):
            alternation(i)
        result = judge()
        # A suspected slowdown is measured again before it fails the gate: noise on a shared
        # machine comes in phases, a real slowdown persists.
        suspects = sorted({f.benchmark for f in result.findings
                           if f.kind == "time" and f.message.startswith("slower")})
        if suspects and confirm > 0:
            log(f"[regress] {len(suspects)} suspected slowdown(s); {confirm} confirmation "
                f"alternation(s) of: {', '.join(x.split('::')[-1] for x in suspects)}")
            for i in range(alternations, alternations + confirm):
                alternation(i, ["--perf-only", ",".join(suspects)])
            result = judge()
            result.settings["confirmed"] = suspects
        result.findings[:0] = problems
        result.settings.update(base_ref=base_ref, head_ref=head_ref or "working tree",
                               base_commit=base.commit, head_commit=head.commit,
                               suite_from=suite_from, out=str(out))
        (out / "comparison.json").write_text(json.dumps(result.to_dict(), indent=2))
        (out / "summary.md").write_text(result.to_markdown())
        return result
    finally:
        for tree in trees:  # only the worktrees made here; never a directory we were given
            subprocess.run(["git", "worktree", "remove", "--force", str(tree.path)], cwd=REPO,
                           capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)
