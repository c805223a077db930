"""The model-facing sub-commands: ``list`` and ``check``, and loading ``--model-file``/``--model``.

Kept apart from ``benchmarks.cli`` (the grid's ``run`` and ``reference``) so each stays small.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from svi_bench.benchmarks.command_line import UsageError, csv


def split_model_refs(refs: list[str]) -> tuple[list[str], list[str]]:
    """``--model`` values: (registered names, module sources). ``MODULE:NAME`` and dotted names
    that are not registered models are modules; anything else names models (``reference``)."""
    from svi_bench.models import REGISTRY

    names, modules = [], []
    for ref in refs:
        if ":" in ref or ("." in ref and ref not in REGISTRY):
            modules.append(ref)
        else:
            names += csv(ref)
    return names, modules


def load_sources(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Register the models of --model-file/--model (and installed entry points): (names asked
    for by --model NAME, {name: origin} of every model a source gave)."""
    from svi_bench.benchmarks.grid import model_sources

    names, modules = split_model_refs(getattr(args, "model_refs", []))
    try:
        origins = model_sources.load_sources(args.model_file, modules)
    except model_sources.SourceError as exc:
        raise UsageError(str(exc)) from None
    return names, origins


def asked(origin: dict[str, Any]) -> bool:
    return origin.get("kind") in ("file", "module")


def check_contract(specs, origins: dict[str, dict[str, Any]]) -> None:
    """A user model that breaks the contract is bad input: its first failure and where to look.
    What the contract detected instead of a declaration is one line on stderr."""
    from svi_bench.models.contract import check_spec

    for spec in specs:
        if spec.name not in origins:
            continue
        checks = check_spec(spec)
        failed = [c for c in checks if not c.ok and not c.skipped]
        if failed:
            raise UsageError(f"model {spec.name!r} breaks the model contract ({failed[0]}); "
                             f"`svi-bench check` lists every check")
        for check in checks:
            if check.detected:
                print(f"note: model {spec.name!r}: {check.message}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from svi_bench.benchmarks import method_commands
    from svi_bench.benchmarks.methods import registry
    from svi_bench.models import REGISTRY
    from svi_bench.models.contract import check_spec

    names, origins = load_sources(args)
    names += args.models
    names += [n for n, o in origins.items() if asked(o)]
    method_origins = method_commands.load_sources(args)
    methods = list(dict.fromkeys(args.methods + [n for n, o in method_origins.items()
                                                  if method_commands.asked(o)]))
    if not names and not methods:
        raise UsageError("check needs --model-file PATH, --model MODULE[:NAME], --models NAMES, "
                         "--method-file PATH, --method MODULE[:NAME] or --methods NAMES")
    for name in names:
        if name not in REGISTRY:
            raise UsageError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    for name in methods:
        if not registry.is_known(name):
            raise UsageError(f"unknown method {name!r}; valid: {registry.describe_valid()}")
    failures, skipped = method_commands.cmd_check(methods) if methods else (0, 0)
    warnings = 0
    for name in dict.fromkeys(names):
        print(f"model {name}:")
        checks = check_spec(REGISTRY[name])
        for check in checks:
            failures += not check.ok and not check.skipped
            skipped += check.skipped
            print(f"  {check}")
        if all(c.ok for c in checks if c.name in ("data", "model_trace")):
            line = precision_line(REGISTRY[name])
            warnings += line.startswith("WARNING")
            print(f"  {line}")
    if failures or skipped:
        print(f"{failures} check(s) failed, {skipped} skipped (they need a failed one)")
    else:
        print("all checks passed" + (f"; {warnings} warning(s) above" if warnings else ""))
    return 1 if failures or skipped else 0


def precision_line(spec) -> str:
    """``check``'s line comparing float32 with float64: a warning (not a failure) with the
    figures when float32 differs materially, the fix named for a float32 model."""
    from svi_bench.models.contract.precision_checks import compare_precisions

    try:
        comparison = compare_precisions(spec)
    except Exception as exc:  # the model cannot be evaluated in one of the precisions
        first = (str(exc).strip().splitlines() or [""])[0]
        return (f"WARNING precision: could not compare float32 with float64: "
                f"{type(exc).__name__}: {first}")[:400]
    figures = comparison.describe()
    if not comparison.material:
        return f"{'ok':7} precision: {spec.precision} (float32 agrees with float64: {figures})"
    if spec.precision == "float64":
        return (f"{'ok':7} precision: float64, declared (float32 would differ materially: "
                f"{figures})")
    return (f"WARNING precision: float32 differs materially from float64 ({figures}); "
            "a float32 run would measure round-off: declare ModelSpec(precision=\"float64\") "
            "or run with --set precision=float64")


def cmd_list(args: argparse.Namespace) -> int:
    """Every model with its latent dimension: from the record in ``$SVI_BENCH_CACHE``, or worked
    out abstractly (``latent_record``), so listing compiles nothing."""
    from svi_bench.benchmarks import method_commands
    from svi_bench.benchmarks.inference.latent_record import LatentDims
    from svi_bench.benchmarks.methods import registry
    from svi_bench.models import REGISTRY

    load_sources(args)
    method_commands.load_sources(args)
    dims = LatentDims()
    print(f"{'model':22} {'dim':>4} {'reference':10} source")
    for spec in REGISTRY.values():
        try:
            dim = dims.dim(spec)
        except Exception as exc:  # a user model that raises: one line, the others still listed
            print(f"{spec.name:22} cannot be listed: {type(exc).__name__}: "
                  f"{(str(exc).strip().splitlines() or [''])[0]}"[:300])
            continue
        print(f"{spec.name:22} {dim:>4} {spec.reference_kind:10} {spec.source}")
        print(f"{'':22}      {spec.description}")
        print(f"{'':22}      methods: {', '.join(registry.methods_for(spec))}")
    print("\nmethods:")
    for line in method_commands.method_table():
        print(line)
    dims.save()
    return 0
