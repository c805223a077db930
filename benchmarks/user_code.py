"""Importing a user's Python file or module, for every kind of user object (models, methods).

A file is imported under a unique, stable module name in ``sys.modules`` (references and stored
executables hash the source through it); an import error is one ``SourceError`` line naming the
option and the file, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


class SourceError(Exception):
    """A user source cannot be used; the message is the one line the user sees."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def module_name_for(path: Path, package: str) -> str:
    """A unique, stable module name for a user file: its stem plus a hash of its full path."""
    path = Path(path).resolve()
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    return f"{package}.{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"


def import_file(path: str | Path, package: str, option: str, hint: str) -> ModuleType:
    """Import the file ``path`` (given with ``option``, e.g. ``--model-file``) as a module of
    ``package``; ``hint`` says what the file should define."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{option} {path}: no such file; give the path of a .py file {hint}")
    if path.suffix != ".py":
        raise SourceError(f"{option} {path}: not a .py file")
    name = module_name_for(path, package)
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise SourceError(f"{option} {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before executing: references hash the source via sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SourceError(f"{option} {path}: import failed: {one_line(exc)}") from None
    return module


def import_ref(ref: str, option: str) -> tuple[ModuleType, str]:
    """``package.module`` or ``package.module:NAME`` -> (the module, NAME or "")."""
    module_name, _, attr = ref.partition(":")
    if not module_name:
        raise SourceError(f"{option} {ref!r}: give package.module or package.module:NAME")
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SourceError(f"{option} {ref}: import failed: {one_line(exc)}") from None
    if attr and not hasattr(module, attr):
        raise SourceError(f"{option} {ref}: module {module_name} has no attribute {attr!r}")
    return module, attr


def objects_of(obj: object, cls: type, names: tuple[str, str], where: str,
               hint: str) -> list:
    """The ``cls`` objects ``obj`` names: one, a list/tuple of them, or a module's ``names``
    (plural then singular attribute, e.g. SPECS, SPEC) or, failing both, its every top-level
    ``cls``. ``hint`` is the fix for a module that defines none."""
    kind = cls.__name__
    if isinstance(obj, cls):
        return [obj]
    if isinstance(obj, (list, tuple)):
        bad = [type(x).__name__ for x in obj if not isinstance(x, cls)]
        if bad or not obj:
            raise SourceError(f"{where}: expected {kind} objects, got {bad or 'an empty list'}")
        return list(obj)
    if isinstance(obj, ModuleType):
        for attr in names:
            if hasattr(obj, attr):
                return objects_of(getattr(obj, attr), cls, names, f"{where}:{attr}", hint)
        found = [v for v in vars(obj).values() if isinstance(v, cls)]
        if found:
            return list(dict.fromkeys(found))
        raise SourceError(f"{where} defines no {kind}: {hint}")
    raise SourceError(f"{where} is a {type(obj).__name__}, not a {kind} or a list of them")


@dataclass(frozen=True)
class UserKind:
    """One kind of user object (models, methods): its class, the module attributes that name
    them (plural, singular), the package its files are imported under, the command-line options
    and what to write in a file that defines none."""

    cls: type
    names: tuple[str, str]
    package: str
    file_option: str
    module_option: str
    declare: str  # e.g. "SPEC = ModelSpec(...) (from svi_bench.models import ModelSpec)"

    def objects_of(self, obj: object, where: str) -> list:
        return objects_of(obj, self.cls, self.names, where, f"add {self.declare}")

    def load_file(self, path: str | Path) -> list:
        """Import a user's file under a unique module name and return its objects."""
        module = import_file(path, self.package, self.file_option,
                             f"defining {self.declare.split(' (')[0]}")
        return self.objects_of(module, f"{self.file_option} {path}")

    def load_module(self, ref: str) -> list:
        """``package.module`` or ``package.module:NAME`` -> its objects."""
        module, attr = import_ref(ref, self.module_option)
        return self.objects_of(getattr(module, attr) if attr else module,
                               f"{self.module_option} {ref}")


def load_entry_points(group: str, load: Callable[[object, str, str], None],
                      warn: Callable[[str], None]) -> None:
    """``load(object, where, value)`` for every entry point of ``group``; a failing one is one
    warning, never an error for the others."""
    import importlib.metadata

    try:
        eps = importlib.metadata.entry_points(group=group)
    except Exception as exc:  # a broken installed distribution
        warn(f"warning: cannot list entry points {group}: {one_line(exc)}")
        return
    for ep in eps:
        try:
            load(ep.load(), f"entry point {ep.name} ({ep.value})", ep.value)
        except Exception as exc:
            msg = str(exc) if isinstance(exc, SourceError) else one_line(exc)
            warn(f"warning: entry point {ep.name} ({ep.value}) skipped: {msg}")
