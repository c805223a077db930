"""The ``step_size`` study's table, answer and figure: pure functions of its rows.

One table row per (model, guide, variant): the optimiser and (peak) rate the rows ran with (from
their stored settings), seeds run and ok, the worst verdict over ok seeds (the leaderboard's
verdict of a cell), the share of seeds that pass, the headline agreement metric (marginal W1 in
reference sd, ``stats.headline``; its median and noise floor) and the comparison with the
``default`` variant (the leaderboard's cell) seed by seed: the same seed starts the same guide,
so the paired difference of log agreement has the seed's luck taken out. A difference is real
when it lies beyond t(n - 1) standard errors, n the paired seeds, at 95% Bonferroni-corrected over
the variants compared with the default of that (model, guide) (``stats.decide``).

A (model, guide)'s verdict is "an artefact of the default rate" when another variant's verdict
differs from the default's and its agreement differs from the default's beyond that noise. The
best single rate is the variant whose agreement, relative to each pair's default, is best on
average over the pairs (mean of the pairs' mean log ratios; its standard error from theirs).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.studies import stats

DEFAULT = "default"
"""The variant that is the leaderboard's cell: the profile's own rate for each model."""
BETTER, WORSE, SAME, UNDECIDED = "better", "worse", "indistinguishable", "undecided"
IS_DEFAULT = "the default's own runs"
QUOTE = ("OneCycle schedule: low -> high -> low with specific timing ... peak_value=0.008, "
         "# Maximum learning rate")
"""002, "Tips & Tricks": the schedule the document recommends over its constant Adam(0.01)."""
KEYS = ["model", "method", "variant"]


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _setting(rows: pd.DataFrame, name: str) -> object:
    """The most common value of one stored setting over the rows (None when unknown); a guide
    option is named ``guide_options.NAME``."""
    seen = []
    for text in rows.get("settings", pd.Series(dtype=object)):
        try:
            settings = json.loads(text)
            if name.startswith("guide_options."):
                seen.append((settings.get("guide_options") or {}).get(name.split(".", 1)[1]))
            else:
                seen.append(settings.get(name, "adam" if name == "optimizer" else None))
        except (TypeError, ValueError, AttributeError):
            continue
    seen = [v for v in seen if v is not None]
    return pd.Series(seen).mode().iloc[0] if seen else None


def _log_agreement(ok: pd.DataFrame, metric: str) -> pd.Series:
    """log of the agreement metric per seed (index: seed); only finite positive values."""
    values = _num(ok, metric) if metric else pd.Series(np.nan, index=ok.index)
    keep = np.isfinite(values) & (values > 0)
    return pd.Series(np.log(values[keep].to_numpy()), index=_num(ok, "seed")[keep].to_numpy())


def _same_runs_as_default(pair: pd.DataFrame) -> set[str]:
    """The variants whose runs are the default's own (a rate equal to the model's default: the
    same cell, the same rows): no comparison, and not counted among the tests."""
    if "settings_hash" not in pair.columns:
        return set()
    hashes = {v: set(g["settings_hash"].astype(str)) for v, g in pair.groupby("variant")}
    base = hashes.get(DEFAULT)
    return {v for v, h in hashes.items() if v != DEFAULT and h == base}


def finding(diff: float, se: float, n_paired: int, tests: int) -> str:
    """The decision on a mean paired difference of log agreement (lower is better)."""
    decision = stats.decide(diff, se, n_paired - 1, tests)
    return {-1: BETTER, 1: WORSE, 0: SAME, None: UNDECIDED}[decision]


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, variant); see the module docstring for the columns."""
    if rows.empty:
        return pd.DataFrame()
    out = []
    for (model, method), pair in rows.groupby(["model", "method"], sort=True):
        ok_pair = pair[pair["status"].astype(str) == "ok"]
        metric = stats.headline(ok_pair)
        logs = {v: _log_agreement(g[g["status"].astype(str) == "ok"], metric)
                for v, g in pair.groupby("variant")}
        base = logs.get(DEFAULT, pd.Series(dtype=float))
        same = _same_runs_as_default(pair)
        tests = sum(1 for v in logs if v != DEFAULT and v not in same)
        for variant, group in pair.groupby("variant", sort=False):
            ok = group[group["status"].astype(str) == "ok"]
            mine = logs[variant]
            common = mine.index.intersection(base.index)
            diff = (mine[common] - base[common]).to_numpy()
            compared = variant != DEFAULT and variant not in same
            # the default's own runs differ from it by exactly nothing
            d, d_se = stats.mean_se(diff) if variant != DEFAULT else (math.nan, math.nan)
            n = int(np.isfinite(diff).sum()) if variant != DEFAULT else 0
            verdicts = ok.get("verdict", pd.Series(dtype=object)).astype(str)
            rate = _setting(group, "learning_rate")
            scale = _setting(group, "guide_options.init_scale")
            out.append({
                "model": model, "method": method, "variant": variant,
                "optimizer": _setting(group, "optimizer") or "",
                "learning_rate": float(rate) if rate is not None else math.nan,
                "init_scale": float(scale) if scale is not None else math.nan,
                **stats.group_summary(group),
                "pass_frac": float((verdicts == "pass").mean()) if len(ok) else math.nan,
                "log_agreement": stats.mean_se(mine)[0],
                "log_agreement_se": stats.mean_se(mine)[1],
                "d_log_vs_default": d, "d_log_vs_default_se": d_se, "d_log_vs_default_n": n,
                "vs_default": finding(d, d_se, n, tests) if compared else
                "" if variant == DEFAULT else IS_DEFAULT,
                "tests": tests,
            })
    return pd.DataFrame(out)


