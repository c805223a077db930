"""What identifies a model's code and data: the hash of its source (which references, runs and
the latent record of ``svi-bench list`` key their stored results by) and of its data.

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
    from svi_bench.models import Dataset, ModelSpec


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


def data_hash(ds: Dataset) -> str:
    """Hash of a data set's keyword arrays (names, bytes): runs and references key by it."""
    import numpy as np

    h = hashlib.sha256()
    for key in sorted(ds.model_kwargs):
        value = ds.model_kwargs[key]
        h.update(key.encode())
        h.update(np.ascontiguousarray(np.asarray(value)).tobytes() if not isinstance(value, int)
                 else str(value).encode())
    return h.hexdigest()[:16]
