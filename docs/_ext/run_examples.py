"""Run the worked examples' code blocks (``nox -s docs -- --execute``), page after page.

Every ```python and ```bash block of the example pages runs in order in one scratch folder holding
a copy of the model and method files under ``docs/``, as a reader would run them; a page's
Python blocks share one namespace. The first failure stops the run with one line and exit 1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
#: In reading order: later pages read the results folder the earlier ones wrote.
PAGES = ("examples/compare.md", "examples/user-model.md", "examples/reading-results.md")
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.M | re.S)


def blocks(text: str) -> list[tuple[str, str]]:
    """The runnable (language, code) blocks of a Markdown page, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def run_page(page: Path, cwd: Path) -> None:
    namespace: dict = {"__name__": "__main__"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for lang, code in blocks(page.read_text()):
        if lang == "python":
            previous = Path.cwd()
            os.chdir(cwd)
            try:
                exec(compile(code, str(page), "exec"), namespace)
            finally:
                os.chdir(previous)
        else:
            subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, check=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="svi-bench-examples-") as tmp:
        work = Path(tmp)
        (work / "docs").mkdir()
        for example in DOCS.glob("*.py"):
            if example.name != "conf.py":
                shutil.copy(example, work / "docs" / example.name)
        for name in PAGES:
            print(f"running {name}", flush=True)
            try:
                run_page(DOCS / name, work)
            except Exception as exc:  # one line naming the page, not a traceback
                print(f"error: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
