"""A page per study present in ``RESULTS/studies/`` (studies/<name>.html): the question and its
source, the answer computed from the study's derived table, the study's figure redrawn from its
rows, and the derived table itself.

Pure function of the files ``svi-bench study`` wrote (``NAME.parquet``, ``NAME.rows.parquet``,
``NAME.json``); no inference. A study the current code no longer declares still gets its table and
stored answer; a figure that fails becomes a note.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svi_bench.reports import plots
from svi_bench.reports.context import Context
from svi_bench.reports.loader import slug
from svi_bench.reports.tables import fmt

TEMPLATE = """{% extends "base.html" %}
{% block content %}
<h1>Study: {{ name }}</h1>
<p class="lead">{{ question }}</p>
<dl class="env">
<dt>source</dt><dd>{{ source }}</dd>
<dt>profile</dt><dd>{{ profile }}</dd>
<dt>runs</dt><dd>{{ n_rows }} (rows of the results table chosen by run identity; a run two
  variants share is counted once per variant)</dd>
</dl>
<h2>Answer</h2>
<p class="answer" data-study="{{ name }}">{{ answer }}</p>
{% for n in notes %}<div class="note small">{{ n }}</div>{% endfor %}
<h2>Figure</h2>
{% if fig.src %}<figure><img src="{{ fig.src }}" alt="{{ fig.alt }}">
<figcaption>{{ fig.caption }}</figcaption></figure>
{% elif fig.error %}<div class="plot-failed">{{ fig.alt }}: plot failed: {{ fig.error }}</div>
{% else %}<div class="note">{{ fig.note }}</div>{% endif %}
<h2>Derived table</h2>
<p class="small muted">Medians over the ok seeds of each group unless the column says otherwise;
written to <code>studies/{{ name }}.parquet</code> in the results folder.</p>
<div class="scroll">
<table class="study">
<thead><tr>{% for c in columns %}<th>{% for part in c.split("_") %}{{ part }}{% if not loop.last
  %}_<wbr>{% endif %}{% endfor %}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in table %}<tr>{% for v, num in r %}<td{% if num %} class="num"{% elif v|length > 40
  %} class="long"{% endif %}>{{ v }}</td>
{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
</div>
{% endblock %}
"""


def study_href(name: str) -> str:
    return f"studies/{slug(name)}.html"


def present(results_dir: Path) -> list[str]:
    """Names of the studies whose derived table is in ``results_dir/studies/``, sorted."""
    folder = Path(results_dir) / "studies"
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".parquet") for p in folder.glob("*.parquet")
                  if not p.name.endswith(".rows.parquet"))


def nav_links(results_dir: Path) -> list[dict[str, str]]:
    """The nav bar's study links (``nav["studies"]``)."""
    return [{"name": n, "href": study_href(n)} for n in present(results_dir)]


def write_study_pages(ctx: Context) -> list[str]:
    """Write every study page of the results folder; returns the names written."""
    names = present(ctx.results.results_dir)
    folder = ctx.out / "studies"
    if folder.exists():
        shutil.rmtree(folder)
    if names:
        folder.mkdir()
        (ctx.out / "img" / "studies").mkdir(parents=True, exist_ok=True)
    for name in names:
        write_study_page(ctx, name)
    return names


def _load(ctx: Context, name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], str]:
    from svi_bench.benchmarks.studies.base import load_outputs

    try:
        derived, rows, meta = load_outputs(ctx.results.results_dir, name)
        return derived, rows, meta, ""
    except Exception as exc:  # a damaged study file: the page says so
        return pd.DataFrame(), pd.DataFrame(), {}, f"unreadable ({type(exc).__name__}: {exc})"


def write_study_page(ctx: Context, name: str) -> None:
    from svi_bench.benchmarks.studies import STUDIES

    derived, rows, meta, error = _load(ctx, name)
    study = STUDIES.get(name)
    notes = [f"The study files of {name} are {error}."] if error else []
    answer = meta.get("answer", "")
    if study is not None and not derived.empty:
        try:
            answer = study.answer(derived.drop(columns=["profile"], errors="ignore"))
        except Exception as exc:
            notes.append(f"The answer could not be recomputed ({type(exc).__name__}: {exc}); "
                         "shown as stored.")
    if study is None:
        notes.append("This study is not declared by the current code: its stored table and "
                     "answer are shown without a figure.")
    notes += _policy_note(name, rows)
    fig = _figure(ctx, name, study, rows, derived)
    profile = str(derived["profile"].iloc[0]) if "profile" in derived.columns and len(derived) \
        else str(meta.get("profile", "unknown"))
    if profile != (ctx.results.profile or profile):
        notes.append(f"This study ran at the {profile} profile; the rest of the report shows "
                     f"{ctx.results.profile}.")
    columns = [c for c in derived.columns if c != "profile"]
    html = ctx.env.from_string(TEMPLATE).render(
        title=f"study {name}", root="../", nav=ctx.nav, name=name,
        question=study.question if study else meta.get("question", ""),
        source=study.source if study else meta.get("source", ""),
        profile=profile, n_rows=len(rows), answer=answer or "no answer stored",
        notes=notes, fig=fig, columns=columns,
        table=[[(fmt(v), _is_number(v)) for v in r]
               for r in derived[columns].itertuples(index=False)])
    (ctx.out / study_href(name)).write_text(html)


def _policy_note(name: str, rows: pd.DataFrame) -> list[str]:
    """A note when the study's table was derived from verdicts of an older verdict policy."""
    from svi_bench.benchmarks.scoring.rejudge import row_policy
    from svi_bench.benchmarks.scoring.verdict import LEVELS, POLICY_SUMMARY, VERDICT_POLICY

    if rows.empty or "verdict" not in rows.columns:
        return []
    judged = rows["verdict"].astype("string").fillna("").isin(LEVELS)
    policy = rows.get("verdict_policy", pd.Series(float("nan"), index=rows.index)).map(row_policy)
    old = int((judged & (policy < VERDICT_POLICY)).sum())
    if not old:
        return []
    olds = sorted({int(p) for p in policy[judged & (policy < VERDICT_POLICY)]})
    was = "; ".join(f"{p}: {POLICY_SUMMARY.get(p, 'an older policy')}" for p in olds)
    return [f"{old} of the verdicts this table was derived from were judged under an older "
            f"verdict policy ({was}); the leaderboard shows them "
            f"re-judged under policy {VERDICT_POLICY}. Re-derive the table with "
            f"`svi-bench study {name} --derive-only --out FOLDER`."]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _figure(ctx: Context, name: str, study, rows: pd.DataFrame,
            derived: pd.DataFrame) -> dict[str, str]:
    fig = {"alt": f"study {name} figure", "src": "", "caption": "", "error": "", "note": ""}
    if study is None or study.figure is None:
        fig["note"] = "No figure: the study declares none."
        return fig
    if derived.empty:
        fig["note"] = "No figure: the study's table is empty."
        return fig
    try:
        plot = study.figure(rows, derived.drop(columns=["profile"], errors="ignore"))
        path = ctx.out / "img" / "studies" / f"{slug(name)}.png"
        plots.save(plot, path)
    except Exception as exc:  # a plot that fails becomes a note, never a crash
        text = str(exc).strip().splitlines()
        fig["error"] = f"{type(exc).__name__}: {text[0] if text else ''}"
        ctx.log(f"report: study {name} figure failed: {fig['error']}")
        return fig
    fig.update(src=f"../img/studies/{slug(name)}.png", caption=study.figure_caption)
    return fig
