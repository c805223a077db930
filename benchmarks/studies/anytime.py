"""``anytime`` (beyond the documents): accuracy against the reference as a function of cost, for
every method, each checkpoint an ordinary row of the grid's runner (artifact, diagnostics,
scores) at a budget 2^k of the settings field the method declares as its ``budget``. A method
with ``checkpoints`` gives them all from one run (NUTS: the first n draws of one chain, cost
including warm-up; a NumPyro guide: draws every 2^k steps inside one compiled fit), with the
study's fixed settings (one chain, one particle, its learning rate and draws); every other
method (Pathfinder, MCLMC, MAMS, the flow, a user's) runs one grid cell per budget, with its
profile's settings. Cost: gradient evaluations (SVI: steps x particles; NUTS: leapfrog steps)
and wall seconds (a checkpoint of one run: its run time apportioned by gradient evaluations;
compile time excluded). Accuracy: ``w1_max`` (marginal W1 in reference sd), with its noise
floor at the same number of draws: the exact sampler's own score at that many draws where the
model has one (``floor_source`` says which), otherwise two disjoint subsets of the reference
(``metrics.noise_floor``). A chain's draws are autocorrelated, so an MCMC row also carries the
floor at its smallest bulk ESS (``floor_ess``), the fair floor for a chain. Models judged in
predictive space (``bnn``) get one ``not_applicable`` row: w1_max of their weights means nothing.
Question per model: below what budget is each method more accurate than NUTS, and where does
NUTS overtake it?
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from svi_bench.benchmarks.grid import runner
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec, one_line
from svi_bench.benchmarks.inference import anytime as programs
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.methods import numpyro_guides, registry
from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.scoring import floor_cache, metrics
from svi_bench.benchmarks.scoring.draws import flatten_draws
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.models import REGISTRY

METRIC = "w1_max"


@dataclass(frozen=True)
class Schedule:
    """The budgets swept and the settings the study fixes.

    ``checkpoint_exps``: per budget field (``Method.budget``), the exponents 2^k of a method
    with in-program checkpoints (``Method.checkpoints``: NUTS's draws, a NumPyro guide's steps),
    whose other settings are ``fixed`` where its settings have the field, else its profile's.
    ``budget_exps``: the same for every other method, one run per budget, its profile's settings.
    """

    checkpoint_exps: Mapping[str, tuple[int, int]]
    budget_exps: Mapping[str, tuple[int, int]]
    fixed: Mapping[str, Any]
    reference_quality: str

    def exps(self, method) -> tuple[int, int] | None:
        """The exponents swept for a declared method, or None (no budget this study sweeps)."""
        table = self.checkpoint_exps if method.checkpoints is not None else self.budget_exps
        return table.get(method.budget)


SWEEPS = {
    "smoke": {"maxiter": (1, 5), "num_samples": (4, 8), "num_steps": (4, 9)},
    # Pathfinder's L-BFGS stops at convergence, usually well before 2^8 iterations; samplers'
    # draws span NUTS's; the flow's steps reach its quick budget and beyond
    "quick": {"maxiter": (1, 8), "num_samples": (4, 10), "num_steps": (4, 13)},
    "paper": {"maxiter": (1, 10), "num_samples": (4, 12), "num_steps": (4, 15)},
}
# One chain and one particle: the curves of the study's first design.
_ONE = {"num_chains": 1, "num_particles": 1}
SCHEDULES = {
    "smoke": Schedule({"num_samples": (4, 8), "num_steps": (4, 10)}, SWEEPS["smoke"],
                      {**_ONE, "num_warmup": 200, "learning_rate": 1e-2, "num_draws": 500},
                      "smoke"),
    # SVI runs to 2^16 steps so that its curve spans NUTS's, which starts after the warm-up
    # (500 iterations of up to hundreds of leapfrog steps): the crossover needs a common range.
    "quick": Schedule({"num_samples": (4, 10), "num_steps": (4, 16)}, SWEEPS["quick"],
                      {**_ONE, "num_warmup": 500, "learning_rate": 5e-3, "num_draws": 1000},
                      "full"),
    "paper": Schedule({"num_samples": (4, 12), "num_steps": (4, 18)}, SWEEPS["paper"],
                      {**_ONE, "num_warmup": 1000, "learning_rate": 5e-3, "num_draws": 2000},
                      "full"),
}
_V = (Variant("anytime"),)
SCOPES = {
    "smoke": Scope(("coin",), (NUTS, "autonormal", "automvn", "pathfinder"), 1, _V),
    "quick": Scope(("bnn", "coin", "correlated_gaussian", "dirichlet_categorical",
                    "gamma_concentration", "hierarchical_linreg", "linreg_outliers",
                    "multimodal_2d"),
                   (NUTS, "autonormal", "automvn", "autoiaf", "manual", "pathfinder",
                    "multipathfinder", "mclmc", "mams", "flow:rqs"), 2, _V),
}
SCOPES["paper"] = Scope(SCOPES["quick"].models, SCOPES["quick"].methods, 4, _V)
FLOOR_REPEATS = 3


def _hash(model: str, method: str, sched: Schedule, checkpoint: int, settings=None) -> str:
    """One identity per checkpoint row (the store keys rows by model, method, seed, hash, data)."""
    return settings_hash(model, method, settings, REGISTRY[model].data_key(None)
                         if model in REGISTRY else None, study="anytime", checkpoint=checkpoint,
                         schedule=asdict(sched))


def _methods(spec, scope: Scope) -> list[str]:
    out = []
    for m in scope.methods:
        out += numpyro_guides.manual_guides_of(spec) if m == "manual" else [m]
    return out


def not_applicable_reason(spec) -> str:
    """Why a model has no anytime curve ("" when it has one)."""
    if spec.predictive_check is not None:
        return ("judged in predictive space (pred_prob_mad): w1_max of its weights is not "
                "comparable across methods")
    return ""


def floor_at(spec, ds, ref, n: int) -> tuple[float, str]:
    """``(w1_max floor at n draws, its source)``: the mean over ``FLOOR_REPEATS`` of the exact
    sampler's score at n fresh draws against the reference where the model has an exact sampler,
    else the recorded ``metrics.noise_floor`` on disjoint subsets of the reference."""
    names, r = flatten_draws(ref.draws)
    if spec.reference_kind == "exact" and spec.exact_sampler is not None:
        prepared = metrics.prepare_reference(r, names)
        rng = np.random.default_rng(7)
        scores = []
        for _ in range(FLOOR_REPEATS):
            exact = spec.exact_sampler(rng, n, ds)
            _, q = flatten_draws({k: exact[k] for k in ref.draws})
            scores.append(metrics.agreement(q, prepared, names)[METRIC])
        return float(np.mean(scores)), "exact sampler"
    floor = floor_cache.noise_floor(r, max(2, min(n, len(r) // 2)), 7, FLOOR_REPEATS)
    return floor[f"{METRIC}_floor"], "reference subsets"


class _Floors:
    """One reference's w1_max noise floors, each number of draws' computed once."""

    def __init__(self, spec, ds, ref) -> None:
        self.spec, self.ds, self.ref = spec, ds, ref
        self.floors: dict[int, tuple[float, str]] = {}

    def at(self, n: int) -> tuple[float, str]:
        if n not in self.floors:
            self.floors[n] = floor_at(self.spec, self.ds, self.ref, n)
        return self.floors[n]


def _runs(spec, declared, seed: int, sched: Schedule, profile: str) -> list[RunSpec]:
    """One grid cell per budget 2^k of ``declared.budget``, each under the study's identity for
    its checkpoint: the method's ``profile`` settings, with the study's ``fixed`` ones for a
    method with in-program checkpoints."""
    base = dataclasses.replace(declared.settings(profile, spec.name), precision=spec.precision)
    if declared.checkpoints is not None:
        names = {f.name for f in dataclasses.fields(base)}
        base = dataclasses.replace(base, **{k: v for k, v in sched.fixed.items() if k in names})
    runs = []
    for i, point in enumerate(programs.checkpoints(*sched.exps(declared))):
        settings = dataclasses.replace(base, **{declared.budget: point})
        runs.append(RunSpec(spec, declared.name, settings, (seed,), spec.data_key(None),
                            _hash(spec.name, declared.name, sched, i, settings), profile,
                            declared.family))
    return runs


def curve(model: str, method: str, seed: int, sched: Schedule, profile: str,
          out_dir) -> list[dict]:
    """Every checkpoint row of one (model, method, seed), each an ordinary run of the grid's
    runner (artifact, diagnostics, scores) plus the study's columns: from one program for a
    method with ``checkpoints`` (``runner.run_checkpoints``), else one cell per budget
    (``runner.run_cell``). Its identity adds the study and checkpoint, so a grid cell of the same
    settings in the same folder stays apart. An exception is one failed row."""
    spec = REGISTRY[model]
    key_data = spec.data_key(None)
    base = {"model": model, "method": method, "seed": seed, "profile": profile,
            "variant": "anytime", "settings_hash": _hash(model, method, sched, -1),
            "data": json.dumps(key_data, sort_keys=True), "status": "ok", "error": "",
            "precision": spec.precision, "checkpoint": -1}
    try:
        declared = registry.resolve(method)
        if sched.exps(declared) is None:
            swept = sorted({*sched.checkpoint_exps, *sched.budget_exps})
            return [{**base, "status": "not_applicable",
                     "error": f"{method} declares no budget this study sweeps (its budget "
                              f"{declared.budget!r}; swept: {', '.join(swept)})"}]
        ds = spec.data_for(key_data)
        info = latent_info(spec.model, ds.model_kwargs)
        if reason := declared.applicable(spec, info):
            return [{**base, "status": "not_applicable", "error": reason}]
        ref = get_reference(spec, ds, key_data, info.sites + tuple(spec.extra_sites), out_dir,
                            quality=sched.reference_quality, log=lambda msg: None)
        runs = _runs(spec, declared, seed, sched, profile)
        if declared.checkpoints is not None:
            rows = [cell[0] for cell in runner.run_checkpoints(runs, ds, info, out_dir,
                                                               lambda: ref)]
        else:
            rows = [runner.run_cell(run, ds, info, out_dir, lambda: ref)[0] for run in runs]
        floors = _Floors(spec, ds, ref)
        for i, (run, row) in enumerate(zip(runs, rows, strict=True)):
            row.update(variant="anytime", checkpoint=i,
                       checkpoint_at=getattr(run.settings, declared.budget),
                       checkpoint_run_s=row.get("run_s", np.nan))
            if row["status"] == "ok" and np.isfinite(row.get(METRIC, np.nan)):
                row["floor"], row["floor_source"] = floors.at(int(row["num_draws"]))
                if declared.family == "mcmc" and np.isfinite(row.get("min_ess_bulk", np.nan)):
                    row["floor_ess"] = floors.at(max(2, round(row["min_ess_bulk"])))[0]
        return rows
    except Exception as exc:
        return [{**base, "status": "failed", "error": one_line(exc)}]


def _last_identity(model: str, method: str, seed: int, sched: Schedule, profile: str) -> tuple:
    """The identity of a (model, method, seed)'s last checkpoint row: stored ok, all are."""
    data = json.dumps(REGISTRY[model].data_key(None), sort_keys=True)
    declared = registry.resolve(method)
    if sched.exps(declared) is None:  # its one not_applicable row
        return model, method, seed, _hash(model, method, sched, -1), data
    last = _runs(REGISTRY[model], declared, seed, sched, profile)[-1]
    return model, method, seed, last.hash, data


