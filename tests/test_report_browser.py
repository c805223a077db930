"""The report of the smoke grid in headless Chromium: every page loads from disk (file://) without
console or page errors, no link is broken, every image decodes, every model has a leaderboard row.

Needs Chromium (Debian: ``apt-get install chromium``) and the Python ``playwright`` package; the
test drives the system browser, it does not use Playwright's own browser download. Under CI
(``CI=true``) a missing browser fails the test; elsewhere it is skipped with that message.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

from svi_bench.models import REGISTRY  # noqa: E402
from svi_bench.reports.build import build_report  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("headless Chromium is needed for the report's browser test: install it with "
                "`apt-get install chromium` (Debian/Ubuntu) and `pip install playwright`")


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; {INSTALL_HINT}")
    pytest.skip(f"{reason}; {INSTALL_HINT}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed")
    executable = _chromium()
    if executable is None:
        _missing("no Chromium executable found")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def smoke_report(smoke_results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smoke-report")
    index = build_report(smoke_results, out, history_dir=out / "no-history")
    return index.parent


def _check_page(page, url: str, report: Path) -> tuple[list[str], list[str]]:
    """Load ``url``; return (problems, relative links to visit next)."""
    problems: list[str] = []
    errors: list[str] = []
    on_console = lambda msg: errors.append(f"console {msg.type}: {msg.text}")  # noqa: E731
    on_error = lambda exc: errors.append(f"page error: {exc}")  # noqa: E731
    on_failed = lambda req: errors.append(f"request failed: {req.url}")  # noqa: E731
    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.on("requestfailed", on_failed)
    try:
        page.goto(url, wait_until="load")
        page.evaluate("""async () => {
            for (const img of document.images) { img.loading = 'eager'; }
            await Promise.all(Array.from(document.images).map(img => img.decode().catch(() => {})));
        }""")
        broken_images = page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'))")
        problems += [f"{url}: image {src} did not load" for src in broken_images]
        hrefs = page.evaluate(
            "Array.from(document.querySelectorAll('[href],[src]'))"
            ".map(e => e.getAttribute('href') ?? e.getAttribute('src'))")
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_error)
        page.remove_listener("requestfailed", on_failed)
    problems += [f"{url}: {e}" for e in errors if not e.startswith("console debug")]
    here = Path(unquote(urlsplit(url).path))
    follow = []
    for href in hrefs:
        parts = urlsplit(href)
        if href.startswith("data:"):
            continue
        if parts.scheme or parts.netloc or href.startswith("/"):
            problems.append(f"{url}: non-relative link {href}")
            continue
        if not parts.path:
            continue
        target = (here.parent / unquote(parts.path)).resolve()
        if not target.is_file():
            problems.append(f"{url}: broken link {href}")
        elif target.suffix == ".html" and report.resolve() in target.parents:
            follow.append(target.as_uri())
    return problems, follow


def test_report_in_headless_chromium(browser, smoke_report):
    index = smoke_report / "index.html"
    page = browser.new_page()
    problems, follow = _check_page(page, index.as_uri(), smoke_report)

    rows = page.eval_on_selector_all("table.leaderboard tbody tr",
                                     "rows => rows.map(r => r.dataset.model)")
    for name in REGISTRY:
        assert name in rows, f"no leaderboard row for model {name}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(index.as_uri(), wait_until="load")
    page.screenshot(path=str(ARTIFACTS / "report-index.png"), full_page=True)

    seen = {index.resolve().as_uri()}
    queue = [u for u in follow if u not in seen]
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        more, links = _check_page(page, url, smoke_report)
        problems += more
        queue += [u for u in links if u not in seen]
    page.close()
    visited = {Path(unquote(urlsplit(u).path)).relative_to(smoke_report.resolve()).as_posix()
               for u in seen}
    for name in REGISTRY:
        assert f"models/{name}.html" in visited, f"model page of {name} is not linked"
    assert any(v.startswith("methods/") for v in visited)
    assert not problems, "\n".join(problems[:30])


def test_model_page_small_multiples_fit_1400px(browser, smoke_report):
    """Every per-method corner of every model page is shown, not shrunk below 90% of its own
    width (readable), and nothing reaches past the 1400 px wide window."""
    page = browser.new_page()
    shown = 0
    for path in sorted((smoke_report / "models").glob("*.html")):
        page.goto(path.as_uri(), wait_until="load")
        page.evaluate("""async () => { await Promise.all(Array.from(document.images)
            .map(img => img.decode().catch(() => {}))); }""")
        figures = page.evaluate("""() => Array.from(document.querySelectorAll(
            'figure.multiple img')).map(i => { const r = i.getBoundingClientRect();
            return [i.getAttribute('src'), i.naturalWidth, r.width, r.height, r.left, r.right]; })""")
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= 1400, f"{path.name}: page is {page_width} px wide"
        for src, natural, width, height, left, right in figures:
            assert natural > 0 and width > 0 and height > 0, f"{path.name}: {src} not visible"
            assert left >= 0 and right <= 1400, f"{path.name}: {src} overflows ({left}, {right})"
            assert width >= 0.9 * natural, f"{path.name}: {src} shrunk to {width}/{natural} px"
        if figures and not shown:
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator(".multiples").screenshot(path=str(ARTIFACTS / "report-corners.png"))
        shown += len(figures)
    page.close()
    assert shown, "no per-method corner on any model page"
