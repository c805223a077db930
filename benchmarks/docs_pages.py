"""The docs site's reference content, rendered as Markdown from the declarations it documents.

A docs page holds a marker line ``<!-- generated: NAME -->`` where a reference table belongs; the
Sphinx extension ``docs/_ext/svi_bench_docs.py`` replaces it at build time with ``render(NAME)``
(``expand``). Nothing generated is checked in, so a column, threshold, model, method or study
declared tomorrow is documented tomorrow. Rendering imports the registries and reads the
declarations; it never runs inference (a model's latent dimension is worked out abstractly, as
``svi-bench list`` does).
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)


def declared_docs(module: ModuleType) -> dict[str, str]:
    """Module-level name -> its documentation as declared in the source: the ``#:`` comment lines
    just above the assignment, or the string literal just below it."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    docs: dict[str, str] = {}
    body = ast.parse(source).body
    for i, node in enumerate(body):
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        if (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            text = after.value.value
        else:
            comments, at = [], node.lineno - 2
            while at >= 0 and lines[at].startswith("#:"):
                comments.insert(0, lines[at][2:].strip())
                at -= 1
            text = " ".join(comments)
        for name in names:
            docs[name] = " ".join(text.split())
    return docs


def _cell(text: Any) -> str:
    """One Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(x: float) -> str:
    return f"{x:.3g}"


def results_columns(*kinds: str) -> str:
    """The results columns of ``kinds`` (``benchmarks.scoring.columns``)."""
    from svi_bench.benchmarks.scoring import columns

    return columns.markdown_table(*kinds)


def _reasons_from_table(docstring: str) -> dict[str, str]:
    """The "why" column of an RST simple table in a docstring: first word -> last column."""
    out = {}
    rows = [line for line in docstring.splitlines() if line.strip()]
    borders = [i for i, line in enumerate(rows) if set(line.strip()) <= {"=", " "}]
    if len(borders) < 3:
        return out
    edges = [m.start() for m in re.finditer(r"=+", rows[borders[0]])]
    for line in rows[borders[1] + 1:borders[2]]:
        out[line.split()[0]] = line[edges[-1]:].strip()
    return out


def verdict_thresholds() -> str:
    """The verdict's thresholds with their reasons (``benchmarks.scoring.verdict``)."""
    from svi_bench.benchmarks.scoring import verdict
    from svi_bench.benchmarks.scoring.columns import info

    why = _reasons_from_table(verdict.__doc__ or "")
    rows = [(f"`{name}`", info(name)[0], _number(warn), _number(fail), why.get(name, ""))
            for name, (warn, fail) in verdict.THRESHOLDS.items()]
    table = _table(("metric", "unit", "warn above", "fail above", "why"), rows)
    return (f"{table}\n\nA metric within {_number(verdict.FLOOR_MARGIN)} x its noise floor "
            f"(+ {verdict.FLOOR_EPS:g}) of its ideal value never triggers. Verdict policy "
            f"{verdict.VERDICT_POLICY}. PSIS k-hat is shown, not judged: good up to "
            f"{_number(verdict.KHAT_GOOD)}, unreliable above {_number(verdict.KHAT_UNRELIABLE)}.")


def nuts_health() -> str:
    """NUTS's own diagnostics thresholds (``benchmarks.scoring.evaluate.NUTS_HEALTH``)."""
    from svi_bench.benchmarks.scoring import evaluate

    h = evaluate.NUTS_HEALTH
    rows = [("max R-hat above", _number(h["rhat_warn"]), _number(h["rhat_fail"])),
            ("bulk or tail ESS below", _number(h["ess_warn"]), _number(h["ess_fail"])),
            ("divergences above", "0", "")]
    why = declared_docs(evaluate).get("NUTS_HEALTH", "")
    return _table(("NUTS diagnostic", "warn", "fail"), rows) + (f"\n\n{why}" if why else "")


def timing_thresholds() -> str:
    """When a timed run counts as contended (``benchmarks.inference.host_load``)."""
    from svi_bench.benchmarks.inference import host_load

    docs = declared_docs(host_load)
    return _table(("setting", "value", "declared as"),
                  [("`CONTENDED_SHARE`", _number(host_load.CONTENDED_SHARE),
                    docs.get("CONTENDED_SHARE", ""))])


def regress_thresholds() -> str:
    """The regression gate's thresholds and tolerances (``benchmarks.regress.thresholds``)."""
    from svi_bench.benchmarks.regress import thresholds as t

    docs = declared_docs(t)
    names = ("TIME_THRESHOLD", "TIME_STAT", "TIMER", "ACCURACY_FLOOR_FACTOR",
             "DEFAULT_ALTERNATIONS", "DEFAULT_CONFIRM")
    rows = [(f"`{n}`", getattr(t, n), docs.get(n, "")) for n in names if hasattr(t, n)]
    rows += [(f"`STRICT_FIGURES[{k!r}]`", f"{v:g} relative" if v else "exact",
              docs.get("STRICT_FIGURES", "")) for k, v in t.STRICT_FIGURES.items()]
    return _table(("setting", "value", "declared as"), rows)


def models_table() -> str:
    """Every registered model: source, latent dimension, reference kind, manual guides."""
    from svi_bench.benchmarks.inference.latent_record import LatentDims
    from svi_bench.models import REGISTRY

    dims = LatentDims()
    rows = []
    for spec in REGISTRY.values():
        try:
            dim: Any = dims.dim(spec)
        except Exception as exc:  # a model that cannot be introspected is still documented
            dim = f"unknown ({type(exc).__name__})"
        guides = ", ".join(f"`{g}`" for g in spec.guides) or "none"
        rows.append((f"`{spec.name}`", spec.source, dim, spec.reference_kind, guides,
                     spec.precision, spec.description))
    return _table(("model", "source", "latent dim", "reference", "manual guides", "precision",
                   "description"), rows)


def methods_table() -> str:
    """Every registered method: family, budget setting, module and description."""
    from svi_bench.benchmarks.methods import registry

    registry.prefixes()  # loads the built-ins
    rows = []
    for name in sorted(registry.REGISTRY, key=lambda n: (registry.REGISTRY[n].order, n)):
        method = registry.REGISTRY[name]
        module = method.build.__module__.removeprefix("svi_bench.")
        rows.append((f"`{name}`", method.family, f"`{method.budget}`" if method.budget else "",
                     f"`{module}`", method.description))
        if name == registry.baseline():
            rows += [(f"`{prefix}<guide>`", "vi", "`num_steps`", "`benchmarks.methods."
                      "numpyro_guides`", "each model's hand-written guides (ModelSpec.guides), "
                      "fitted by SVI") for prefix in registry.prefixes()]
    return _table(("method", "family", "budget", "module", "description"), rows)


def studies_table() -> str:
    """Every declared study: source, question and what it runs at each profile."""
    from svi_bench.benchmarks.studies import STUDIES

    rows = []
    for study in STUDIES.values():
        scope = []
        for profile, s in study.scopes.items():
            what = ", ".join(s.models) or "rows of the other studies"
            if s.methods:
                what += f"; methods {', '.join(s.methods)}"
            if s.seeds:
                what += f"; {s.seeds} seeds"
            if s.variants:
                what += f"; {len(s.variants)} variant{'s' * (len(s.variants) > 1)}"
            scope.append(f"{profile}: {what}")
        rows.append((f"`{study.name}`", f"{study.document}, {study.section}", study.question,
                     "<br>".join(_cell(x) for x in scope)))
    return _table(("study", "source", "question", "what it runs"), rows)


def _flat(figures: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in figures.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def measurements_table(folder: Path) -> str:
    """The measurement records (``benchmarks.measure``) in ``folder``, one row per record."""
    records = _records(folder)
    if not records:
        return "No measurement records yet."
    rows = []
    for name, rec in sorted(records, key=lambda r: (r[1].get("name", ""), r[1].get("recorded_at",
                                                                                    ""))):
        machine = rec.get("machine", {})
        where = f"{machine.get('cpus', '?')} CPUs, {machine.get('platform', '?')}"
        shown = [f"{figure} {_number(value) if isinstance(value, float) else value}"
                 for figure, value in _flat(rec.get("figures", {})).items()
                 if not figure.startswith("per_model.")]  # bench-costs shows those
        rows.append((rec.get("name", name), "; ".join(shown), f"`{rec.get('commit', '?')}`",
                     rec.get("recorded_at", ""), where, f"`{' '.join(rec.get('command', []))}`"))
    return _table(("record", "figures", "commit", "recorded", "machine", "command"), rows)


def _records(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append((path.name, json.loads(path.read_text())))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a measurement record ({exc})") from None
    return records


def bench_costs(folder: Path) -> str:
    """The newest ``measure bench`` record: the main job's wall time on its machine, then the
    cost of each model in it (the default profile's cost per model)."""
    benches = sorted((r for _, r in _records(folder) if r.get("name") == "bench"),
                     key=lambda r: r.get("recorded_at", ""))
    if not benches:
        return "No `measure bench` record yet."
    rec = benches[-1]
    fig, machine = rec.get("figures", {}), rec.get("machine", {})
    head = (f"`{' '.join(rec.get('command', []))}` at commit `{rec.get('commit', '?')}` on "
            f"{machine.get('cpus', '?')} CPUs ({rec.get('recorded_at', '')}): "
            f"{_number(fig.get('wall_s', math.nan))} s wall from a fresh clone with an empty "
            f"cache, other processes using {fig.get('others_cpu_share', math.nan):.0%} of the "
            f"machine meanwhile. {fig.get('run_summary', '')}")
    rows = [(f"`{model}`", f"{m['ok']} of {m['runs']}", _number(m["compile_s"]),
             _number(m["run_s"]),
             f"{m['mcmc_unhealthy']} of {m['mcmc_runs']}" if m["mcmc_runs"] else "")
            for model, m in fig.get("per_model", {}).items()]
    table = _table(("model", "runs ok", "compiling (s)", "timed runs (s)",
                    "MCMC runs failing their own health checks"), rows)
    return f"{head}\n\n{table}"


def generated_blocks(docs_dir: Path) -> dict[str, Callable[[], str]]:
    from svi_bench.benchmarks.scoring.columns import JUDGEMENT, REPORT, RUN, SCORE

    return {
        "columns-run": lambda: results_columns(RUN),
        "columns-scores": lambda: results_columns(SCORE, JUDGEMENT, REPORT),
        "verdict-thresholds": verdict_thresholds,
        "nuts-health": nuts_health,
        "timing-thresholds": timing_thresholds,
        "regress-thresholds": regress_thresholds,
        "models": models_table,
        "methods": methods_table,
        "studies": studies_table,
        "measurements": lambda: measurements_table(docs_dir / "measurements"),
        "bench-costs": lambda: bench_costs(docs_dir / "measurements"),
    }


def render(name: str, docs_dir: Path) -> str:
    """The Markdown of one generated block; an unknown name raises naming the valid ones."""
    pages = generated_blocks(docs_dir)
    if name not in pages:
        raise ValueError(f"unknown generated block {name!r}; valid: {', '.join(pages)}")
    return pages[name]()


def expand(text: str, docs_dir: Path) -> str:
    """``text`` with every ``<!-- generated: NAME -->`` line replaced by ``render(NAME)``."""
    return MARKER.sub(lambda m: render(m.group(1), docs_dir), text)


def markers(text: str) -> list[str]:
    """The generated blocks a page asks for."""
    return MARKER.findall(text)
