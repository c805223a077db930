"""``svi-bench study NAME --profile P --out DIR`` and ``svi-bench study --list``.

A study runs through the same runner and results store as ``run`` (progress bar, ``--resume``,
failures as rows, bad input one line and exit 2), then writes its derived table and answer to
``DIR/studies/``. Only argparse is imported at module level: ``svi-bench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from svi_bench.benchmarks import interrupts


def add_study_parser(subparsers) -> None:
    """Register the ``study`` sub-command on the ``svi-bench`` parser's sub-parsers."""
    from svi_bench.benchmarks.command_line import folder

    p = subparsers.add_parser("study", help="run one of the source documents' experiments "
                                            "(svi-bench study --list)")
    p.add_argument("name", nargs="?", default="", help="the study to run (see --list)")
    p.add_argument("--list", action="store_true", help="every study, its question and source")
    p.add_argument("--profile", default="quick", help="smoke, quick or paper (default quick)")
    p.add_argument("--out", type=folder, default="results",
                   help="output folder (default ./results)")
    p.add_argument("--resume", action="store_true",
                   help="skip runs already done with the same settings hash")
    p.add_argument("--seeds", default="",
                   help="replace the study's seeds: a count N (0..N-1) or a list like 0,4,7")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--derive-only", action="store_true",
                   help="run nothing: rebuild the derived table and answer from the rows already "
                        "in --out (planned runs not there count as missing)")


def list_studies() -> list[str]:
    """One line per study: name, source section, profiles, question; then the planned ones."""
    from svi_bench.benchmarks.studies import PLANNED, STUDIES

    lines = []
    for s in STUDIES.values():
        lines.append(f"{s.name:10s} {s.source}; profiles {', '.join(s.scopes)}\n"
                     f"{'':10s} {s.question}")
    for name, why in PLANNED.items():
        lines.append(f"{name:10s} not implemented yet: {why}")
    return lines


def _resolve(args: argparse.Namespace):
    """(study, planned cells) of the command line, or UsageError naming what is valid."""
    from svi_bench.benchmarks.command_line import UsageError, parse_seeds
    from svi_bench.benchmarks.grid.profiles import PROFILES
    from svi_bench.benchmarks.studies import PLANNED, STUDIES
    from svi_bench.benchmarks.studies.base import plan_study

    if not args.name:
        raise UsageError(f"study needs a NAME or --list; valid: {', '.join(STUDIES)}")
    if args.name not in STUDIES:
        extra = f" ({args.name} is planned, not implemented)" if args.name in PLANNED else ""
        raise UsageError(f"unknown study {args.name!r}{extra}; valid: {', '.join(STUDIES)}")
    study = STUDIES[args.name]
    if args.profile not in PROFILES or args.profile not in study.scopes:
        valid = [p for p in PROFILES if p in study.scopes]
        raise UsageError(f"unknown profile {args.profile!r}; valid: {', '.join(valid)}")
    seeds = parse_seeds(args.seeds) if args.seeds else None
    if study.execute is not None:  # a study that runs its own programs has no grid cells
        return study, []
    try:
        planned = plan_study(study, args.profile, seeds)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"impossible study setting: {exc}") from None
    return study, planned


def cmd_study(args: argparse.Namespace) -> int:
    """Run the study (or list them); prints its answer and where its table is."""
    if args.list:
        print("\n".join(list_studies()))
        return 0
    from svi_bench.benchmarks.command_line import UsageError, parse_seeds, print_run_summary

    study, planned = _resolve(args)
    from svi_bench.benchmarks.grid import manifest, model_sources, store
    from svi_bench.benchmarks.grid.profiles import smoke_compile
    from svi_bench.benchmarks.inference import jax_setup
    from svi_bench.benchmarks.studies.running import run_study
    from svi_bench.models import REGISTRY

    out = Path(args.out)
    try:
        store.load_results(out)
        store.check_writable(out)
        models = {p.cell.spec.name for p in planned} or set(study.scopes[args.profile].models)
        model_sources.write_record(out, models, {})
        manifest.write(out, [p.cell for p in planned], [REGISTRY[m] for m in sorted(models)], {})
    except store.ResultsError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    if args.derive_only:
        return _derive_only(study, args.profile, out, planned)
    if smoke_compile(args.profile):
        os.environ.setdefault("XLA_FLAGS", jax_setup.SMOKE_XLA_FLAGS)
    jax_setup.configure_jax()
    from tqdm import tqdm

    total = sum(len(p.cell.seeds) for p in planned)
    bar = tqdm(total=total, unit="run", disable=args.no_progress, dynamic_ncols=True)
    counts = {"ok": 0, "failed": 0, "not_applicable": 0}
    failures: list[str] = []

    def on_cell(cell, todo: int) -> None:
        interrupts.check()
        bar.set_description(f"{study.name}: {cell.spec.name} x {cell.method} ({todo} seeds)")
        bar.update(len(cell.seeds) - todo)

    def on_done(cell, rows) -> None:
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            if row["status"] == "failed":
                failures.append(f"failed: {row['model']} x {row['method']} seed {row['seed']} "
                                f"({row.get('variant', '')}): {row['error']}")
        bar.update(len(rows))

    def progress(text: str) -> None:  # a study running its own programs: stage, loss, ...
        bar.set_description(f"{study.name}: {text}", refresh=True)

    start = time.perf_counter()
    seeds = parse_seeds(args.seeds) if args.seeds else None
    interrupts.saving_to(out)
    try:
        _, answer, results = run_study(study, args.profile, out, seeds=seeds, resume=args.resume,
                                       on_cell=on_cell, on_done=on_done, planned=planned,
                                       progress=progress)
    finally:  # Ctrl-C: the CLI's main says how many rows are saved
        bar.close()
    interrupts.check()
    if study.execute is not None and study.select is None:  # own rows, not through on_done
        from svi_bench.benchmarks.studies.base import select_own_rows

        own = select_own_rows(study, args.profile, results.frame())
        for row in own.to_dict("records"):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            if row["status"] == "failed":
                failures.append(f"failed: {row['model']} x {row['method']} seed {row['seed']} "
                                f"({row.get('variant', '')}): {row['error']}")
    print_run_summary(failures, results, counts, time.perf_counter() - start)
    print(f"{study.name}: {study.question}\n{answer}\n-> {out / 'studies' / study.name}.parquet")
    return 0


def _derive_only(study, profile: str, out: Path, planned) -> int:
    """The table and answer from the stored rows alone (e.g. of an interrupted study)."""
    from svi_bench.benchmarks.grid import store
    from svi_bench.benchmarks.studies.base import select_own_rows, select_rows, write_outputs

    results = store.load_results(out)
    rows = (select_own_rows(study, profile, results) if study.execute is not None else
            select_rows(study, study.scopes[profile].variants, results, planned))
    missing = int((rows["status"] == "missing").sum()) if len(rows) else 0
    _, answer = write_outputs(study, profile, rows, out)
    print(f"{study.name}: {len(rows) - missing} stored runs, {missing} planned runs missing")
    print(f"{study.name}: {study.question}\n{answer}\n-> {out / 'studies' / study.name}.parquet")
    return 0
