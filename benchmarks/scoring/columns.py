"""Every column of the results table, and every number the report derives from them: one table.

Each entry states a name once, with its unit and meaning (and, for run columns, its pandas dtype).
Everything else reads it: the grid's schema (``benchmarks.grid.schema.COLUMNS``: the run columns
the store types), the metric descriptions (``benchmarks.scoring.metrics.METRIC_INFO``), the
report's metric table (``reports.tables.metric_info``) and the docs' results schema page
(``markdown_table``, rendered into ``docs/reference/schema.md`` at build time by
``benchmarks.docs_pages``).

Kinds, in the order of a results row:

* ``run``: written for every run by the grid runner; the store gives them their dtype.
* ``score``: numbers scoring writes for an ok run (agreement metrics, their noise floors,
  diagnostics, held-out scores); the store infers their dtype (float64).
* ``judgement``: the verdict of an ok run and whether its reference could be trusted.
* ``report``: derived by the report from the columns above; never stored.

A leaf module (it imports nothing of the suite), so that every layer from scoring upwards can read
it.
"""

from __future__ import annotations

from typing import NamedTuple

RUN, SCORE, JUDGEMENT, REPORT = "run", "score", "judgement", "report"


class Column(NamedTuple):
    name: str
    dtype: str  # pandas dtype of a run column; "" where the store infers it
    unit: str
    description: str
    kind: str = RUN


def _run(name: str, dtype: str, unit: str, description: str) -> Column:
    return Column(name, dtype, unit, description, RUN)


def _score(name: str, unit: str, description: str) -> Column:
    return Column(name, "", unit, description, SCORE)


#: Agreement metrics (``benchmarks.scoring.metrics.agreement``), in order, with unit and meaning.
_AGREEMENT: tuple[tuple[str, str, str], ...] = (
    ("std_mean_err_max", "ref sd", "largest |mean_q - mean_ref| / sd_ref over components"),
    ("std_mean_err_mean", "ref sd", "average |mean_q - mean_ref| / sd_ref over components"),
    ("sd_log_ratio_max", "log ratio",
     "largest |log(sd_q / sd_ref)| over components (log 1.5 = 0.405)"),
    ("sd_ratio_worst", "ratio",
     "sd_q / sd_ref of the component with the largest |log ratio| (<1: q too narrow)"),
    ("w1_max", "ref sd", "largest marginal 1-Wasserstein distance / sd_ref over components"),
    ("w1_mean", "ref sd", "average marginal 1-Wasserstein distance / sd_ref over components"),
    ("joint_sliced_w1", "ref sd",
     "sliced 1-Wasserstein (mean over 200 directions) between standardised joint draws; "
     "reported, not judged: a shift in one of D coordinates reads about sqrt(2 / (pi D)) of it"),
    ("max_sliced_w1", "ref sd",
     "1-Wasserstein along the worst direction between standardised joint draws (axes, the 200 "
     "sliced directions, and the mean difference and top covariance-difference eigenvectors "
     "learned on one half of the draws, scored on the other); equals w1_max in one dimension"),
    ("c2st_acc", "fraction",
     "classifier two-sample test: held-out accuracy of a 15-nearest-neighbour classifier "
     "telling q from the reference on normal scores (ideal 0.5: indistinguishable)"),
    ("corr_err_max", "correlation",
     "largest absolute error in the correlation matrix (0 for one component)"),
    ("ref_mass_in_q90_mean", "fraction",
     "average fraction of reference draws inside q's central 90% interval (ideal 0.9)"),
    ("ref_mass_in_q90_worst", "fraction",
     "the component's fraction of reference draws in q's 90% interval farthest from 0.9"),
)

