"""What a results folder says about its methods and models: ``manifest.json``, written by
``svi-bench run`` and ``svi-bench study`` beside the results table.

The report reads every method fact from here (description, display order, leaderboard column,
family, the baseline that speed-ups are relative to) and never imports the engine's method code,
so that a results folder renders the same whatever methods the current code offers.

A folder without a manifest (written before manifests existed), or with a damaged one, still
renders: its methods are then *unrecorded* (a fallback description, their own column, ordered after
the recorded ones) and its baseline is ``LEGACY_BASELINE`` when a row has it. A damaged manifest is
also one line in the notes ``read_manifest`` returns, never an exception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

FILE = "manifest.json"
FORMAT = 1
LEGACY_BASELINE = "nuts"
"""The baseline of a folder that records none (written before manifests): the suite's NUTS."""
MANUAL_PREFIX = "manual:"
"""Unrecorded methods named so are hand-written guides: they share ``MANUAL_COLUMN``."""
MANUAL_COLUMN = "manual"
UNRECORDED = "A method not recorded in this results folder's manifest."


class ManifestError(ValueError):
    """A manifest that is not format 1 with the documented types; the message says where."""


@dataclass(frozen=True)
class MethodInfo:
    """One method as the manifest records it."""

    name: str
    family: str = ""  # "mcmc", "vi" or another word; "" when unknown
    description: str = ""
    order: float = math.inf  # display order: methods sort by (order, name)
    baseline: bool = False  # speed-ups are relative to this method's summary
    column: str = ""  # the leaderboard column (several methods may share one)
    origin: Mapping[str, Any] = field(default_factory=dict)
    budget: str = ""  # the settings field that sets how much the method computes
    defaults: tuple = ()  # (profile, settings values) in the profiles' order


