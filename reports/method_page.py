"""A method's page (methods/<name>.html): what the method is, its counts and one row per model."""

from __future__ import annotations

from svi_bench.reports.context import Context, count, entry, method_href, model_href, new_counts


def write_method_page(ctx: Context, method: str) -> None:
    """The page of ``method``; its description is the one the results folder's manifest records,
    so that it needs no code of the method."""
    rows = []
    counts = new_counts()
    for model in ctx.models:
        if method not in ctx.expected[model]:
            continue
        s = ctx.summaries[(model, method)]
        count(counts, s)
        e = entry(ctx, s, "../")
        rows.append({**e, "model": model, "href": "../" + model_href(model),
                     "ref_ok": s.reference_ok})
    labels = {"na": "not applicable", "missing": "not run", "failed": "failed runs"}
    html = ctx.env.get_template("method.html").render(
        title=method, root="../", nav=ctx.nav, method=method,
        description=ctx.manifest.description(method), budgets=ctx.manifest.budgets(method),
        counts=[(labels.get(k, k), v) for k, v in counts.items()], rows=rows)
    (ctx.out / method_href(method)).write_text(html)