TABLE: tuple[Column, ...] = (
    _run("model", "string", "", "registered model name"),
    _run("method", "string", "",
         "a registered method (svi-bench list): nuts, manual:<guide>, an autoguide or a user's"),
    _run("family", "string", "",
         "the method's declared family: mcmc (chains with sampler statistics, judged on their "
         "health too) or vi (a fitted approximation)"),
    _run("seed", "Int64", "", "inference seed (jax.random.PRNGKey(seed))"),
    _run("profile", "string", "", "smoke, quick or paper"),
    _run("study", "string", "",
         "the study (svi-bench study) that last wrote this row; empty for svi-bench run. A run "
         "shared by studies is one row: studies select their rows by identity, not by this"),
    _run("variant", "string", "",
         "the study's variants that share this run's settings (comma-separated)"),
    _run("study_program", "boolean", "",
         "True for a row of a study that runs its own programs (annealing stages, warm starts, "
         "checkpoints): not a grid cell, so the leaderboard and model pages leave it out; empty "
         "for grid runs"),
    _run("study_settings", "string", "",
         "hash of the scope and program settings of the study that ran its own programs for this "
         "row: the study's answer uses only rows of its current definition; empty for grid runs"),
    _run("settings_hash", "string", "",
         "hash of model (and its source), method, settings and data; with model, method, seed "
         "and data the run's identity (--resume skips identities already ok, artifact readable)"),
    _run("settings", "string", "json", "the run's settings"),
    _run("data", "string", "json", "data seed and size parameters"),
    _run("precision", "string", "",
         "float32 or float64: the precision every program of the run ran in (the model's "
         "declared ModelSpec.precision unless --set precision=...); in the settings hash"),
    _run("optimizer", "string", "",
         "the SVI optimiser (--set optimizer=...): adam (constant learning_rate, the default), "
         "onecycle (optax OneCycle peaking at learning_rate) or onecycle_plateau (that with "
         "reduce_on_plateau); in the settings hash unless adam; empty for NUTS"),
    _run("status", "string", "", "ok, failed or not_applicable"),
    _run("error", "string", "", "why a run failed or does not apply (one line)"),
    _run("warning", "string", "", "what an ok run should not hide (divergences, no plateau)"),
    _run("artifact", "string", "path",
         "the run's draws as ArviZ InferenceData netCDF (az.from_netcdf), relative to the "
         "results folder; empty if none was written"),
    _run("started_at", "string", "ISO 8601", "when the run's program started (UTC)"),
    _run("jax_version", "string", "", "jax version"),
    _run("numpyro_version", "string", "", "numpyro version"),
    _run("xla_flags", "string", "", "XLA_FLAGS in force (the smoke profile lowers optimisation)"),
    _run("seeds_in_program", "Int64", "",
         "seeds compiled into one program, run one after another (NUTS: every chain of each "
         "seed in sequence)"),
    _run("jobs", "Int64", "",
         "worker processes of the run (1: serial; more: Dask workers, compiles overlapped)"),
    _run("timing_lock", "boolean", "",
         "the timed run held the per-host lock exclusively: no other worker on the host "
         "compiled, scored or ran meanwhile (each holds it shared while it works); False when "
         "serial, where nothing else of the suite runs"),
    _run("lock_wait_s", "float64", "s",
         "time the cell's program waited for the per-host timing lock; not part of run_s"),
    _run("host_others_share", "float64", "fraction",
         "share of the host's CPU that other processes (not this run's) used during the timed "
         "run: busy CPU time in /proc/stat minus the run's own, over wall time x CPUs; NaN "
         "where it cannot be measured (not Linux)"),
    _run("contended", "boolean", "",
         "host_others_share above host_load.CONTENDED_SHARE: the run_s of this row was "
         "timed while other work took part of the machine; empty when unknown (not measured, "
         "or a run too short for clock ticks to resolve the share: under 0.2 s on 2 CPUs)"),
    _run("compile_s", "float64", "s",
         "time to get the program's executable: trace, lower and compile it, or load it"),
    _run("compile_others_share", "float64", "fraction",
         "share of the host's CPU other processes used while the program compiled (as "
         "host_others_share for the run): a compile_s is comparable across commits only at a "
         "similar load; NaN where not measured"),
    _run("cache_hit", "boolean", "",
         "the program's own executable came from a cache (cache says which)"),
    _run("cache", "string", "",
         "executable: the stored executable was loaded, no tracing; jax: traced and lowered, "
         "its compile served by JAX's persistent cache; empty: compiled"),
    _run("program_run_s", "float64", "s", "run time of the compiled program (all its seeds)"),
    _run("xla_flops", "float64", "count",
         "floating-point operations of the cell's compiled program by XLA's cost analysis, each "
         "operation counted once (a loop's body once, not per iteration): a load-free "
         "fingerprint of the work inside the program, compared exactly by the regression gate; "
         "NaN where the executable gives no analysis"),
    _run("xla_transcendentals", "float64", "count",
         "transcendental operations (exp, log, ...) of the program, counted as xla_flops"),
    _run("xla_bytes_accessed", "float64", "bytes",
         "bytes the program's operations read and write, counted as xla_flops"),
    _run("xla_argument_bytes", "float64", "bytes",
         "the program's input buffers (XLA's memory analysis)"),
    _run("xla_output_bytes", "float64", "bytes", "the program's output buffers (draws, traces)"),
    _run("xla_temp_bytes", "float64", "bytes",
         "the program's temporary buffers (XLA's memory analysis)"),
    _run("xla_code_bytes", "float64", "bytes", "the program's generated code"),
    _run("xla_peak_bytes", "float64", "bytes",
         "the most bytes of buffers the program has alive at once (XLA's memory analysis): the "
         "device memory it needs"),
    _run("peak_rss_bytes", "float64", "bytes",
         "the process's peak resident memory over the timed run (Linux VmHWM, reset before the "
         "call); NaN where it cannot be measured"),
    _run("rss_growth_bytes", "float64", "bytes",
         "peak_rss_bytes minus the resident memory at the run's start: what running the program "
         "added"),
    _run("run_s", "float64", "s", "this seed's share of program_run_s"),
    _run("grad_evals", "float64", "count",
         "NUTS: leapfrog steps incl. warm-up, all chains; SVI: steps x particles x inner steps; "
         "Pathfinder: L-BFGS evaluations (one line-search trial per iteration) and ELBO draws, "
         "multi-path also its pool; MCLMC/MAMS: integrator stages x steps incl. tuning, all "
         "chains"),
    _run("latent_dim", "Int64", "", "unconstrained latent dimension"),
    _run("num_draws", "Int64", "", "posterior draws kept (all chains)"),
    _run("num_steps", "Int64", "", "SVI optimisation steps; Pathfinder: L-BFGS iterations (all paths)"),
    _run("num_particles", "Int64", "", "SVI ELBO particles per step"),
    _run("log_weights_precision", "string", "",
         "float64 or float32: the precision of the per-particle log p(x,z) - log q(z) behind "
         "final_elbo, psis_khat and kl_exact (NumPyro guides: float64 whatever the run's "
         "precision, re-evaluated from the fitted parameters; empty: the run's precision)"),
    _run("final_loss_mean", "float64", "nats",
         "SVI loss, mean of the finite losses over the last 10% of steps"),
    _run("final_loss_sd", "float64", "nats", "SVI loss, sd over the last 10% of steps"),
    _run("final_elbo", "float64", "nats", "ELBO from final_elbo_particles fresh particles"),
    _run("final_elbo_se", "float64", "nats", "Monte Carlo standard error of final_elbo"),
    _run("converged_step", "float64", "step",
         "plateau rule of benchmarks/scoring/convergence.py; NaN: none"),
    _run("nan_count", "Int64", "count", "non-finite losses in the trace"),
    _run("first_nan_step", "float64", "step", "first non-finite loss; NaN if none"),
    _run("divergences", "Int64", "count", "NUTS divergent transitions after warm-up, all chains"),
    _run("max_rhat", "float64", "", "NUTS worst rank-normalised split R-hat over components"),
    _run("min_ess_bulk", "float64", "draws", "NUTS smallest bulk ESS over components"),
    _run("min_ess_tail", "float64", "draws", "NUTS smallest tail ESS over components"),
    _run("min_bfmi", "float64", "", "NUTS smallest E-BFMI over chains"),
    _run("pathfinder_khat", "float64", "shape",
         "multipathfinder: Pareto k-hat of its own PSIS weights over its paths' pooled draws "
         "(BlackJAX's estimate; NaN where its fit fails on near-constant weights)"),
    # the annealing study's rows (one per guide, seed and stage; benchmarks/studies/annealing.py)
    _run("stage", "Int64", "",
         "annealing study: the stage of the concentration schedule (0 = alpha 1.0); the direct "
         "fit's row carries the last stage"),
    _run("stage_alpha", "float64", "", "annealing study: the Dirichlet concentration of the stage"),
    _run("stage_batches", "Int64", "count",
         "annealing study: 100-step batches the stage ran (the direct fit: its whole budget)"),
    _run("stage_capped", "boolean", "",
         "annealing study: the batch cap, not the document's 2% rule, ended the stage"),
    _run("stage_loss", "float64", "nats",
         "annealing study: the last step's loss of the stage (the document's plotted loss)"),
    _run("stage_loss_before", "float64", "nats",
         "annealing study: svi.evaluate before the stage's last batch (the rule's reference)"),
    _run("stage_loss_mean", "float64", "nats",
         "annealing study: mean of the finite step losses of the stage's last batch"),
    _run("cumulative_steps", "Int64", "step",
         "annealing study: SVI steps from the start of the annealed run to the end of the stage"),
    _run("theta_mean", "string", "json",
         "annealing study: the guide's posterior mean of theta at the end of the stage"),
    # the anytime study's rows (one per model, method, seed and checkpoint; studies/anytime.py)
    _run("checkpoint", "Int64", "",
         "anytime study: index of the checkpoint (the budget, SVI steps, NUTS draws or a swept "
         "method's budget setting, doubles from one to the next)"),
    _run("checkpoint_at", "Int64", "step or draw",
         "anytime study: SVI steps taken, NUTS draws kept after warm-up, or the swept method's "
         "budget setting (Pathfinder iterations, draws per chain, flow steps) at the checkpoint"),
    _run("checkpoint_run_s", "float64", "s",
         "anytime study: the program's run time apportioned to the checkpoint by gradient "
         "evaluations; a swept method's own run time at that budget (compile excluded)"),
    _run("floor", "float64", "ref sd",
         "anytime study: noise floor of w1_max at the checkpoint's number of draws"),
    _run("floor_source", "string", "",
         "anytime study: where the floor comes from, the exact sampler's own draws or disjoint "
         "subsets of the reference"),
    _run("floor_ess", "float64", "ref sd",
         "anytime study, sampler rows: noise floor of w1_max at the draws' smallest bulk ESS"),
    # the schedules study's rows (one per optimiser, stopping rule and seed; studies/schedules.py)
    _run("stop_rule", "string", "",
         "schedules study: early stopping rule, none, document (validation loss per point above "
         "the training loss per point) or conventional (validation loss not improving)"),
    _run("stop_patience", "Int64", "evaluations",
         "schedules study: consecutive evaluations the stopping rule waits before it stops"),
    _run("eval_every", "Int64", "step", "schedules study: SVI steps between validation losses"),
    _run("steps_run", "Int64", "step",
         "schedules study: SVI steps the run took before its rule stopped it (or its budget)"),
    _run("stopped_early", "boolean", "", "schedules study: the stopping rule fired"),
    _run("train_loss_pp", "float64", "nats",
         "schedules study: mean training loss per training point over the last evaluation's steps"),
    _run("val_loss_pp", "float64", "nats",
         "schedules study: validation loss per validation point at the last evaluation"),
    _run("plateau_scale", "float64", "",
         "schedules study: reduce_on_plateau's final step multiplier (0.1 per reduction; 1: "
         "none, or no plateau rule)"),
    # the warm_start study's rows (one per method, seed and fit of the chain; studies/warm_start.py)
    _run("start", "string", "",
         "warm_start study: base (the document's data), scratch or warm (from the previous fit)"),
    _run("data_seed", "Int64", "", "warm_start study: the seed of the data set fitted (gen_data)"),
    _run("fit_index", "Int64", "", "warm_start study: the fit's place in its chain (0 = base)"),
    _run("first_loss", "float64", "nats", "warm_start study: the loss of the first SVI step"),
    _run("time_to_plateau_s", "float64", "s",
         "warm_start study: SVI run time x converged_step / steps (NUTS: its whole run time)"),
    _run("num_warmup", "Int64", "iterations", "warm_start study: NUTS warm-up iterations run"),
    _run("loss_trace", "string", "json",
         "warm_start study: the SVI loss trace as 200 [last step, mean loss] segments"),
    # the parameter_recovery study's rows (one per case and seed; studies/parameter_recovery.py)
    _run("guide_params", "string", "json",
         "parameter_recovery and support_mismatch studies: the fitted guide's parameters "
         "(constrained), {name: value}"),
    *(_score(name, unit, description) for name, unit, description in _AGREEMENT),
    _score("mean_worst_site", "text", "the component with the largest standardised mean error"),
    _score("sd_worst_site", "text", "the component with the largest |log sd ratio|"),
    _score("w1_worst_site", "text", "the component with the largest marginal W1 (w1_max)"),
    _score("w1_worst_shape", "text",
           "q at w1_worst_site: shifted, too narrow or too wide (whichever of the mean error and "
           "the width error weighs more in W1)"),
    _score("q90_worst_site", "text", "the component of ref_mass_in_q90_worst"),
    _score("corr_worst_pair", "text", "the pair of components of corr_err_max (a ~ b)"),
    _score("max_sliced_w1_sites", "text",
           "the components the worst direction of max_sliced_w1 mostly lies along (up to 3)"),
    _score("max_sliced_w1_shape", "text",
           "q along the worst direction of max_sliced_w1: shifted, too narrow or too wide"),
    _score("approx_nonfinite_frac", "fraction",
           "fraction of approximation draws with a non-finite component (>0: metrics are NaN)"),
    *(_score(f"{name}_floor", unit,
             f"Monte Carlo noise floor of {name}: its distance from the ideal value for exact "
             "draws (two disjoint subsets of the reference)")
      for name, unit, _ in _AGREEMENT),
    _score("floor_n_approx", "draws",
           "draws playing q in the noise floors: the run's draws (NUTS: its bulk ESS), at most "
           "half the reference"),
    _score("floor_n_ref", "draws", "draws playing the reference in the noise floors (the rest)"),
    _score("psis_khat", "shape",
           "Pareto k-hat of log p(x,z) - log q(z) (Yao et al. 2018; >0.7 unreliable); a "
           "reference-free diagnostic shown beside the verdict, not part of it"),
    _score("kl_exact", "nats", "KL(q || p) = log Z - ELBO, where the evidence log Z is known exactly"),
    _score("ess_per_second", "1/s", "effective sample size per second of wall time"),
    _score("ess_per_grad_eval", "1/eval", "effective sample size per gradient evaluation"),
    _score("pred_prob_mad", "probability",
           "mean absolute difference of predictive probabilities, q versus reference"),
    _score("pred_prob_mad_floor", "probability",
           "Monte Carlo noise floor of pred_prob_mad: the same metric between the two halves of "
           "the reference"),
    _score("test_lpd", "nats", "held-out log predictive density per test point (higher is better)"),
    _score("ref_test_lpd", "nats", "the reference posterior's held-out log predictive density"),
    _score("test_accuracy", "fraction", "held-out accuracy of the posterior mean probability"),
    _score("ppc_w1", "ref predictive sd",
           "posterior predictive check: per observed data point, the 1-Wasserstein distance between "
           "up to 200 replicated data sets (at most 100,000 values) from the method and from the "
           "reference, over the reference's "
           "predictive sd there, averaged over points (benchmarks/scoring/predictive.py); a "
           "diagnostic, not judged"),
    _score("ppc_w1_floor", "ref predictive sd",
           "Monte Carlo noise floor of ppc_w1: the same number for two further disjoint sets of "
           "reference draws (mean of the two)"),
    _score("ppc_note", "text",
           "why ppc_w1 is missing (no observed site, replication failed); empty when computed"),
    Column("reference_ok", "", "", "1 if the run's reference passed its checks, 0 if it failed "
           "them or none is stored (the verdict reason then says so)", JUDGEMENT),
    Column("verdict", "", "", "pass, inconclusive, warn or fail: does the posterior agree with "
           "the reference? The worse of verdict_marginal and verdict_joint (NUTS: also its own "
           "diagnostics; never k-hat); empty if the evaluation failed", JUDGEMENT),
    Column("verdict_marginal", "", "", "the verdict of the marginal metrics (mean, sd, W1, q90 "
           "mass; predictive agreement): the worst level a metric's excess over its noise floor "
           "reaches; inconclusive when no metric's floor lets it fail; empty if none", JUDGEMENT),
    Column("verdict_joint", "", "", "the verdict of the joint metrics (max_sliced_w1, "
           "corr_err_max, c2st_acc), judged as verdict_marginal; empty if none", JUDGEMENT),
    Column("verdict_reason", "", "", "the metrics that set the verdict, where (component, pair or "
           "direction) and how (shifted, too narrow, too wide), or why there is none",
           JUDGEMENT),
    Column("verdict_policy", "", "", "the verdict policy the row was judged under "
           "(benchmarks/scoring/verdict.py VERDICT_POLICY; missing: 1, which judged k-hat too; 2 "
           "judged joint_sliced_w1 and had no inconclusive); "
           "the report re-judges older rows from their stored metrics", JUDGEMENT),
    Column("wall_s", "", "s", "compile_s + run_s: the compile of the whole program plus this "
           "seed's run", REPORT),
    Column("speedup_wall", "", "x", "NUTS wall time / this method's wall time (median over seeds)",
           REPORT),
    Column("speedup_run", "", "x", "NUTS run_s / this method's run_s, compile excluded", REPORT),
    Column("speedup_grad", "", "x", "NUTS gradient evaluations / this method's", REPORT),
    Column("stored_verdict", "", "", "the verdict as stored, for a row the report re-judged under "
           "the current verdict policy; empty otherwise", REPORT),
)

BY_NAME: dict[str, Column] = {c.name: c for c in TABLE}

#: The metrics that come with a ``<metric>_floor`` column.
FLOORED: tuple[str, ...] = tuple(c.name.removesuffix("_floor") for c in TABLE
                                 if c.name.endswith("_floor"))


def of_kind(*kinds: str) -> tuple[Column, ...]:
    """The entries of the given kinds, in table order."""
    return tuple(c for c in TABLE if c.kind in kinds)


def info(name: str) -> tuple[str, str]:
    """(unit, description) of a column or derived number; ("", "") if the table lacks it."""
    col = BY_NAME.get(name)
    return (col.unit, col.description) if col is not None else ("", "")


def markdown_table(*kinds: str) -> str:
    """The entries of ``kinds`` as a Markdown table (column | unit | meaning) for the docs;
    numbers the report derives are marked as such."""
    lines = ["| column | unit | meaning |", "| --- | --- | --- |"]
    for c in of_kind(*kinds):
        meaning = c.description.replace("|", "\\|")
        if c.kind == REPORT:
            meaning += "; derived by the report, not stored"
        lines.append(f"| `{c.name}` | {c.unit} | {meaning} |")
    return "\n".join(lines)