def execute(run: StudyRun) -> None:
    """Each (model, method, seed) once; on resume skipped when its rows are stored ok."""
    scope, sched = SCOPES[run.profile], SCHEDULES[run.profile]
    for model in scope.models:
        spec = REGISTRY[model]
        if reason := not_applicable_reason(spec):
            run.store.add([{"model": model, "method": "all", "seed": 0, "profile": run.profile,
                            "variant": "anytime", "checkpoint": -1,
                            "settings_hash": _hash(model, "all", sched, -1),
                            "data": json.dumps(spec.data_key(None), sort_keys=True),
                            "status": "not_applicable", "error": reason}])
            continue
        for method in _methods(spec, scope):
            for seed in run.seed_list(scope):
                if run.resume and run.store.done(_last_identity(model, method, seed, sched,
                                                                run.profile)):
                    continue
                run.progress(f"anytime {model} {method} seed {seed}")
                run.store.add(curve(model, method, seed, sched, run.profile, run.out_dir))


def crossover(svi: pd.DataFrame, nuts: pd.DataFrame, cost: str = "grad_evals") -> float:
    """The smallest cost at which NUTS is at least as accurate as SVI, comparing both curves
    interpolated in log-log on the costs of either within their common range: ``nan`` if NUTS
    is ahead already at the first common cost, ``inf`` if it never overtakes SVI."""
    s, n = svi.sort_values(cost), nuts.sort_values(cost)
    lo, hi = max(s[cost].min(), n[cost].min()), min(s[cost].max(), n[cost].max())
    grid = np.unique(np.concatenate([s[cost], n[cost]]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    if grid.size == 0:
        return float("nan")

    def at(df):
        return np.interp(np.log(grid), np.log(df[cost]), np.log(df[METRIC]))

    nuts_ahead = at(n) <= at(s)
    if nuts_ahead[0]:
        return float("nan")
    return float(grid[np.argmax(nuts_ahead)]) if nuts_ahead.any() else float("inf")


def _median_at(curve: pd.DataFrame, end: str, column: str = METRIC) -> float:
    """Median over seeds of ``column`` at each seed's first or last checkpoint."""
    ordered = curve.sort_values("grad_evals").groupby("seed")[column]
    return float((ordered.first() if end == "first" else ordered.last()).median())


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, method other than NUTS): the crossover in gradient evaluations and seconds
    over seeds."""
    ok = rows[(rows.status == "ok") & rows[METRIC].notna()] if METRIC in rows else rows.iloc[:0]
    out = []
    for (model, method), g in ok[ok.method != NUTS].groupby(["model", "method"]):
        per_seed = {"grad_evals": [], "checkpoint_run_s": []}
        for seed, gs in g.groupby("seed"):
            n = ok[(ok.model == model) & (ok.method == NUTS) & (ok.seed == seed)]
            if len(n):
                for c in per_seed:
                    per_seed[c].append(crossover(gs, n, c))
        nuts = ok[(ok.model == model) & (ok.method == NUTS)]
        rec = {"model": model, "method": method, "seeds": len(per_seed["grad_evals"]),
               "nuts_first_grad_evals": float(nuts.groupby("seed").grad_evals.min().median())
               if len(nuts) else np.nan,
               # a method whose whole budget ends before NUTS's first draws has no common range:
               # its last accuracy against NUTS's first is the comparison there is
               "method_max_grad_evals": float(g.groupby("seed").grad_evals.max().median()),
               "method_last_w1": _median_at(g, "last"),
               "method_last_floor": _median_at(g, "last", "floor"),
               "nuts_first_w1": _median_at(nuts, "first") if len(nuts) else np.nan,
               "nuts_first_floor": _median_at(nuts, "first", "floor") if len(nuts) else np.nan,
               "common_max_grad_evals": float(min(g.grad_evals.max(), nuts.grad_evals.max()))
               if len(nuts) else np.nan}
        for c, vals in per_seed.items():
            v = np.asarray(vals, dtype=float)
            rec[f"crossover_{c}_median"] = float(np.median(v)) if v.size else np.nan
            rec[f"crossover_{c}_min"] = float(np.min(v)) if v.size else np.nan
            rec[f"crossover_{c}_max"] = float(np.max(v)) if v.size else np.nan
        out.append(rec)
    for r in rows[rows.status == "not_applicable"].drop_duplicates(["model", "method"]).itertuples():
        out.append({"model": r.model, "method": r.method, "seeds": 0, "not_applicable": r.error})
    return pd.DataFrame(out)


def _sentence(r) -> str:
    if isinstance(getattr(r, "not_applicable", None), str):
        who = r.model if r.method == "all" else f"{r.model}/{r.method}"
        return f"{who}: no curve, {r.not_applicable}."
    med, lo, hi = (r.crossover_grad_evals_median, r.crossover_grad_evals_min,
                   r.crossover_grad_evals_max)
    first = f"{r.nuts_first_grad_evals:.0f}"
    if r.method_max_grad_evals < r.nuts_first_grad_evals:
        better = r.method_last_w1 < r.nuts_first_w1
        return (f"{r.model}/{r.method}: its whole run ends at about "
                f"{r.method_max_grad_evals:.0f} gradient evaluations, before NUTS's first draws "
                f"(about {first} with warm-up), with {METRIC} {r.method_last_w1:.3g} (floor "
                f"{r.method_last_floor:.3g}) against NUTS's first {r.nuts_first_w1:.3g} (floor "
                f"{r.nuts_first_floor:.3g}): "
                + (f"{r.method} is the more accurate at a fraction of the cost." if better else
                   "NUTS's first draws are the more accurate, at the higher cost."))
    if np.isnan(med):
        return (f"{r.model}/{r.method}: NUTS is at least as accurate from its first draws (about "
                f"{first} gradient evaluations with warm-up); below that only {r.method} has an "
                "answer.")
    if np.isinf(med):
        return (f"{r.model}/{r.method}: {r.method} stays more accurate than NUTS up to "
                f"{r.common_max_grad_evals:.0f} gradient evaluations, the largest budget both ran"
                + (f" (in some of the {r.seeds} seeds NUTS overtook it, from {lo:.0f})."
                   if np.isfinite(lo) else "."))
    secs = r.crossover_checkpoint_run_s_median
    when = (f"{secs:.3g} s of run time" if np.isfinite(secs) else
            "in run time NUTS is ahead from its first draws" if np.isnan(secs) else
            f"in run time {r.method} stays ahead")
    return (f"{r.model}/{r.method}: {r.method} is more accurate below about {med:.0f} gradient "
            f"evaluations ({when}), where NUTS overtakes it (range over {r.seeds} seeds: "
            f"{lo:.0f}-{hi:.0f}; NUTS's first draws cost {first}).")


def answer(table: pd.DataFrame) -> str:
    """One sentence per (model, method), computed from the derived crossovers."""
    if table.empty:
        return "No checkpoint rows scored, so no crossover can be stated."
    return " ".join(_sentence(r) for r in table.itertuples())


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Per model: w1_max vs gradient evaluations (log-log, median over seeds), NUTS and each
    guide, with the noise floor at each checkpoint's number of draws dashed."""
    import matplotlib.pyplot as plt

    ok = rows[(rows.status == "ok") & rows[METRIC].notna()] if METRIC in rows else rows.iloc[:0]
    models = sorted(ok.model.unique()) if len(ok) else ["(no rows)"]
    ncols = min(4, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    names = sorted(ok.method.unique(), key=lambda m: (m != NUTS, m)) if len(ok) else []
    colour = {m: f"C{i % 10}" for i, m in enumerate(names)}  # one colour per method throughout
    for ax, model in zip(axes.flat, models, strict=False):  # a last row may have spares
        for method, g in ok[ok.model == model].groupby("method"):
            cols = ["grad_evals", METRIC, "floor"] + (["floor_ess"] if method == NUTS else [])
            med = g.groupby("checkpoint")[cols].median()
            ax.loglog(med.grad_evals, med[METRIC], marker="o", ms=3, color=colour[method],
                      label=method)
            if method == NUTS:
                ax.loglog(med.grad_evals, med.floor, ls="--", color=colour[method],
                          label="floor, as many independent draws")
                ax.loglog(med.grad_evals, med.floor_ess, ls=":", color=colour[method],
                          label="floor at the chain's ESS")
        ax.set(title=model, xlabel="gradient evaluations", ylabel=METRIC)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


STUDY = Study(
    name="anytime",
    question="Below what budget is each method more accurate than NUTS, and where does NUTS "
             "overtake it?",
    document="beyond the documents",
    section="anytime accuracy versus cost",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Marginal W1 (max over components, in reference sd) against gradient "
                   "evaluations, median over seeds; NUTS cost includes warm-up; wall time per "
                   "checkpoint is the program's run time apportioned by gradient evaluations. "
                   "Dashed: the noise floor at NUTS's number of draws (the exact sampler's "
                   "where the model has one); dotted: the floor at the chain's bulk ESS.",
    execute=execute,
    program_settings=lambda profile: SCHEDULES[profile],
)

__all__ = ["SCHEDULES", "SCOPES", "STUDY", "crossover", "curve", "derive", "execute"]
