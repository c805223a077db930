"""What identifies a model's code: the hash of its source, which references, runs and the latent
record of ``svi-bench list`` key their stored results by.

Kept apart from ``benchmarks.scoring.references`` (which re-exports ``source_hash``) so a cheap
command can compute it without importing ArviZ.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from svi_bench.models import ModelSpec


def function_source_hash(fn: Callable) -> str:
    """Hash of the source of the module defining ``fn`` (a function defined in a notebook, whose
    module has no file: of its own source, or failing that its bytecode)."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    try:
        text = inspect.getsource(module).encode()
    except (OSError, TypeError):  # no module (exec), or one without a file (a notebook)
        try:
            text = inspect.getsource(fn).encode()
        except (OSError, TypeError):
            code = fn.__code__
            text = code.co_code + repr(code.co_consts).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def source_hash(spec: ModelSpec) -> str:
    """Hash of the model module's source (a model defined in a notebook, whose module has no
    file: of the model function's source, or failing that its bytecode)."""
    return function_source_hash(spec.model)
