"""Sphinx extension: fills each page's ``<!-- generated: NAME -->`` lines with the reference
Markdown ``svi_bench.benchmarks.docs_pages`` renders from the declarations, as the page is read.

Pages that ask for generated blocks are read again on every build, so an incremental build never
shows a stale table.
"""

from __future__ import annotations

from pathlib import Path

from svi_bench.benchmarks import docs_pages


def _fill(app, docname: str, source: list[str]) -> None:
    source[0] = docs_pages.expand(source[0], Path(app.srcdir))


def _always_outdated(app, env, added, changed, removed) -> list[str]:
    generated = []
    for docname in env.found_docs:
        path = Path(env.doc2path(docname))
        if path.suffix == ".md" and docs_pages.markers(path.read_text()):
            generated.append(docname)
    return generated


def setup(app):
    app.connect("source-read", _fill)
    app.connect("env-get-outdated", _always_outdated)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
