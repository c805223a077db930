"""The method-facing parts of the sub-commands: loading ``--method-file``/``--method`` (and
installed entry points), ``check`` of methods, and the method table of ``list``."""

from __future__ import annotations

import argparse
from typing import Any

from svi_bench.benchmarks.command_line import UsageError


def load_sources(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Register the methods of --method-file/--method and installed entry points: {name: origin}
    of every method a source gave."""
    from svi_bench.benchmarks.methods import sources
    from svi_bench.benchmarks.user_code import SourceError

    try:
        return sources.load_sources(getattr(args, "method_file", []),
                                    getattr(args, "method_refs", []))
    except SourceError as exc:
        raise UsageError(str(exc)) from None


def asked(origin: dict[str, Any]) -> bool:
    return origin.get("kind") in ("file", "module")


def cmd_check(names: list[str]) -> tuple[int, int]:
    """Run the method contract on each method in ``names``; print one line a check.
    Returns (failed checks, skipped checks)."""
    from svi_bench.benchmarks.inference import jax_setup
    from svi_bench.benchmarks.methods import registry
    from svi_bench.benchmarks.methods.contract import check_method

    jax_setup.configure_jax()
    failures = skipped = 0
    for name in dict.fromkeys(names):
        print(f"method {name}:")
        for check in check_method(registry.resolve(name)):
            failures += not check.ok and not check.skipped
            skipped += check.skipped
            print(f"  {check}")
    return failures, skipped


def method_table() -> list[str]:
    """``list``'s methods: name, family and the first sentence of the description."""
    from svi_bench.benchmarks.methods import registry

    lines = []
    for name in sorted(registry.REGISTRY, key=lambda n: (registry.REGISTRY[n].order, n)):
        method = registry.REGISTRY[name]
        lines.append(f"  {name:22} {method.family:5} {method.description.split('. ')[0]}"[:160])
        if name == registry.baseline():
            for prefix in registry.prefixes():
                lines.append(f"  {prefix + '<guide>':22} vi    each model's hand-written guides "
                             "(ModelSpec.guides)")
    return lines
