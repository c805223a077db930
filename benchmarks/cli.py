"""svi-bench: can SVI replace NUTS for this model? ``list | run | reference | check | report``.

``--model-file path.py`` and ``--model package.module[:NAME]`` (repeatable) add a user's models to
``list``, ``run``, ``reference`` and ``check`` (see ``benchmarks.grid.model_sources``).

Bad input (unknown model, method or profile, impossible settings, a corrupt results file) exits 2
with one line naming what is wrong and what is valid; results already on disk are never lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from svi_bench.benchmarks import study_commands

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input; the message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _pairs(items: list[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} is not KEY=VALUE")
        out[key.strip()] = _value(value.strip())
    return out


def _add_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-file", action="append", default=[], metavar="PATH",
                        help="a Python file defining SPEC = ModelSpec(...) or SPECS (repeatable)")
    parser.add_argument("--model", dest="model_refs", action="append", default=[],
                        metavar="MODULE[:NAME]",
                        help="an importable module (or module:NAME) giving ModelSpecs (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="svi-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_sources(sub.add_parser("list", help="every model and method of the grid"))
    check = sub.add_parser("check", help="run the model contract on user models, one line a check")
    _add_sources(check)
    check.add_argument("--models", default="",
                       help="comma-separated registered names to check (default: the given files"
                            " and modules)")
    run = sub.add_parser("run", help="run a slice of the grid and write the results tables")
    _add_sources(run)
    run.add_argument("--profile", default="quick", help="smoke, quick or paper (default quick)")
    run.add_argument("--models", default="", help="comma-separated model names (default: all)")
    run.add_argument("--methods", default="", help="comma-separated methods (default: all)")
    run.add_argument("--seeds", default="1", help="number of seeds N (0..N-1) or a list like 0,4,7")
    run.add_argument("--out", default="results", help="output folder (default ./results)")
    run.add_argument("--resume", action="store_true",
                     help="skip runs already done with the same settings hash")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting for every run, e.g. num_steps=500 (repeatable)")
    run.add_argument("--size", action="append", default=[], metavar="MODEL.KEY=VALUE",
                     help="a model size parameter, e.g. hierarchical_linreg.n_groups=16")
    run.add_argument("--jobs", type=int, default=1,
                     help="Dask worker processes on this machine (default 1: serial, no Dask)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run on the Dask cluster at ADDRESS (e.g. tcp://host:8786) instead")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("report", add_help=False,
                   help="build the HTML report of a results folder (svi-bench report --help)")
    ref = sub.add_parser("reference", help="build (or check) a model's reference posterior")
    _add_sources(ref)  # --model NAME (a registered name, a comma list or all) or MODULE:NAME
    ref.add_argument("--out", default="results", help="output folder (default ./results)")
    ref.add_argument("--quality", default="full", help="full (gated) or smoke (cheap, fails gates)")
    ref.add_argument("--size", action="append", default=[], metavar="MODEL.KEY=VALUE")
    ref.add_argument("--rebuild", action="store_true", help="rebuild even if a valid one is stored")
    ref.add_argument("--ship", action="store_true",
                     help="also store it among the references shipped with the suite "
                          "(models/references/; commit them)")
    study_commands.add_study_parser(sub)
    return parser


MAX_SEED = 2**32 - 1  # jax.random.PRNGKey takes a uint32 seed
MAX_SEED_COUNT = 10_000


def _parse_seeds(text: str) -> list[int]:
    try:
        if "," in text:
            seeds = [int(s) for s in _csv(text)]
            if not seeds:
                raise UsageError(f"--seeds {text!r} lists no seed; valid: a count N or a comma "
                                 "list of integers like 0,4,7")
        else:
            n = int(text)
            if not 1 <= n <= MAX_SEED_COUNT:
                raise UsageError(f"--seeds must be at least 1 and at most {MAX_SEED_COUNT}, "
                                 f"got {n}")
            seeds = list(range(n))
    except ValueError:
        raise UsageError(f"--seeds takes a count N or a comma list of integers, got {text!r}") from None
    if any(not 0 <= s <= MAX_SEED for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds must be distinct integers from 0 to {MAX_SEED} (uint32), "
                         f"got {text!r}")
    return seeds


def _json_object(key: str, text: Any) -> dict[str, Any]:
    """A --set value that must be a JSON object (``guide_options``)."""
    try:
        value = json.loads(str(text))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UsageError(f"--set {key}={text!s} is not a JSON object; valid: e.g. "
                         f"--set {key}='{{\"K\": 8}}'")
    return value


def _check_overrides(overrides: dict[str, Any]) -> None:
    """Every --set value checked by the settings it belongs to, whichever methods run."""
    import dataclasses

    from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings

    valid = (SVISettings(num_steps=1, num_particles=1, learning_rate=0.1, num_draws=1),
             NUTSSettings(num_warmup=1, num_samples=1, num_chains=1))
    for key, value in overrides.items():
        for base in valid:
            if key in base.__dataclass_fields__:
                try:
                    dataclasses.replace(base, **{key: value}).validate()
                except ValueError as exc:
                    raise UsageError(f"--set {key}={value}: {exc}") from None


def _size_value(spec, key: str, param: str, value: Any) -> int | float:
    """``value`` typed and range-checked by the size declaration of ``spec``."""
    try:
        return spec.size_param(param).parse(param, value)
    except ValueError as exc:
        raise UsageError(f"--size {key}={value!s}: {exc}") from None


def _resolve(args: argparse.Namespace):
    from svi_bench.benchmarks.grid import profiles, runner
    from svi_bench.benchmarks.inference import methods
    from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
    from svi_bench.models import REGISTRY

    if args.profile not in profiles.PROFILES:
        raise UsageError(f"unknown profile {args.profile!r}; valid: {', '.join(profiles.PROFILES)}")
    from svi_bench.benchmarks import model_commands

    wanted, origins = model_commands.load_sources(args)
    names = (_csv(args.models) + wanted
             or [n for n, o in origins.items() if model_commands.asked(o)] or list(REGISTRY))
    for name in names:
        if name not in REGISTRY:
            raise UsageError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    specs = [REGISTRY[n] for n in names]
    model_commands.check_contract(specs, origins)
    args.origins = origins
    method_names = _csv(args.methods) or None
    for m in method_names or []:
        if not methods.is_known_method(m):
            raise UsageError(f"unknown method {m!r}; valid: {methods.describe_valid_methods()}")
        if m.startswith(methods.MANUAL_PREFIX) and not any(
            m[len(methods.MANUAL_PREFIX):] in s.guides for s in specs
        ):
            valid = sorted({methods.MANUAL_PREFIX + g for s in specs for g in s.guides})
            raise UsageError(f"no selected model has guide {m!r}; valid: {', '.join(valid) or 'none'}")
    sizes: dict[str, dict[str, Any]] = {}
    for key, value in _pairs(args.size, "--size").items():
        model, dot, param = key.partition(".")
        if model not in REGISTRY or not dot:
            raise UsageError(f"--size {key!r} must be MODEL.KEY with MODEL one of: {', '.join(REGISTRY)}")
        if param not in REGISTRY[model].size_defaults:
            valid = ", ".join(REGISTRY[model].size_defaults) or "none"
            raise UsageError(f"model {model!r} has no size parameter {param!r}; valid: {valid}")
        sizes.setdefault(model, {})[param] = _size_value(REGISTRY[model], key, param, value)
    overrides = _pairs(args.set, "--set")
    if "guide_options" in overrides:
        overrides["guide_options"] = _json_object("guide_options", overrides["guide_options"])
    known = {f for cls in (SVISettings, NUTSSettings)
             for f in cls.__dataclass_fields__}
    for key in overrides:
        if key not in known:
            raise UsageError(f"unknown setting {key!r}; valid: {', '.join(sorted(known))}")
    _check_overrides(overrides)
    try:
        cells = list(runner.plan(specs, method_names, _parse_seeds(args.seeds), args.profile,
                                 overrides, sizes))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"impossible setting: {exc}") from None
    return cells


def _cmd_run(args: argparse.Namespace) -> int:
    from svi_bench.benchmarks.inference import jax_setup

    if args.scheduler is not None and args.jobs != 1:
        raise UsageError("give --jobs (a local cluster) or --scheduler (an existing one), not both")
    cells = _resolve(args)
    if not 1 <= args.jobs <= (os.cpu_count() or 1) * 4:
        raise UsageError(f"--jobs must be between 1 and {(os.cpu_count() or 1) * 4}, got {args.jobs}")
    from svi_bench.benchmarks.grid import runner, store
    from svi_bench.benchmarks.grid.distributed import ClusterError

    try:
        results = store.ResultsStore(Path(args.out))
    except store.ResultsError as exc:
        raise UsageError(str(exc)) from None
    user = sorted({c.spec.name for c in cells} & set(args.origins))
    if (args.jobs > 1 or args.scheduler) and user:
        raise UsageError(f"--jobs/--scheduler run registered built-in models only (worker "
                         f"processes cannot import {', '.join(user)}): drop them")
    from svi_bench.benchmarks.grid import model_sources

    try:
        model_sources.write_record(results.out_dir, {c.spec.name for c in cells}, args.origins)
    except OSError as exc:
        raise UsageError(f"cannot write {Path(args.out) / model_sources.RECORD}: "
                         f"{exc.strerror or exc}") from None
    if args.profile == "smoke":
        # Smoke runs test plumbing, not speed: XLA's cheapest optimisation compiles ~2.5x faster.
        os.environ.setdefault("XLA_FLAGS", jax_setup.SMOKE_XLA_FLAGS)
    jax_setup.configure_jax()
    total = sum(len(c.seeds) for c in cells)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="run", disable=args.no_progress, dynamic_ncols=True)
    counts = {"ok": 0, "failed": 0, "not_applicable": 0}
    failures: list[str] = []

    def on_cell(cell, todo):
        bar.set_description(f"{cell.spec.name} x {cell.method} ({todo} seeds)")
        bar.update(len(cell.seeds) - todo)

    def on_done(cell, rows):
        for row in rows:
            counts[row["status"]] += 1
            if row["status"] == "failed":
                failures.append(f"failed: {row['model']} x {row['method']} seed {row['seed']}: "
                                f"{row['error']}")
        if args.jobs > 1 or args.scheduler:
            bar.set_description(f"done {cell.spec.name} x {cell.method}")
        bar.update(len(rows))

    start = time.perf_counter()
    try:
        runner.run_grid(cells, args.profile, results, resume=args.resume,
                        on_cell=on_cell, on_done=on_done, jobs=args.jobs, scheduler=args.scheduler)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: results so far are in {results.out_dir}/results.parquet", file=sys.stderr)
        return 130
    except ClusterError as exc:  # a cluster that cannot run the grid: one line, exit 2
        bar.close()
        raise UsageError(str(exc)) from None
    bar.close()
    print_run_summary(failures, results, counts, time.perf_counter() - start)
    return 0


def print_run_summary(failures: list[str], results, counts: dict[str, int], elapsed: float) -> None:
    """The end of a run (``run``, ``study``): failures, kept-back ok rows, the counts."""
    for line in failures:
        print(line)
    for row in results.kept_back:
        print(f"kept the earlier ok row of {row['model']} x {row['method']} seed {row['seed']}: "
              f"the re-run failed: {row['error']}")
    print(
        f"{counts['ok']} ok, {counts['failed']} failed, {counts['not_applicable']} not applicable "
        f"in {elapsed:.0f} s -> {results.out_dir / 'results.parquet'}"
    )


def _cmd_reference(args: argparse.Namespace) -> int:
    from svi_bench.benchmarks import model_commands
    from svi_bench.benchmarks.inference import jax_setup
    from svi_bench.benchmarks.inference.introspect import latent_info
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
    sizes = _pairs(args.size, "--size")
    for key in sizes:
        model, _, param = key.partition(".")
        if model not in names or param not in REGISTRY[model].size_defaults:
            valid = ", ".join(f"{n}.{k}" for n in names for k in REGISTRY[n].size_defaults)
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
    jax_setup.configure_jax()
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
                                    quality=args.quality, rebuild=args.rebuild, ship=args.ship)
        except Exception as exc:  # a user model that raises: one line, the other models go on
            failed += 1
            text = (str(exc).strip().splitlines() or [""])[0]
            print(f"{name}: reference FAILED: {type(exc).__name__}: {text}"[:400])
            continue
        path = reference_paths(SHIPPED_DIR if args.ship else Path(args.out), spec, data_key,
                               args.quality, spec.precision)[0]
        state = "ok" if ref.ok else f"FAILED: {ref.failure}"
        n = len(next(iter(ref.draws.values())))
        print(f"{spec.name}: {ref.kind} reference, {n} draws, {state} -> {path}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
