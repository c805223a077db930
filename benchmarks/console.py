"""``svi-bench``: the one console command (``list``, ``run``, ``reference``, ``report``).

``report`` builds the HTML report (``svi_bench.reports``); every other sub-command runs programs,
so this process re-executes itself with a fixed ``PYTHONHASHSEED`` first (see ``jax_setup``).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        from svi_bench.reports.cli import main as report_main

        return report_main(["build", *argv[1:]])
    from svi_bench.benchmarks.inference.jax_setup import ensure_hash_seed

    ensure_hash_seed(argv)
    from svi_bench.benchmarks.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
