"""Where models come from: the built-in registry, a user's file, a module, an installed package.

``--model-file path.py`` (the file is imported under a unique name in ``sys.modules``, since
references hash the model's module source), ``--model package.module[:NAME]`` and the entry-point
group ``svi_bench.models`` each give a ``ModelSpec`` or a list of them. ``load_sources`` registers
them and returns where each came from; ``record``/``read_record`` keep that in ``DIR/models.json``
so the report can load the specs of whatever models a results folder holds.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from svi_bench import models
from svi_bench.benchmarks.artifacts import atomic_write, folder_lock
from svi_bench.benchmarks.user_code import (
    SourceError,
    UserKind,
    file_sha256,
    one_line,
)
from svi_bench.benchmarks.user_code import load_entry_points as load_user_entry_points
from svi_bench.models import ModelSpec

ENTRY_POINT_GROUP = "svi_bench.models"
RECORD = "models.json"
USER_PACKAGE = "svi_bench_user_models"


#: Models as user objects: ``MODELS.load_file`` (--model-file), ``.load_module`` (--model).
MODELS = UserKind(ModelSpec, ("SPECS", "SPEC"), USER_PACKAGE, "--model-file", "--model",
                  "SPEC = ModelSpec(...) (from svi_bench.models import ModelSpec)")


def _origin_of_file(path: Path) -> dict[str, Any]:
    return {"kind": "file", "path": str(Path(path).resolve()), "sha256": file_sha256(path)}


def _origin_of_module(spec: ModelSpec, kind: str, ref: str) -> dict[str, Any]:
    module = inspect.getmodule(spec.model)
    file = getattr(module, "__file__", None)
    origin = {"kind": kind, "module": ref, "path": str(file or "")}
    if file and Path(file).is_file():
        origin["sha256"] = file_sha256(Path(file))
    return origin


def origin_of(name: str) -> dict[str, Any]:
    """The origin of a model that is already registered (built-ins and ``models.register``)."""
    spec = models.REGISTRY[name]
    module = _module_of(spec)
    if module.startswith("svi_bench.models."):
        return {"kind": "builtin", "module": module}
    return _origin_of_module(spec, "module", module)


def _register(spec: ModelSpec, origin: dict[str, Any], origins: dict[str, dict]) -> None:
    name = spec.name
    taken = models.REGISTRY.get(name)
    if taken is not None and _module_of(taken) == _module_of(spec) != "":
        taken = None  # the same file or module loaded again: the new spec replaces the old
    if taken is not None and taken is not spec:
        before = origins.get(name) or origin_of(name)
        where = before.get("path") or before.get("module") or before["kind"]
        here = origin.get("path") or origin.get("module")
        raise SourceError(f"model name {name!r} from {here} is already taken by {where} "
                          f"({before['kind']}): rename one of them")
    models.register(spec, replace=True)
    origins[name] = origin


def _module_of(spec: ModelSpec) -> str:
    return str(getattr(inspect.getmodule(spec.model), "__name__", ""))


def load_entry_points(origins: dict[str, dict], warn: Callable[[str], None]) -> None:
    """Register the models installed packages declare in the ``svi_bench.models`` group; a
    failing entry point is one warning, never an error for the other models."""

    def load(obj: Any, where: str, value: str) -> None:
        for spec in MODELS.objects_of(obj, where):
            if models.REGISTRY.get(spec.name) is not spec:
                _register(spec, _origin_of_module(spec, "entry_point", value), origins)

    load_user_entry_points(ENTRY_POINT_GROUP, load, warn)


def load_sources(files: Iterable[str] = (), modules: Iterable[str] = (),
                 entry_points: bool = True,
                 warn: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
                 ) -> dict[str, dict[str, Any]]:
    """Register the models of ``files``, ``modules`` and (optionally) installed entry points;
    return {name: origin} of every model they gave. Raises SourceError on an asked-for source."""
    origins: dict[str, dict[str, Any]] = {}
    if entry_points:
        load_entry_points(origins, warn)
    for path in files:
        for spec in MODELS.load_file(path):
            _register(spec, _origin_of_file(Path(path)), origins)
    for ref in modules:
        for spec in MODELS.load_module(ref):
            _register(spec, _origin_of_module(spec, "module", ref), origins)
    return origins


def write_record(out_dir: Path, names: Iterable[str], origins: dict[str, dict]) -> Path:
    """Add the origin of each model in ``names`` to ``out_dir/models.json`` as it is now
    (atomically, under the folder's lock: runs sharing the folder keep each other's entries).
    Raises SourceError, writing nothing, when the folder holds another source's model of a name."""
    path = Path(out_dir) / RECORD
    entries = {name: origins.get(name) or origin_of(name) for name in names}
    with folder_lock(out_dir, RECORD):
        record = read_record(out_dir)[0]
        for name, origin in entries.items():
            _check_same_model(out_dir, name, record.get(name), origin)
        record.update(entries)
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def _where(origin: dict[str, Any]) -> str:
    return str(origin.get("path") or origin.get("module") or origin.get("kind", "?"))


def _check_same_model(out_dir: Path, name: str, recorded: dict[str, Any] | None,
                      origin: dict[str, Any]) -> None:
    """One name is one model in a folder: its rows, its report page and its description in the
    manifest. A model of the recorded file or module (edited or not: its runs have a new
    identity) or of the same content (a moved file) may join; another source's may not."""
    if recorded is None or _where(recorded) == _where(origin):
        return
    if recorded.get("sha256") and recorded.get("sha256") == origin.get("sha256"):
        return
    raise SourceError(f"model name {name!r} in {out_dir} is the model of {_where(recorded)}; "
                      f"this run's comes from {_where(origin)}: rename one of them or choose "
                      "another --out")


def read_record(out_dir: Path) -> tuple[dict[str, dict], str]:
    """(the folder's {name: origin}, "" or why it could not be read)."""
    path = Path(out_dir) / RECORD
    if not path.is_file():
        return {}, ""
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not all(isinstance(v, dict) for v in record.values()):
            raise ValueError("not a JSON object of objects")
    except Exception as exc:
        return {}, f"{path} is unreadable ({one_line(exc)}); model origins unknown"
    return record, ""


def restore(out_dir: Path) -> tuple[dict[str, ModelSpec], list[str]]:
    """The specs of the models recorded in ``out_dir/models.json`` (built-ins from the registry,
    files and modules re-imported when unchanged) and one note per model that could not be."""
    record, why = read_record(out_dir)
    notes = [why] if why else []
    specs: dict[str, ModelSpec] = {}
    for name, origin in record.items():
        if name in models.REGISTRY:  # a built-in, or a model this process registered
            specs[name] = models.REGISTRY[name]
            continue
        try:
            if origin.get("kind") == "file":
                path = Path(str(origin.get("path", "")))
                if not path.is_file():
                    raise SourceError(f"model file {path} is gone")
                if file_sha256(path) != origin.get("sha256"):
                    raise SourceError(f"model file {path} changed since the run (sha256 differs)")
                found = MODELS.load_file(path)
            elif origin.get("kind") in ("module", "entry_point"):
                found = MODELS.load_module(str(origin.get("module", "")))
            else:
                found = []
            match = [s for s in found if s.name == name]
            if not match:
                raise SourceError(f"{origin.get('path') or origin.get('module')} no longer "
                                  f"defines model {name!r}")
            specs[name] = match[0]
        except Exception as exc:
            msg = str(exc) if isinstance(exc, SourceError) else one_line(exc)
            notes.append(f"model {name}: {msg}; its page shows the results without the spec")
    return specs, notes
