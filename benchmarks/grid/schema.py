"""The results table: one row per (model, method, seed), every metric a named number with a unit."""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    dtype: str  # pandas dtype
    unit: str
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("model", "string", "", "registered model name"),
    Column("method", "string", "", "nuts, manual:<guide> or an autoguide name"),
    Column("seed", "Int64", "", "inference seed (jax.random.PRNGKey(seed))"),
    Column("profile", "string", "", "smoke, quick or paper"),
    Column("settings_hash", "string", "", "hash of model, method, settings and data; --resume key"),
    Column("settings", "string", "json", "the run's settings"),
    Column("data", "string", "json", "data seed and size parameters"),
    Column("status", "string", "", "ok, failed or not_applicable"),
    Column("error", "string", "", "why a run failed or does not apply (one line)"),
    Column("warning", "string", "", "what an ok run should not hide (divergences, no plateau)"),
    Column("started_at", "string", "ISO 8601", "when the run's program started (UTC)"),
    Column("jax_version", "string", "", "jax version"),
    Column("numpyro_version", "string", "", "numpyro version"),
    Column("xla_flags", "string", "", "XLA_FLAGS in force (the smoke profile lowers optimisation)"),
    Column("seeds_in_program", "Int64", "", "seeds compiled and run together under vmap"),
    Column("jobs", "Int64", "", "worker processes sharing the machine (>1: contended timings)"),
    Column("compile_s", "float64", "s", "trace, lower and compile of the whole program"),
    Column("cache_hit", "boolean", "", "the compile was served from JAX's persistent cache"),
    Column("program_run_s", "float64", "s", "run time of the compiled program (all its seeds)"),
    Column("run_s", "float64", "s", "this seed's share of program_run_s"),
    Column("grad_evals", "float64", "count",
           "NUTS: leapfrog steps incl. warm-up, all chains; SVI: steps x particles x inner steps"),
    Column("latent_dim", "Int64", "", "unconstrained latent dimension"),
    Column("num_draws", "Int64", "", "posterior draws kept (all chains)"),
    Column("num_steps", "Int64", "", "SVI optimisation steps"),
    Column("num_particles", "Int64", "", "SVI ELBO particles per step"),
    Column("final_loss_mean", "float64", "nats",
           "SVI loss, mean of the finite losses over the last 10% of steps"),
    Column("final_loss_sd", "float64", "nats", "SVI loss, sd over the last 10% of steps"),
    Column("final_elbo", "float64", "nats", "ELBO from final_elbo_particles fresh particles"),
    Column("final_elbo_se", "float64", "nats", "Monte Carlo standard error of final_elbo"),
    Column("converged_step", "float64", "step", "plateau rule of benchmarks/convergence.py; NaN: none"),
    Column("nan_count", "Int64", "count", "non-finite losses in the trace"),
    Column("first_nan_step", "float64", "step", "first non-finite loss; NaN if none"),
    Column("divergences", "Int64", "count", "NUTS divergent transitions after warm-up, all chains"),
    Column("max_rhat", "float64", "", "NUTS worst rank-normalised split R-hat over components"),
    Column("min_ess_bulk", "float64", "draws", "NUTS smallest bulk ESS over components"),
    Column("min_ess_tail", "float64", "draws", "NUTS smallest tail ESS over components"),
    Column("min_bfmi", "float64", "", "NUTS smallest E-BFMI over chains"),
)

COLUMN_NAMES = tuple(c.name for c in COLUMNS)
KEY = ("model", "method", "seed", "profile")
STATUSES = ("ok", "failed", "not_applicable")


def markdown_table() -> str:
    """The schema as a Markdown table, for the README."""
    lines = ["| column | unit | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.unit} | {c.description} |" for c in COLUMNS]
    return "\n".join(lines)
