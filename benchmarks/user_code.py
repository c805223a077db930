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