def _label(row: pd.Series) -> str:
    if np.isfinite(row["init_scale"]):
        return f"init_scale {stats.fmt(row['init_scale'])} at the default rate"
    if row["variant"] == DEFAULT:
        return f"the default ({row['optimizer']} {stats.fmt(row['learning_rate'])})"
    if row["optimizer"] == "onecycle":
        return f"OneCycle (peak {stats.fmt(row['learning_rate'])})"
    return f"Adam {stats.fmt(row['learning_rate'])}"


def artefacts(derived: pd.DataFrame, direction: str = BETTER) -> list[str]:
    """Per (model, guide) whose default verdict another variant changes with an agreement
    ``direction`` (better: the default's verdict is an artefact of its rate; worse: the default
    is the safer choice) beyond the noise: the clause that says how."""
    out = []
    for (model, method), pair in derived.groupby(["model", "method"], sort=True):
        base = pair[pair["variant"] == DEFAULT]
        if base.empty or not base["verdict"].iloc[0]:
            continue
        v0 = base["verdict"].iloc[0]
        changed = pair[(pair["variant"] != DEFAULT) & (pair["verdict"] != v0)
                       & (pair["verdict"] != "") & (pair["vs_default"] == direction)]
        if len(changed):
            alts = ", ".join(f"{r['verdict']} at {_label(r)} (agreement x"
                             f"{stats.fmt(math.exp(r['d_log_vs_default']), 2)})"
                             for _, r in changed.iterrows())
            out.append(f"{model} x {method} ({v0} at {_label(base.iloc[0])}: {alts})")
    return out


def across_models(derived: pd.DataFrame) -> pd.DataFrame:
    """Per non-default variant: the mean over (model, guide) pairs of the mean paired log ratio
    of agreement to the pair's default, its standard error, the pairs it covers, the smallest
    paired seed count, how many pairs pass and its decision against the default (Bonferroni
    over the variants)."""
    others = derived[(derived["variant"] != DEFAULT) & np.isfinite(derived["d_log_vs_default"])]
    out = []
    for variant, g in others.groupby("variant", sort=False):
        d = float(g["d_log_vs_default"].mean())
        se = float(np.sqrt(np.nansum(g["d_log_vs_default_se"] ** 2)) / len(g))
        out.append({"variant": variant, "d": d, "se": se, "pairs": len(g),
                    "n": int(g["d_log_vs_default_n"].min()),
                    "passes": int((g["verdict"] == "pass").sum()),
                    "label": _label(g.iloc[0])})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    tests = len(table)
    table["finding"] = [finding(r.d, r.se, r.n, tests) for r in table.itertuples()]
    return table.sort_values("d").reset_index(drop=True)


def best_clause(table: pd.DataFrame, default_passes: int) -> str:
    """The single best choice across models (``across_models``' first row, the lowest mean log
    ratio): a variant when it beats the default beyond the noise, else the default itself."""
    best = table.iloc[0]
    numbers = (f"agreement x{stats.fmt(math.exp(best['d']), 2)} the default's over "
               f"{best['pairs']} pairs (log ratio {stats.pm(best['d'], best['se'])}, "
               f"{best['finding']}); {best['passes']} pairs pass at it, {default_passes} at the "
               "default")
    tied = [r.label for r in table.iloc[1:].itertuples()
            if stats.decide(r.d - best["d"], math.hypot(r.se, best["se"]),
                            min(r.n, best["n"]) - 1, max(len(table) - 1, 1)) in (0, None)]
    ties = (f"; not distinguishable from it: {', '.join(tied)}" if tied else
            "; every other choice is worse beyond the noise" if len(table) > 1 else "")
    if best["finding"] != BETTER:
        return (f"No single choice does better than each model's own default beyond the noise: "
                f"the best of the others on average, {best['label']}, has {numbers}{ties}. ")
    return f"Best single choice across models: {best['label']}, {numbers}{ties}. "


