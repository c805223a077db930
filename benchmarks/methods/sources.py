"""Where methods come from: the built-ins, a user's file, a module, an installed package.

``--method-file path.py`` (defining ``METHOD`` or ``METHODS``), ``--method package.module[:NAME]``
and the entry-point group ``svi_bench.methods`` each give a ``Method`` or a list of them, as
``--model-file``, ``--model`` and ``svi_bench.models`` give models. ``load_sources`` registers them
and returns where each came from, for the results manifest.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from svi_bench.benchmarks.methods import registry
from svi_bench.benchmarks.methods.base import Method
from svi_bench.benchmarks.user_code import (
    SourceError,
    UserKind,
    file_sha256,
)
from svi_bench.benchmarks.user_code import load_entry_points as load_user_entry_points

ENTRY_POINT_GROUP = "svi_bench.methods"
#: Methods as user objects: ``METHODS.load_file`` (--method-file), ``.load_module`` (--method).
METHODS = UserKind(Method, ("METHODS", "METHOD"), "svi_bench_user_methods", "--method-file",
                   "--method", "METHOD = Method(...) (from svi_bench.benchmarks.methods import Method)")


def origin_of(method: Method) -> dict[str, Any]:
    """Where a registered method's code lives (built-in, or a user's module or file)."""
    module = inspect.getmodule(method.build)
    name = str(getattr(module, "__name__", ""))
    if name.startswith("svi_bench.benchmarks.methods."):
        return {"kind": "builtin", "module": name}
    file = getattr(module, "__file__", None)
    origin: dict[str, Any] = {"kind": "module", "module": name, "path": str(file or "")}
    if file and Path(file).is_file():
        origin["sha256"] = file_sha256(Path(file))
    return origin


def _register(method: Method, origin: dict[str, Any], origins: dict[str, dict]) -> None:
    taken = registry.REGISTRY.get(method.name)
    same_code = taken is not None and inspect.getmodule(taken.build) is not None and \
        getattr(inspect.getmodule(taken.build), "__file__", None) == origin.get("path")
    try:
        registry.register(method, replace=same_code)
    except registry.MethodError as exc:
        raise SourceError(f"{origin.get('path') or origin.get('module')}: {exc}") from None
    origins[method.name] = origin


def load_entry_points(origins: dict[str, dict], warn: Callable[[str], None]) -> None:
    """Register the methods installed packages declare in ``svi_bench.methods``; a failing entry
    point is one warning, never an error for the other methods."""

    def load(obj: Any, where: str, value: str) -> None:
        for method in METHODS.objects_of(obj, where):
            if registry.REGISTRY.get(method.name) is not method:
                _register(method, {**origin_of(method), "kind": "entry_point", "module": value},
                          origins)

    load_user_entry_points(ENTRY_POINT_GROUP, load, warn)


def load_sources(files: Iterable[str] = (), modules: Iterable[str] = (),
                 entry_points: bool = True,
                 warn: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
                 ) -> dict[str, dict[str, Any]]:
    """Register the methods of ``files``, ``modules`` and installed entry points; return
    {name: origin} of every method they gave. Raises SourceError on an asked-for source."""
    origins: dict[str, dict[str, Any]] = {}
    if entry_points:
        load_entry_points(origins, warn)
    for path in files:
        for method in METHODS.load_file(path):
            _register(method, {"kind": "file", "path": str(Path(path).resolve()),
                               "sha256": file_sha256(Path(path))}, origins)
    for ref in modules:
        for method in METHODS.load_module(ref):
            _register(method, {**origin_of(method), "kind": "module", "module": ref}, origins)
    return origins
