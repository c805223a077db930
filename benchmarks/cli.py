"""svi-bench: can SVI replace NUTS for this model? ``list | run | reference | check | report``.

``--model-file path.py`` and ``--model package.module[:NAME]`` (repeatable) add a user's models to
``list``, ``run``, ``reference`` and ``check`` (see ``benchmarks.grid.model_sources``).

Bad input (unknown model, method or profile, impossible settings, a corrupt results file) exits 2
with one line naming what is wrong and what is valid; results already on disk are never lost.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from svi_bench.benchmarks import interrupts, study_commands
from svi_bench.benchmarks.command_line import (
    EXIT_BAD_INPUT,
    Parser,
    UsageError,
    folder,
    json_object,
    name_list,
    pairs,
    parse_seeds,
    print_run_summary,
)

#: The user-source options: (file option, module option, dest, what a file defines, what a module
#: gives). A user's models and a user's methods arrive the same way.
_SOURCES = {
    "models": ("--model-file", "--model", "model_refs", "SPEC = ModelSpec(...) or SPECS",
               "ModelSpecs"),
    "methods": ("--method-file", "--method", "method_refs", "METHOD = Method(...) or METHODS",
                "Methods"),
}


def _add_sources(parser: argparse.ArgumentParser, *kinds: str) -> None:
    for kind in kinds or ("models",):
        file_option, module_option, dest, defines, gives = _SOURCES[kind]
        parser.add_argument(file_option, action="append", default=[], metavar="PATH",
                            help=f"a Python file defining {defines} (repeatable)")
        parser.add_argument(module_option, dest=dest, action="append", default=[],
                            metavar="MODULE[:NAME]",
                            help=f"an importable module (or module:NAME) giving {gives} "
                                 "(repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="svi-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    listing = sub.add_parser("list", help="every model and method of the grid")
    _add_sources(listing, "models", "methods")
    check = sub.add_parser("check", help="run the model or method contract on user models and "
                                         "methods, one line a check")
    _add_sources(check, "models", "methods")
    check.add_argument("--models", type=name_list, default=[],
                       help="comma-separated registered names to check (default: the given files"
                            " and modules)")
    check.add_argument("--methods", type=name_list, default=[],
                       help="comma-separated registered methods to hold to the method contract "
                            "(default: the given method files and modules)")
    run = sub.add_parser("run", help="run a slice of the grid and write the results tables")
    _add_sources(run, "models", "methods")
    run.add_argument("--profile", default="quick", help="smoke, quick or paper (default quick)")
    run.add_argument("--models", type=name_list, default=[],
                     help="comma-separated model names (default: all)")
    run.add_argument("--methods", type=name_list, default=[], help="comma-separated methods (default: all)")
    run.add_argument("--skip-methods", type=name_list, default=[], metavar="METHODS",
                     help="comma-separated methods to leave out of the default (all)")
    run.add_argument("--seeds", default="1", help="number of seeds N (0..N-1) or a list like 0,4,7")
    run.add_argument("--out", type=folder, default="results", help="output folder (default ./results)")
    run.add_argument("--resume", action="store_true",
                     help="skip runs already done with the same settings hash")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting for every run, e.g. num_steps=500 (repeatable)")
    run.add_argument("--size", action="append", default=[], metavar="MODEL.KEY=VALUE",
                     help="a model size parameter, e.g. hierarchical_linreg.n_groups=16")
    run.add_argument("--jobs", type=int, default=None,
                     help="Dask worker processes on this machine: compiles overlap, timed runs "
                          "one at a time (default: one per core, or $SVI_BENCH_JOBS; 1: serial, "
                          "no Dask)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run on the Dask cluster at ADDRESS (e.g. tcp://host:8786) instead")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("report", add_help=False,
                   help="build the HTML report of a results folder (svi-bench report --help)")
    ref = sub.add_parser("reference", help="build (or check) a model's reference posterior")
    _add_sources(ref)  # --model NAME (a registered name, a comma list or all) or MODULE:NAME
    ref.add_argument("--out", type=folder, default="results", help="output folder (default ./results)")
    ref.add_argument("--quality", default="full", help="full (gated) or smoke (cheap, fails gates)")
    ref.add_argument("--size", action="append", default=[], metavar="MODEL.KEY=VALUE")
    ref.add_argument("--rebuild", action="store_true", help="rebuild even if a valid one is stored")
    ref.add_argument("--ship", action="store_true",
                     help="also store it among the references shipped with the suite "
                          "(models/references/; commit them)")
    ref.add_argument("--no-progress", action="store_true",
                     help="no progress line while a NUTS reference is built")
    study_commands.add_study_parser(sub)
    return parser


def _check_overrides(overrides: dict[str, Any]) -> None:
    """Every --set value checked by the settings of each registered method it belongs to,
    whichever methods run."""
    import dataclasses

    from svi_bench.benchmarks.methods import registry

    known = registry.setting_names()
    for key in overrides:
        if key not in known:
            raise UsageError(f"unknown setting {key!r}; valid: {', '.join(sorted(known))}")
    by_type = {registry.resolve(n).settings_type: registry.resolve(n) for n in registry.REGISTRY}
    for method in by_type.values():
        base = method.settings("smoke", "")
        fields = {f.name for f in dataclasses.fields(base)}
        for key, value in overrides.items():
            if key in fields:
                try:
                    dataclasses.replace(base, **{key: value}).validate()
                except (ValueError, TypeError) as exc:
                    raise UsageError(f"--set {key}={value}: {exc}") from None


def _size_value(spec, key: str, param: str, value: Any) -> int | float:
    """``value`` typed and range-checked by the size declaration of ``spec``."""
    try:
        return spec.size_param(param).parse(param, value)
    except ValueError as exc:
        raise UsageError(f"--size {key}={value!s}: {exc}") from None


def _resolve(args: argparse.Namespace):
    from svi_bench.benchmarks import method_commands
    from svi_bench.benchmarks.grid import profiles, run_spec
    from svi_bench.benchmarks.methods import registry
    from svi_bench.models import REGISTRY

    if args.profile not in profiles.PROFILES:
        raise UsageError(f"unknown profile {args.profile!r}; valid: {', '.join(profiles.PROFILES)}")
    from svi_bench.benchmarks import model_commands

    wanted, origins = model_commands.load_sources(args)
    names = list(dict.fromkeys(args.models + wanted)) or (
        [n for n, o in origins.items() if model_commands.asked(o)] or list(REGISTRY))
    for name in names:
        if name not in REGISTRY:
            raise UsageError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    specs = [REGISTRY[n] for n in names]
    model_commands.check_contract(specs, origins)
    args.origins = origins
    args.method_origins = method_commands.load_sources(args)
    method_names = args.methods or None
    offered = registry.all_names(specs)
    skip = args.skip_methods
    if skip and method_names:
        raise UsageError("give --methods (the methods to run) or --skip-methods (all but "
                         "those), not both")
    for m in [*(method_names or []), *skip]:
        if not registry.is_known(m):
            raise UsageError(f"unknown method {m!r}; valid: {registry.describe_valid()}")
        if m not in offered:  # a per-model name (manual:<guide>) no selected model has
            prefix = next((p for p in registry.prefixes() if m.startswith(p)), "")
            valid = [n for n in offered if n.startswith(prefix)]
            raise UsageError(f"no selected model offers method {m!r}; "
                             f"valid: {', '.join(valid) or 'none'}")
    sizes: dict[str, dict[str, Any]] = {}
    for key, value in pairs(args.size, "--size").items():
        model, dot, param = key.partition(".")
        if model not in REGISTRY or not dot:
            raise UsageError(f"--size {key!r} must be MODEL.KEY with MODEL one of: {', '.join(REGISTRY)}")
        if param not in REGISTRY[model].all_sizes:
            valid = ", ".join(REGISTRY[model].all_sizes) or "none"
            raise UsageError(f"model {model!r} has no size parameter {param!r}; valid: {valid}")
        sizes.setdefault(model, {})[param] = _size_value(REGISTRY[model], key, param, value)
    overrides = pairs(args.set, "--set")
    if "guide_options" in overrides:
        overrides["guide_options"] = json_object("guide_options", overrides["guide_options"])
    _check_overrides(overrides)
    try:
        cells = list(run_spec.plan(specs, method_names, parse_seeds(args.seeds), args.profile,
                                   overrides, sizes, skip))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"impossible setting: {exc}") from None
    return cells


def _cmd_run(args: argparse.Namespace) -> int:
    from svi_bench.benchmarks.inference import jax_setup

    if args.scheduler is not None and args.jobs not in (None, 1):
        raise UsageError("give --jobs (a local cluster) or --scheduler (an existing one), not both")
    if args.scheduler is not None:
        from svi_bench.benchmarks.grid import distributed

        try:  # before any work: a wrong address costs a line, not a run
            distributed.check_address(args.scheduler)
            distributed.probe_scheduler(args.scheduler, distributed.connect_timeout())
        except distributed.ClusterError as exc:
            raise UsageError(str(exc)) from None
    cells = _resolve(args)
    from svi_bench.benchmarks.grid import execution, profiles, store

    if args.jobs is not None and not 1 <= args.jobs <= execution.max_jobs():
        raise UsageError(f"--jobs must be between 1 and {execution.max_jobs()}, "
                         f"got {args.jobs}")
    from svi_bench.benchmarks.grid.distributed import ClusterError

    try:
        results = store.ResultsStore(Path(args.out))
    except store.ResultsError as exc:
        raise UsageError(str(exc)) from None
    interrupts.saving_to(results.out_dir)
    user = sorted({c.spec.name for c in cells} & set(args.origins))
    user += sorted({c.method for c in cells} & set(args.method_origins))
    if ((args.jobs or 1) > 1 or args.scheduler) and user:
        raise UsageError(f"--jobs/--scheduler run registered built-in models and methods only "
                         f"(worker processes cannot import {', '.join(user)}): drop them")
    if args.scheduler is not None:
        args.jobs = 1
    elif args.jobs is None:
        try:
            args.jobs, why = execution.default_jobs(cells, user)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if why:
            print(why)
    from svi_bench.benchmarks.grid import manifest
    from svi_bench.benchmarks.user_code import SourceError

    try:
        manifest.record_folder(results.out_dir, cells, args.origins, args.method_origins)
    except SourceError as exc:  # the folder's model of that name comes from another source
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write the records of {results.out_dir}: "
                         f"{exc.strerror or exc}") from None
    if profiles.smoke_compile(args.profile):
        os.environ.setdefault("XLA_FLAGS", jax_setup.SMOKE_XLA_FLAGS)
    jax_setup.configure_jax()
    total = sum(len(c.seeds) for c in cells)
    from tqdm import tqdm

    from svi_bench.benchmarks.grid_progress import GridProgress
    from svi_bench.benchmarks.inference import phases

    progress = GridProgress(cells=len(cells), seeds=total, workers=args.jobs)
    # tqdm's own time left assumes every run costs the same; GridProgress counts both phases
    bar = tqdm(total=total, unit="run", disable=args.no_progress, dynamic_ncols=True,
               bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                          "[{elapsed}{postfix}]", postfix=progress.postfix())
    counts = {"ok": 0, "failed": 0, "not_applicable": 0}
    failures: list[str] = []
    serial = args.jobs == 1 and args.scheduler is None
    current = [""]

    def on_cell(cell, todo):
        interrupts.check()
        current[0] = f"{cell.spec.name} x {cell.method} ({todo} seeds)"
        bar.set_description(current[0])
        if todo < len(cell.seeds):
            progress.skipped(len(cell.seeds), todo)
        bar.update(len(cell.seeds) - todo)

    def on_phase(phase):  # serial: this process's own phase within the current cell
        bar.set_description(f"{current[0]} {phase}")

    def on_done(cell, rows):
        for row in rows:
            counts[row["status"]] += 1
            if row["status"] == "failed":
                failures.append(f"failed: {row['model']} x {row['method']} seed {row['seed']}: "
                                f"{row['error']}")
        if rows:
            progress.workers = int(rows[0].get("jobs") or progress.workers)
        progress.cell_done(rows)
        if not serial:
            bar.set_description(f"done {cell.spec.name} x {cell.method}")
        bar.set_postfix_str(progress.postfix(), refresh=False)
        bar.update(len(rows))
        interrupts.check()  # a Ctrl-C whose exception was swallowed: stop after a saved cell

    start = time.perf_counter()
    interrupts.check()
    try:
        with phases.listening(on_phase if serial else lambda phase: None):
            execution.run_grid(cells, results, resume=args.resume, on_cell=on_cell,
                               on_done=on_done, jobs=args.jobs, scheduler=args.scheduler)
    except ClusterError as exc:  # a cluster that cannot run the grid: one line, exit 2
        raise UsageError(str(exc)) from None
    finally:  # Ctrl-C: main() says how many rows are saved
        bar.close()
    interrupts.check()
    elapsed = time.perf_counter() - start
    print(progress.summary(elapsed))
    print_run_summary(failures, results, counts, elapsed)
    return 0


def _cmd_reference(args: argparse.Namespace) -> int:
    from svi_bench.benchmarks import model_commands
    from svi_bench.benchmarks.inference import jax_setup
    from svi_bench.benchmarks.inference.introspect import latent_info
    from svi_bench.benchmarks.inference.reference_chains import host_device_flags
    from svi_bench.benchmarks.progress_line import ProgressLine
    from svi_bench.benchmarks.scoring.reference_builders import QUALITY_XLA_FLAGS
    from svi_bench.benchmarks.scoring.references import (
        QUALITIES,
        SHIPPED_DIR,
        get_reference,
        reference_paths,
    )
    from svi_bench.models import REGISTRY
    from svi_bench.models.contract.precision_checks import precision_scope

    wanted, origins = model_commands.load_sources(args)
    names = list(REGISTRY) if wanted == ["all"] else (
        wanted or [n for n, o in origins.items() if model_commands.asked(o)])
    if not names:
        raise UsageError("reference needs --model NAME (a registered model, a comma list or all)"
                         " or --model-file PATH")
    for name in names:
        if name not in REGISTRY:
            raise UsageError(f"unknown model {name!r}; valid: all, {', '.join(REGISTRY)}")
    if args.quality not in QUALITIES:
        raise UsageError(f"unknown quality {args.quality!r}; valid: {', '.join(QUALITIES)}")
    if args.ship and args.quality != "full":
        raise UsageError("--ship stores full-quality references only; drop --quality or --ship")
    sizes = pairs(args.size, "--size")
    for key in sizes:
        model, _, param = key.partition(".")
        if model not in names or param not in REGISTRY[model].all_sizes:
            valid = ", ".join(f"{n}.{k}" for n in names for k in REGISTRY[n].all_sizes)
            raise UsageError(f"--size {key!r} does not apply; valid: {valid or 'none'}")
        sizes[key] = _size_value(REGISTRY[model], key, param, sizes[key])
    if args.ship and any(n in origins for n in names):
        raise UsageError("--ship stores the built-in models' references only; drop --ship for "
                         f"{', '.join(n for n in names if n in origins)}")
    from svi_bench.benchmarks.grid import store

    try:
        store.check_writable(Path(args.out), "references")
    except store.ResultsError as exc:
        raise UsageError(str(exc)) from None
    if QUALITY_XLA_FLAGS[args.quality]:  # built as `run` at that profile builds it
        os.environ.setdefault("XLA_FLAGS", QUALITY_XLA_FLAGS[args.quality])
    elif not jax_setup.backend_started():  # nothing here is timed: the chains use every core
        os.environ["XLA_FLAGS"] = host_device_flags(os.environ.get("XLA_FLAGS", ""))
    jax_setup.configure_jax()
    line = ProgressLine()
    progress = (lambda text: None) if args.no_progress else line
    failed = 0
    for name in names:
        spec = REGISTRY[name]
        size = {k.partition(".")[2]: v for k, v in sizes.items() if k.partition(".")[0] == name}
        try:
            data_key = spec.data_key(**size)
            with precision_scope(spec.precision):
                ds = spec.data_for(data_key)
                info = latent_info(spec.model, ds.model_kwargs)
                ref = get_reference(spec, ds, data_key, info.sites, Path(args.out),
                                    quality=args.quality, rebuild=args.rebuild, ship=args.ship,
                                    log=line.message, progress=progress)
        except Exception as exc:  # a user model that raises: one line, the other models go on
            line.close()
            failed += 1
            text = (str(exc).strip().splitlines() or [""])[0]
            print(f"{name}: reference FAILED: {type(exc).__name__}: {text}"[:400])
            continue
        path = reference_paths(SHIPPED_DIR if args.ship else Path(args.out), spec, data_key,
                               args.quality, spec.precision)[0]
        line.close()
        state = "ok" if ref.ok else f"FAILED: {ref.failure}"
        n = len(next(iter(ref.draws.values())))
        print(f"{spec.name}: {ref.kind} reference, {n} draws, {state} -> {path}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """The sub-command's exit code: 2 for bad input, 130 for Ctrl-C (one line each)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with interrupts.handled():
        try:
            code = _main(argv)
            interrupts.check()  # a Ctrl-C whose exception was swallowed on the way
            return code
        except KeyboardInterrupt:
            return interrupts.stop()


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        from svi_bench.benchmarks import model_commands

        if args.command == "list":
            return model_commands.cmd_list(args)
        if args.command == "check":
            return model_commands.cmd_check(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "reference":
            return _cmd_reference(args)
        if args.command == "study":
            return study_commands.cmd_study(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
