"""The SVI-versus-NUTS benchmark suite: grid, runners, results tables and the command line."""


def __getattr__(name: str):
    """``compare`` (the notebook API, ``benchmarks.api``) is imported on first use: importing
    the package stays free of JAX."""
    if name == "compare":
        from svi_bench.benchmarks.api import compare

        return compare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
