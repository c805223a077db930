"""Posterior draws as scalar components: the one place draws are flattened and components named.

Draws are ``{site: array(*draw_axes, *shape)}`` with ``leading`` draw axes (SVI and references: 1,
the draw; NUTS: 2, chain and draw). Sites are taken in sorted order and components row-major within
a site, named ``site``, ``site[3]`` or ``site[1,2]``, so an approximation and its reference line up
column by column in metrics, diagnostics and plots alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def component_names(site: str, shape: tuple[int, ...]) -> list[str]:
    """The names of a site's scalar components: ``site`` or ``site[i,j]`` row-major."""
    if not shape:
        return [site]
    return [f"{site}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def merge_draw_axes(draws: Mapping[str, np.ndarray], leading: int) -> dict[str, np.ndarray]:
    """``{site: (n, *shape)}``: the ``leading`` draw axes merged into one (NUTS: chains in a row)."""
    return {k: np.asarray(v).reshape(-1, *np.shape(v)[leading:]) for k, v in draws.items()}


def flatten_draws(draws: Mapping[str, np.ndarray], leading: int = 1) -> tuple[list[str], np.ndarray]:
    """Component names and one ``(n, d)`` float64 matrix; the ``leading`` draw axes are merged.

    Every site must have the same draw axes; a site without them raises ``ValueError``.
    """
    if not draws:
        raise ValueError("flatten_draws: no sites given")
    names: list[str] = []
    blocks: list[np.ndarray] = []
    lead: tuple[int, ...] | None = None
    for site in sorted(draws):
        arr = np.asarray(draws[site], dtype=np.float64)
        if arr.ndim < leading or (leading == 1 and arr.ndim == 0):
            raise ValueError(f"flatten_draws: site {site!r} has no draw axis")
        if lead is None:
            lead = arr.shape[:leading]
        elif arr.shape[:leading] != lead:
            raise ValueError(
                f"flatten_draws: site {site!r} has {arr.shape[0]} draws, expected {lead[0]}"
                if leading == 1 else
                f"flatten_draws: site {site!r} has draw axes {arr.shape[:leading]}, expected {lead}"
            )
        names.extend(component_names(site, arr.shape[leading:]))
        blocks.append(arr.reshape(int(np.prod(lead)), -1))
    return names, np.concatenate(blocks, axis=1)


def chain_components(draws: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Each scalar component as a ``(chain, draw)`` array, draws shaped ``(chain, draw, *shape)``:
    the form ArviZ's R-hat, ESS and the reference gates take."""
    _, matrix = flatten_draws(draws, leading=2)
    chains, samples = np.shape(next(iter(draws.values())))[:2]
    return list(matrix.T.reshape(-1, chains, samples))


def component_columns(draws: Mapping[str, np.ndarray], leading: int = 1) -> dict[str, np.ndarray]:
    """``{component name: 1-D draws}`` for plotting; sites lacking the draw axes are left out."""
    kept = {k: v for k, v in draws.items() if np.ndim(v) >= leading}
    if not kept:
        return {}
    names, matrix = flatten_draws(kept, leading)
    return dict(zip(names, matrix.T, strict=True))


class DataCache:
    """Values computed once per data object (a ``Dataset`` or its ``model_kwargs``, which are not
    hashable): keyed by ``id`` plus an optional extra key, each entry keeping its object alive so
    the ``id`` cannot be reused while cached; the ``size`` most recent entries are kept."""

    def __init__(self, size: int = 8) -> None:
        self._entries: dict[tuple, tuple[Any, Any]] = {}
        self._size = size

    def get(self, obj: Any, compute: Callable[[], Any], extra: Any = None) -> Any:
        key = (id(obj), extra)
        hit = self._entries.get(key)
        if hit is None or hit[0] is not obj:
            if len(self._entries) >= self._size:
                self._entries.pop(next(iter(self._entries)))
            hit = self._entries[key] = (obj, compute())
        return hit[1]
