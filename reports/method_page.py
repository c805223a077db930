"""A method's page (methods/<name>.html): what the method is, its counts and one row per model."""

from __future__ import annotations

from svi_bench.reports.context import Context, count, entry, method_href, model_href, new_counts


def method_description(method: str, registry) -> str:
    """One paragraph: NUTS, an autoguide (its class docstring) or a manual guide (its owners')."""
    from svi_bench.benchmarks.inference.methods import AUTOGUIDES, MANUAL_PREFIX

    if method == "nuts":
        return ("NumPyro's No-U-Turn Sampler: the MCMC baseline every guide is compared with "
                "(speed-ups are relative to it).")
    if method in AUTOGUIDES:
        cls = AUTOGUIDES[method]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        doc = " ".join(doc.split())
        return f"NumPyro autoguide {cls.__name__}: {doc}" if doc else f"NumPyro {cls.__name__}."
    if method.startswith(MANUAL_PREFIX):
        guide = method[len(MANUAL_PREFIX):]
        owners = [spec for spec in registry.values() if guide in spec.guides]
        docs = []
        for spec in owners:
            doc = (spec.guides[guide].__doc__ or "").strip().split("\n\n")[0]
            docs.append(f"{spec.name}: {' '.join(doc.split()) or 'no docstring'}")
        return f"Hand-written guide '{guide}'. " + " ".join(docs)
    return "A method not known to the current code."


def write_method_page(ctx: Context, method: str, registry) -> None:
    rows = []
    counts = new_counts()
    for model in ctx.models:
        if method not in ctx.expected[model]:
            continue
        s = ctx.summaries[(model, method)]
        count(counts, s)
        e = entry(s, "../")
        rows.append({**e, "model": model, "href": "../" + model_href(model),
                     "ref_ok": s.reference_ok})
    labels = {"na": "not applicable", "missing": "not run", "failed": "failed runs"}
    html = ctx.env.get_template("method.html").render(
        title=method, root="../", nav=ctx.nav, method=method,
        description=method_description(method, registry),
        counts=[(labels.get(k, k), v) for k, v in counts.items()], rows=rows)
    (ctx.out / method_href(method)).write_text(html)
