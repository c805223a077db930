"""Where methods come from: the built-ins, a user's file, a module, an installed package.

``--method-file path.py`` (defining ``METHOD`` or ``METHODS``), ``--method package.module[:NAME]``
and the entry-point group ``svi_bench.methods`` each give a ``Method`` or a list of them, as
``--model-file``, ``--model`` and ``svi_bench.models`` give models. ``load_sources`` registers them
and returns where each came from, for the results manifest.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from svi_bench.benchmarks.methods import registry
from svi_bench.benchmarks.methods.base import Method
from svi_bench.benchmarks.user_code import (
    SourceError,
    file_sha256,
    import_file,
    import_ref,
    one_line,
)

ENTRY_POINT_GROUP = "svi_bench.methods"
USER_PACKAGE = "svi_bench_user_methods"


def methods_of(obj: Any, where: str) -> list[Method]:
    """The Methods an object names: a Method, a list/tuple of them, or a module's ``METHODS``,
    ``METHOD`` or (failing both) every top-level Method."""
    if isinstance(obj, Method):
        return [obj]
    if isinstance(obj, (list, tuple)):
        bad = [type(x).__name__ for x in obj if not isinstance(x, Method)]
        if bad or not obj:
            raise SourceError(f"{where}: expected Method objects, got {bad or 'an empty list'}")
        return list(obj)
    if type(obj).__name__ == "module":
        for attr in ("METHODS", "METHOD"):
            if hasattr(obj, attr):
                return methods_of(getattr(obj, attr), f"{where}:{attr}")
        found = [v for v in vars(obj).values() if isinstance(v, Method)]
        if found:
            return list(dict.fromkeys(found))
        raise SourceError(f"{where} defines no Method: add METHOD = Method(...) "
                          "(from svi_bench.benchmarks.methods import Method)")
    raise SourceError(f"{where} is a {type(obj).__name__}, not a Method or a list of them")


def load_file(path: str | Path) -> list[Method]:
    module = import_file(path, USER_PACKAGE, "--method-file", "defining METHOD = Method(...)")
    return methods_of(module, f"--method-file {path}")


def load_module(ref: str) -> list[Method]:
    module, attr = import_ref(ref, "--method")
    return methods_of(getattr(module, attr) if attr else module, f"--method {ref}")


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
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken installed distribution
        warn(f"warning: cannot list entry points {ENTRY_POINT_GROUP}: {one_line(exc)}")
        return
    for ep in eps:
        try:
            for method in methods_of(ep.load(), f"entry point {ep.name} ({ep.value})"):
                if registry.REGISTRY.get(method.name) is method:
                    continue
                _register(method, {**origin_of(method), "kind": "entry_point",
                                   "module": ep.value}, origins)
        except Exception as exc:
            msg = str(exc) if isinstance(exc, SourceError) else one_line(exc)
            warn(f"warning: entry point {ep.name} ({ep.value}) skipped: {msg}")


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
        for method in load_file(path):
            _register(method, {"kind": "file", "path": str(Path(path).resolve()),
                               "sha256": file_sha256(Path(path))}, origins)
    for ref in modules:
        for method in load_module(ref):
            _register(method, {**origin_of(method), "kind": "module", "module": ref}, origins)
    return origins
