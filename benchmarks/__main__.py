"""``python -m svi_bench.benchmarks``: the same as the ``svi-bench`` console command."""

import sys

from svi_bench.benchmarks.console import main

if __name__ == "__main__":
    sys.exit(main())