def answer(derived: pd.DataFrame) -> str:
    """Which pairs' verdicts the default rate decides, the best single rate, and whether the
    document's OneCycle schedule beats the default."""
    if derived.empty:
        return "No runs of this study are in the results."
    pairs = derived[["model", "method"]].drop_duplicates()
    n = int(derived["d_log_vs_default_n"].max()) if len(derived) else 0
    tests = int(derived["tests"].max())
    text = (f"Over {len(pairs)} (model, guide) pairs, each variant against the pair's default "
            f"seed by seed (agreement: the headline metric, lower is better; a difference "
            f"counts {stats.rule(n - 1, tests)}). ")
    found, worse = artefacts(derived, BETTER), artefacts(derived, WORSE)
    base = derived[derived["variant"] == DEFAULT]
    text += ("The leaderboard's verdict is an artefact of the default (another setting agrees "
             "better beyond the noise, with another verdict) for " + "; ".join(found) + ". "
             if found else "No pair's verdict improves at another setting beyond seed noise. ")
    if worse:
        text += ("The verdict is worse at another setting, beyond the noise, for "
                 + "; ".join(worse) + ". ")
    table = across_models(derived)
    if table.empty:
        return text + "No variant could be compared with the default." + \
            stats.coverage_note(derived)
    text += best_clause(table, int((base["verdict"] == "pass").sum()))
    onecycle = table[table["label"].str.startswith("OneCycle")]
    if len(onecycle):
        oc = onecycle.iloc[0]
        verb = {BETTER: "agree: it beats", WORSE: "disagree: it is worse than",
                SAME: "do not show it: it is indistinguishable from",
                UNDECIDED: "cannot say: no noise estimate against"}[oc["finding"]]
        text += (f"The document recommends \"{QUOTE}\"; the data {verb} the default rate at the "
                 f"same step budget (log ratio {stats.pm(oc['d'], oc['se'])}).")
    failed = derived.groupby("variant")["n_failed"].sum()
    failed = failed[failed > 0]
    if len(failed):
        text += " Runs that failed: " + ", ".join(f"{v} {int(k)}" for v, k in failed.items()) + "."
    return text + stats.coverage_note(derived)


def _order(derived: pd.DataFrame) -> list[str]:
    """Columns: the default, the constant rates ascending, schedules, then initial scales."""
    rest = derived[derived["variant"] != DEFAULT].drop_duplicates("variant")
    kind = (rest["optimizer"] != "adam").astype(int) + 2 * np.isfinite(rest["init_scale"])
    rest = rest.assign(_s=kind).sort_values(["_s", "learning_rate"])
    return [DEFAULT, *rest["variant"]]


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Heatmap of median agreement per (model, guide) x variant, annotated with the verdict."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    cols = _order(derived)
    pairs = derived[["model", "method"]].drop_duplicates().sort_values(["model", "method"])
    grid = np.full((len(pairs), len(cols)), np.nan)
    fig, ax = plt.subplots(figsize=(1.4 * len(cols) + 3, 0.55 * len(pairs) + 1.6))
    labels = []
    for i, (model, method) in enumerate(pairs.itertuples(index=False)):
        sub = derived[(derived["model"] == model) & (derived["method"] == method)]
        base = sub[sub["variant"] == DEFAULT]
        rate = f" ({stats.fmt(base['learning_rate'].iloc[0])})" if len(base) else ""
        labels.append(f"{model} x {method}{rate}")
        for j, variant in enumerate(cols):
            cell = sub[sub["variant"] == variant]
            if cell.empty:
                continue
            grid[i, j] = cell["agreement"].iloc[0]
            ax.text(j, i, f"{cell['verdict'].iloc[0] or 'n/a'}\n"
                    f"{stats.fmt(cell['agreement'].iloc[0], 2)}", ha="center", va="center",
                    fontsize=7)
    finite = grid[np.isfinite(grid) & (grid > 0)]
    norm = LogNorm(finite.min(), max(finite.max(), finite.min() * 1.01)) if len(finite) else None
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn_r", norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    fig.colorbar(image, ax=ax, label="median agreement (lower is better)")
    ax.set_title("verdict and agreement per step size, same step budget")
    fig.tight_layout()
    return fig
