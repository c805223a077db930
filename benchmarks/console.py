"""``svi-bench``: the one console command (``list``, ``run``, ``reference``, ``report``).

``report`` builds the HTML report (``svi_bench.reports``); every other sub-command runs programs,
so this process re-executes itself with a fixed ``PYTHONHASHSEED`` first (see ``jax_setup``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["report"]:
            from svi_bench.reports.cli import main as report_main

            return report_main(["build", *argv[1:]])
        from svi_bench.benchmarks.inference.jax_setup import ensure_hash_seed

        ensure_hash_seed(argv)
        from svi_bench.benchmarks.cli import main as cli_main
    except KeyboardInterrupt:  # Ctrl-C while starting: one line, as the CLI's own
        from svi_bench.benchmarks import interrupts

        return _exit(interrupts.stop())
    return _exit(cli_main(argv))


def _exit(code: int) -> int:
    """After Ctrl-C, leave at once with 130: the rows are saved, the workers stopped, and an
    interpreter that saw a KeyboardInterrupt inside a C extension's code would otherwise end
    itself by SIGINT at shutdown (rc -2 instead of 130)."""
    from svi_bench.benchmarks import interrupts

    if code == interrupts.EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