@dataclass(frozen=True)
class ModelInfo:
    """One model as the manifest records it: the model page's text when its code is gone."""

    name: str
    description: str = ""
    source: str = ""
    reference_kind: str = ""
    notes: str = ""
    methods: tuple[str, ...] = ()  # every method the suite offered for it (else "missing")
    origin: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One (model, method, profile, settings) cell of the run that wrote the manifest."""

    model: str
    method: str
    profile: str = ""
    settings_hash: str = ""
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """The method and model facts of one results folder; empty for a folder without a manifest
    (every helper then answers with the fallback for an unrecorded name)."""

    methods: Mapping[str, MethodInfo] = field(default_factory=lambda: MappingProxyType({}))
    models: Mapping[str, ModelInfo] = field(default_factory=lambda: MappingProxyType({}))
    cells: tuple[Cell, ...] = ()

    def baseline(self, present: Iterable[str] = ()) -> str | None:
        """The method speed-ups are relative to: the one the manifest marks, else (nothing
        recorded about it) ``LEGACY_BASELINE`` if it is among ``present`` (the rows' methods)."""
        for info in self.methods.values():
            if info.baseline:
                return info.name
        if LEGACY_BASELINE not in self.methods and LEGACY_BASELINE in set(present):
            return LEGACY_BASELINE
        return None

    def method_order(self, names: Iterable[str]) -> list[str]:
        """``names`` without repeats in display order: recorded methods by (order, name), then
        the unrecorded: the legacy baseline, hand-written guides by name, the rest as given
        (callers pass them in the results table's order, which is the grid's)."""
        given = list(dict.fromkeys(names))
        baseline = self.baseline(given)

        def key(pos_name: tuple[int, str]) -> tuple:
            pos, name = pos_name
            info = self.methods.get(name)
            if info is not None:
                return (0, info.order, name, 0)
            if name == baseline:
                return (1, 0, "", 0)
            if name.startswith(MANUAL_PREFIX):
                return (1, 1, name, 0)
            return (1, 2, "", pos)

        return [name for _, name in sorted(enumerate(given), key=key)]

    def column_of(self, method: str) -> str:
        """The leaderboard column of a method: the recorded one, else its own name, except that
        unrecorded hand-written guides share ``MANUAL_COLUMN`` (as before manifests)."""
        info = self.methods.get(method)
        if info is not None and info.column:
            return info.column
        if info is None and method.startswith(MANUAL_PREFIX):
            return MANUAL_COLUMN
        return method

    def description(self, method: str) -> str:
        """The method page's paragraph."""
        info = self.methods.get(method)
        if info is None:
            return UNRECORDED
        return info.description or "The manifest records no description of this method."

    def budgets(self, method: str) -> list[tuple[str, str]]:
        """The method page's budget: ``(profile, its settings)`` per profile, the budget field
        first, as the manifest records the method's defaults (empty when it records none)."""
        info = self.methods.get(method)
        if info is None:
            return []
        out = []
        for profile, values in info.defaults:
            keys = sorted(values, key=lambda k: (k != info.budget, k))
            out.append((str(profile), ", ".join(f"{k}={values[k]}" for k in keys)))
        return out

    def family(self, method: str) -> str:
        """"mcmc", "vi", ... as recorded; "" for an unrecorded method."""
        info = self.methods.get(method)
        return info.family if info is not None else ""

    def expected_methods(self, model: str) -> list[str]:
        """Every method the run offered for ``model`` (a method without rows is "not run");
        empty when the manifest does not record the model."""
        info = self.models.get(model)
        return list(info.methods) if info is not None else []


def read_manifest(results_dir: Path) -> tuple[Manifest, list[str]]:
    """(the folder's manifest, notes for the report). A missing file is the empty manifest of an
    older folder without a note; an unreadable or malformed one is the same plus one note."""
    path = Path(results_dir) / FILE
    if not path.is_file():
        return Manifest(), []
    try:
        return parse(json.loads(path.read_text())), []
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, ManifestError
        text = str(exc).strip().splitlines()
        why = f"{type(exc).__name__}: {text[0] if text else ''}"
        return Manifest(), [f"{FILE} is unreadable ({why}); its methods are shown as unrecorded "
                            "(order, columns and descriptions as for a folder without one)."]


def parse(data: Any) -> Manifest:
    """The Manifest of a decoded ``manifest.json``, or ManifestError naming the first problem."""
    obj = _dict(data, "the file")
    if obj.get("format") != FORMAT or isinstance(obj.get("format"), bool):
        raise ManifestError(f"format {obj.get('format')!r}, this report reads format {FORMAT}")
    methods = {name: _method(name, _dict(m, f"methods[{name!r}]"))
               for name, m in _dict(obj.get("methods", {}), "methods").items()}
    marked = [m.name for m in methods.values() if m.baseline]
    if len(marked) > 1:
        raise ManifestError(f"several baselines: {', '.join(marked)}")
    models = {name: _model(name, _dict(m, f"models[{name!r}]"))
              for name, m in _dict(obj.get("models", {}), "models").items()}
    cells = obj.get("cells", [])
    if not isinstance(cells, list):
        raise ManifestError("cells is not a list")
    return Manifest(MappingProxyType(methods), MappingProxyType(models),
                    tuple(_cell(i, _dict(c, f"cells[{i}]")) for i, c in enumerate(cells)))


def _method(name: str, m: dict[str, Any]) -> MethodInfo:
    where = f"methods[{name!r}]"
    order = m.get("order", math.inf)
    if isinstance(order, bool) or not isinstance(order, int | float) or math.isnan(order):
        raise ManifestError(f"{where}.order is not a number")
    baseline = m.get("baseline", False)
    if not isinstance(baseline, bool):
        raise ManifestError(f"{where}.baseline is not true or false")
    return MethodInfo(name, _str(m, "family", where), _str(m, "description", where), float(order),
                      baseline, _str(m, "column", where),
                      MappingProxyType(_dict(m.get("origin", {}), f"{where}.origin")),
                      _str(m, "budget", where), _defaults(m.get("defaults", []), where))


def _defaults(value: Any, where: str) -> tuple:
    """A method's ``[[profile, {setting: value}], ...]`` as a tuple of pairs."""
    if not isinstance(value, list) or not all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], dict)
            for x in value):
        raise ManifestError(f"{where}.defaults is not a list of [profile, settings] pairs")
    return tuple((profile, MappingProxyType(values)) for profile, values in value)


def _model(name: str, m: dict[str, Any]) -> ModelInfo:
    where = f"models[{name!r}]"
    methods = m.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(x, str) for x in methods):
        raise ManifestError(f"{where}.methods is not a list of names")
    return ModelInfo(name, *(_str(m, k, where) for k in ("description", "source",
                                                          "reference_kind", "notes")),
                     tuple(methods), MappingProxyType(_dict(m.get("origin", {}),
                                                            f"{where}.origin")))


def _cell(i: int, c: dict[str, Any]) -> Cell:
    where = f"cells[{i}]"
    seeds = c.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                              for s in seeds):
        raise ManifestError(f"{where}.seeds is not a list of integers")
    return Cell(*(_str(c, k, where) for k in ("model", "method", "profile", "settings_hash")),
                tuple(seeds))


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is not an object")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise ManifestError(f"{where}.{key} is not a string")
    return value
