"""The gate's Markdown summary: verdict, findings by severity and one table row per benchmark.

Written to ``summary.md`` and ``$GITHUB_STEP_SUMMARY`` by the command line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from svi_bench.benchmarks.regress.thresholds import FAIL, INFO, WARN

if TYPE_CHECKING:
    from svi_bench.benchmarks.regress.comparator import Comparison


def render_markdown(cmp: Comparison, title: str = "Benchmark gate") -> str:
    s = cmp.settings
    verdict = "PASS" if cmp.ok else f"FAIL ({len(cmp.failures)} problem(s))"
    lines = [f"## {title}: {verdict}", ""]
    def short(c: str) -> str:
        return c[:10] if re.fullmatch(r"[0-9a-f]{40}", c) else c

    base = ", ".join(short(c) for c in s["base_commits"] if c) or "?"
    head = ", ".join(short(c) for c in s["head_commits"] if c) or "?"
    lines.append(
        f"base {base} vs head {head}; {s['alternations']} alternation(s); time: median over "
        f"alternations of head/base {s['time_stat']} time "
        f"({', '.join(s.get('timers') or ['?'])}), "
        + (f"fail above x{1 + s['threshold']:.2f}" if s["gate_time"] else "reported, not gated")
        + f"; accuracy: fail on a drift > {s['accuracy_floor_factor']:g} x noise floor; "
        "grad evals exact, final loss to "
        f"{s['strict_figures']['final_loss']:g} relative."
    )
    lines.append("")
    for severity, heading in ((FAIL, "Problems"), (WARN, "Warnings"), (INFO, "Notes")):
        items = [f for f in cmp.findings if f.severity == severity]
        if items:
            lines += [f"### {heading}", ""]
            lines += [f"- **{severity}** `{f.benchmark}`: {f.message}" for f in items]
            lines.append("")
    lines += ["### Benchmarks", "",
              f"base/head: the {s['time_stat']} over all runs of the side; ratio: median over "
              "alternations of head/base; min ratio: of the overall minima; median ratio: of "
              "the median round times (not gated).", "",
              "| benchmark | status | base (ms) | head (ms) | ratio | min ratio | "
              "per alternation | median ratio |",
              "|---|---|---:|---:|---:|---:|---|---:|"]

    def ms(x: float | None) -> str:
        return f"{x * 1e3:.2f}" if x is not None else ""

    for r in cmp.rows:
        ratio = f"x{r.ratio:.3f}" if r.ratio is not None else ""
        if r.ratio is not None and not r.gated:
            ratio += " (not gated)"
        med = f"x{r.median_ratio:.3f}" if r.median_ratio is not None else ""
        pooled = f"x{r.pooled_ratio:.3f}" if r.pooled_ratio is not None else ""
        per = " ".join(f"{x:.2f}" for x in r.ratios)
        lines.append(f"| `{r.benchmark.split('::')[-1]}` | {r.status} | {ms(r.base_s)} | "
                     f"{ms(r.head_s)} | {ratio} | {pooled} | {per} | {med} |")
    return "\n".join(lines) + "\n"
