import sys

from svi_bench.reports.cli import main

sys.exit(main())
