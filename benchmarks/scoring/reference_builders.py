"""How trusted references are made: the exact sampler, quadrature on a grid, and gated long NUTS.

Each builder returns ``(draws {site: (n, *shape)}, provenance)``; ``references.get_reference``
decides when to build and stores the result. The NUTS gates are posteriordb's: >= 4 chains,
>= 10,000 retained draws thinned until lag-1 autocorrelation < 0.05, max R-hat < 1.01, bulk and
tail ESS >= half the retained draws, no divergences, E-BFMI > 0.2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable

import numpy as np

from svi_bench.benchmarks.inference.jax_setup import SMOKE_XLA_FLAGS
from svi_bench.benchmarks.inference.settings import NUTSSettings, identity
from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring.draws import chain_components, merge_draw_axes
from svi_bench.models import Dataset, ModelSpec

REFERENCE_DRAWS = 20_000
NUTS_GATES = {
    "min_chains": 4,
    "min_draws": 10_000,
    "max_lag1_autocorr": 0.05,
    "max_rhat": 1.01,
    "min_ess_fraction": 0.5,
    "max_divergences": 0,
    "min_bfmi": 0.2,
}
NUTS_REFERENCE = {
    # quality -> (first run, cap on draws per chain when rerunning to keep enough after thinning)
    "full": (NUTSSettings(num_warmup=2000, num_samples=5000, num_chains=4,
                          target_accept_prob=0.98), 250_000),
    # The smoke profile's reference is deliberately cheap (the smoke NUTS settings, so one seed
    # shares its compiled program); it fails the draw gate and says so.
    "smoke": (NUTSSettings(num_warmup=150, num_samples=150, num_chains=4), 150),
}
QUALITIES = tuple(NUTS_REFERENCE)
QUALITY_XLA_FLAGS = {"full": "", "smoke": SMOKE_XLA_FLAGS}
"""The XLA flags a quality's NUTS reference is built under, part of its recipe: the smoke
profile's runs compile with XLA's cheapest optimisation, which changes the draws' last bits and
so the chains, so ``svi-bench reference --quality smoke`` builds under the same flags as
``run --profile smoke``: one tag, one recipe, the same draws."""
REFERENCE_BUDGET_S = {"full": 900.0, "smoke": 30.0}  # run time a NUTS reference may take (a guard:
# a reference is a one-off whose length must not depend on how busy the machine was)


def _gate_space(spec: ModelSpec, ds: Dataset):
    """What the NUTS gates are computed on: each scalar latent component, or (for models judged
    in predictive space, whose weight posterior is symmetric and multimodal) the predictive
    probability of each held-out point. Returns draws (chain, draw, ...) -> [(chain, draw)]."""
    if spec.predictive_check is None:
        return chain_components

    def predictive(draws):
        per_chain = [spec.draw_probs({k: v[j] for k, v in draws.items()}, ds, "test")
                     for j in range(next(iter(draws.values())).shape[0])]
        probs = np.stack(per_chain)  # (chain, draw, point)
        return list(probs.transpose(2, 0, 1))

    predictive.description = "predictive probabilities of the test split"
    return predictive



def build_exact(spec: ModelSpec, ds: Dataset, seed: int) -> tuple[dict, dict]:
    draws = spec.exact_sampler(np.random.default_rng(seed), REFERENCE_DRAWS, ds)
    checks, failed = {}, []
    if spec.exact_moments is not None:
        for site, (mean, sd) in spec.exact_moments(ds).items():
            d = np.asarray(draws[site], dtype=float)
            n, sd = len(d), np.asarray(sd, dtype=float)
            z_mean = np.max(np.abs(d.mean(0) - mean) / (sd / math.sqrt(n)))
            # The sd's standard error sqrt((mu4 - sd^4) / n) / (2 sd) allows for heavy tails.
            mu4 = np.mean((d - d.mean(0)) ** 4, axis=0)
            sd_se = np.sqrt(np.maximum(mu4 - sd**4, 0.0) / n) / (2 * sd)
            z_sd = np.max(np.abs(d.std(0) - sd) / np.maximum(sd_se, 1e-12 * sd))
            checks[f"{site}_mean_z"] = float(z_mean)
            checks[f"{site}_sd_z"] = float(z_sd)
            if z_mean > 5 or z_sd > 5:
                failed.append(f"{site}: exact draws disagree with the analytic moments "
                              f"(z = {z_mean:.1f} for the mean, {z_sd:.1f} for the sd)")
    return draws, {"method": "exact sampler", "draws": REFERENCE_DRAWS, "checks": checks,
                   "failed_checks": failed}


def _grid_draws(axes: list[np.ndarray], logp: np.ndarray, n: int, rng) -> np.ndarray:
    """Draws from a density tabulated on a grid: pick a node by mass, jitter within its cell."""
    p = np.exp(logp - logp.max()).ravel()
    p /= p.sum()
    idx = np.unravel_index(rng.choice(p.size, size=n, p=p), logp.shape)
    cols = []
    for ax, i in zip(axes, idx, strict=True):
        step = float(ax[1] - ax[0])
        cols.append(np.clip(ax[i] + rng.uniform(-0.5, 0.5, size=n) * step, ax[0], ax[-1]))
    return np.stack(cols, axis=-1)


def _grid_moments(axes: list[np.ndarray], logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.exp(logp - logp.max())
    w /= w.sum()
    grids = np.meshgrid(*axes, indexing="ij")
    mean = np.array([(w * g).sum() for g in grids])
    sd = np.sqrt(np.array([(w * (g - m) ** 2).sum() for g, m in zip(grids, mean, strict=True)]))
    return mean, sd


def build_quadrature(spec: ModelSpec, ds: Dataset, seed: int, sites: tuple[str, ...]) -> tuple[dict, dict]:
    axes, logp = spec.log_density_grid(ds)
    mean, sd = _grid_moments(axes, logp)
    coarse = tuple(slice(None, None, 2) for _ in axes)
    mean_c, sd_c = _grid_moments([a[::2] for a in axes], logp[coarse])
    grid_error = float(max(np.max(np.abs(mean - mean_c) / sd), np.max(np.abs(sd_c / sd - 1))))
    edge_mass = _edge_mass(logp)
    failed = []
    if grid_error > 0.01:
        failed.append(f"grid error {grid_error:.3g} sd (coarse vs fine grid) exceeds 0.01")
    if edge_mass > 1e-6:
        failed.append(f"posterior mass {edge_mass:.2g} on the grid's edge: grid too narrow")
    samples = _grid_draws(axes, logp, REFERENCE_DRAWS, np.random.default_rng(seed))
    if len(sites) != samples.shape[1]:
        raise ValueError(f"{spec.name}: grid has {samples.shape[1]} axes for sites {sites}")
    draws = {site: samples[:, i] for i, site in enumerate(sites)}
    provenance = {"method": "quadrature", "grid_points": [len(a) for a in axes],
                  "draws": REFERENCE_DRAWS,
                  "checks": {"grid_error_sd": grid_error, "edge_mass": edge_mass,
                             "grid_mean": mean.tolist(), "grid_sd": sd.tolist()},
                  "failed_checks": failed}
    return draws, provenance


def _edge_mass(logp: np.ndarray) -> float:
    w = np.exp(logp - logp.max())
    w /= w.sum()
    inner = w[tuple(slice(1, -1) for _ in range(w.ndim))].sum()
    return float(1.0 - inner)


def _lag1(x: np.ndarray) -> float:
    x = x - x.mean()
    denom = float(np.dot(x, x))
    return float(np.dot(x[:-1], x[1:]) / denom) if denom > 0 else 0.0


def _autocorr(chains: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation at lags 0..max_lag of each chain of (chain, draw) draws (FFT)."""
    x = chains - chains.mean(axis=1, keepdims=True)
    n = x.shape[1]
    f = np.fft.rfft(x, n=2 * n, axis=1)
    acov = np.fft.irfft(f * np.conj(f), axis=1)[:, : max_lag + 1]
    return acov / np.maximum(acov[:, :1], 1e-300)


def _thin_factor(components: list[np.ndarray]) -> int:
    """Smallest t at which every chain's autocorrelation of every component is below the gate.

    Estimated on the unthinned chains, where it is precise; the thinned chains' own lag-1
    autocorrelation is recorded as a check.
    """
    max_lag = min(1000, components[0].shape[1] // 4)
    worst = np.max(np.abs(np.concatenate([_autocorr(c, max_lag) for c in components])), axis=0)
    below = np.flatnonzero(worst < NUTS_GATES["max_lag1_autocorr"])
    return int(below[0]) if below.size else max_lag


def _gate_checks(draws: dict[str, np.ndarray], diverging: np.ndarray, energy: np.ndarray,
                 settings: NUTSSettings, thin: int, gate_space, budget_note: str
                 ) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """The thinned draws (chain, draw, ...), the gates' figures and the gates they fail."""
    thinned = {k: v[:, ::thin] for k, v in draws.items()}
    kept_per_chain = len(range(0, settings.num_samples, thin))
    kept = kept_per_chain * settings.num_chains
    tcomps = gate_space(thinned)
    divergences = int(diverging.sum())
    rhat = max(arviz_adapter.rhat(c) for c in tcomps)
    ess_b = min(arviz_adapter.ess_bulk(c) for c in tcomps)
    ess_t = min(arviz_adapter.ess_tail(c) for c in tcomps)
    bfmi = float(np.min(arviz_adapter.bfmi(energy)))
    checks = {"chains": settings.num_chains, "retained_draws": kept, "thin": thin,
              "max_rhat": rhat, "min_ess_bulk": ess_b, "min_ess_tail": ess_t,
              "divergences": divergences, "min_bfmi": bfmi,
              "max_lag1_autocorr": max(_lag1(c[j]) for c in tcomps for j in range(c.shape[0]))}
    g = NUTS_GATES
    failed = []
    if settings.num_chains < g["min_chains"]:
        failed.append(f"{settings.num_chains} chains < {g['min_chains']}")
    if kept < g["min_draws"]:
        failed.append(f"{kept} retained draws < {g['min_draws']}"
                      + (f" ({budget_note})" if budget_note else ""))
    if not rhat < g["max_rhat"]:
        failed.append(f"max R-hat {rhat:.4f} >= {g['max_rhat']}")
    if not min(ess_b, ess_t) >= g["min_ess_fraction"] * kept:
        failed.append(f"min ESS bulk/tail {min(ess_b, ess_t):.0f} < {g['min_ess_fraction']} x {kept}")
    lag1_limit = g["max_lag1_autocorr"] + 2.0 / math.sqrt(kept_per_chain)  # estimation noise
    if not checks["max_lag1_autocorr"] < lag1_limit:
        failed.append(f"thinned lag-1 autocorrelation {checks['max_lag1_autocorr']:.3f} >= {lag1_limit:.3f}")
    if divergences > g["max_divergences"]:
        failed.append(f"{divergences} divergences")
    if not bfmi > g["min_bfmi"]:
        failed.append(f"E-BFMI {bfmi:.3f} <= {g['min_bfmi']}")
    return thinned, checks, failed


def build_nuts(spec: ModelSpec, ds: Dataset, seed: int, sites: tuple[str, ...], log,
               quality: str, precision: str = "float32",
               progress: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """The gated long-NUTS reference; the caller runs it inside ``precision``, which its
    recorded settings state. ``progress`` is told how the build goes (one line a chunk)."""
    settings, _ = NUTS_REFERENCE[quality]
    if quality == "full" and spec.reference_nuts:
        settings = dataclasses.replace(settings, **spec.reference_nuts)
    settings = dataclasses.replace(settings, precision=precision)
    gate_space = _gate_space(spec, ds)
    if quality == "smoke":
        draws, diverging, energy, settings, run_info = _smoke_chains(spec, ds, seed, sites,
                                                                      settings)
        budget_note = ""
    else:
        draws, diverging, energy, settings, run_info, budget_note = _full_chains(
            spec, ds, seed, sites, settings, gate_space, log, progress or (lambda text: None))
    thin = _thin_factor(gate_space(draws))
    thinned, checks, failed = _gate_checks(draws, diverging, energy, settings, thin, gate_space,
                                           budget_note)
    if budget_note:
        log(f"{spec.name}: the reference reached its {REFERENCE_BUDGET_S[quality]:g} s time "
            f"guard with {checks['retained_draws']} retained draws of the "
            f"{NUTS_GATES['min_draws']} its gates need; verdicts on it will say "
            f"\"reference failed its checks\"")
    return merge_draw_axes(thinned, 2), {
        "method": NUTS, "settings": dataclasses.asdict(settings), "gates": NUTS_GATES,
        "checks": checks, "gate_space": getattr(gate_space, "description", "latent components"),
        "parameterisation": ("the model's reference_model (an equivalent reparameterisation)"
                             if spec.reference_model else "the model"),
        "failed_checks": failed, "draws": int(checks["retained_draws"]),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), **run_info}


def _smoke_chains(spec: ModelSpec, ds: Dataset, seed: int, sites: tuple[str, ...],
                  settings: NUTSSettings):
    """The smoke reference's chains: the smoke NUTS program itself (one device, in sequence,
    diagonal mass), so a smoke run and its reference share one compiled program."""
    import jax

    from svi_bench.benchmarks.inference.fingerprints import data_hash, source_hash
    from svi_bench.benchmarks.inference.nuts import run_nuts

    # a rebuilt reference (deleted, or another quality) loads its stored executable
    program_key = {"use": "reference", "model": spec.name, "source_hash": source_hash(spec),
                   "data_hash": data_hash(ds)}
    run = run_nuts(jax.random.PRNGKey(seed)[None], spec.reference_model or spec.model,
                   ds.model_kwargs, sites, settings, program_key)
    draws = {k: v[0] for k, v in run.draws.items()}  # (chains, samples, *shape)
    return draws, run.diverging[0], run.energy[0], settings, {
        "mass_matrix": "diagonal", "devices": 1, "chain_method": "sequential",
        "compile_s": run.compile_s, "run_s": run.run_s}


PILOT = NUTSSettings(num_warmup=500, num_samples=500, num_chains=2)
"""The pilot run of each mass matrix structure that decides a full reference's (its warm-up and
draws per chain, its chains; the reference's acceptance and tree depth)."""
DENSE_MAX_DIM = 500
"""Above this unconstrained dimension a dense mass matrix is not tried: its cost per step (the
square of the dimension) and per adaptation window (the cube) would dominate."""
GIVE_UP = 10
"""A diagonal pilot stops once it has used this many times the dense pilot's gradients (warm-up
included): to win it would need ten times the dense pilot's effective draws."""
MASS_RECIPE = {"pilot": dataclasses.asdict(PILOT), "dense_max_dim": DENSE_MAX_DIM,
               "give_up": GIVE_UP,
               "choice": "fewest divergences, then most bulk ESS per sampling gradient; "
                         "diagonal on a tie",
               "sampling": "chains in parallel across devices, extended (not rerun) in chunks"}


def _mass_name(dense: bool) -> str:
    return "dense" if dense else "diagonal"


def _choose_mass(spec: ModelSpec, ds: Dataset, seed: int, sites: tuple[str, ...],
                 settings: NUTSSettings, gate_space, progress: Callable[[str], None]
                 ) -> tuple[bool, dict]:
    """Dense or diagonal mass matrix for the reference, and why: what the model declares
    (``reference_nuts``), else a short pilot of each that compares effective draws per gradient
    (dense first: a diagonal pilot that has used ``GIVE_UP`` times the dense pilot's gradients
    stops there, having lost)."""
    import jax

    from svi_bench.benchmarks.inference.reference_chains import ReferenceChains

    if "dense_mass" in spec.reference_nuts:
        return settings.dense_mass, {"rule": "declared by the model (reference_nuts)"}
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1), PILOT.num_chains)
    pilots: dict[str, dict] = {}
    dimension = 0
    for dense in (True, False):
        pilot = dataclasses.replace(settings, num_warmup=PILOT.num_warmup,
                                    num_samples=PILOT.num_samples, num_chains=PILOT.num_chains,
                                    dense_mass=dense)
        chains = ReferenceChains(spec.reference_model or spec.model, ds.model_kwargs, sites,
                                 pilot, keys)
        dimension = dimension or chains.dimension
        if dense and dimension > DENSE_MAX_DIM:
            pilots["dense"] = {"skipped": f"dimension {dimension} > {DENSE_MAX_DIM}"}
            return False, {"rule": MASS_RECIPE["choice"], "dimension": dimension,
                           "pilot": pilots}
        watch = _Watch(spec.name, f"pilot of the {_mass_name(dense)} mass matrix", chains,
                       pilot.num_samples, progress)
        limit = None if dense else GIVE_UP * pilots["dense"]["gradients"]
        parts = _sample(chains, pilot.num_samples, watch, limit)
        gradients = chains.gradients
        if chains.drawn < pilot.num_samples:
            pilots[_mass_name(dense)] = {"gradients": gradients, "stopped": (
                f"{gradients} gradients after {chains.warmed} warm-up iterations and "
                f"{chains.drawn} draws: over {GIVE_UP} x the dense pilot's")}
            continue
        ess = min(arviz_adapter.ess_bulk(c) for c in gate_space(_joined(parts, "draws")))
        sampling = int(_joined(parts, "num_steps").sum())
        pilots[_mass_name(dense)] = {
            "min_ess_bulk": float(ess), "gradients": gradients,
            "ess_per_gradient": float(ess / max(sampling, 1)),
            "divergences": int(_joined(parts, "diverging").sum()),
            "seconds": chains.compile_s + chains.run_s}
    done = [name for name in ("diagonal", "dense") if "ess_per_gradient" in pilots[name]]
    best = min(done, key=lambda n: (pilots[n]["divergences"] > 0, -pilots[n]["ess_per_gradient"]))
    return best == "dense", {"rule": MASS_RECIPE["choice"], "dimension": dimension,
                             "pilot": pilots}


class _Watch:
    """The progress line of one pass of reference chains: phase, chains, iterations so far of
    the target, the thinning decided, the time left (at the last chunk's pace: warm-up's first
    iterations, still adapting, are the slowest)."""

    def __init__(self, model: str, phase: str, chains, target: int,
                 progress: Callable[[str], None], thin: int | None = None) -> None:
        self.model, self.phase, self.chains, self.target = model, phase, chains, target
        self.progress, self.thin = progress, thin

    def __call__(self, chunk) -> None:
        c = self.chains
        warmup = c.settings.num_warmup
        pace = chunk.seconds / max(chunk.num_steps.shape[1], 1)
        left = pace * (warmup - c.warmed + self.target - c.drawn)
        where = (f"warm-up {c.warmed}/{warmup}" if c.warmed < warmup or not c.drawn
                 else f"draws {c.drawn}/{self.target}")
        thin = f"thin {self.thin}" if self.thin else "thin not yet decided"
        self.progress(f"{self.model}: reference {self.phase}: chains 1-{c.settings.num_chains} "
                      f"on {c.devices} device{'s' if c.devices > 1 else ''}, {where} a chain, "
                      f"{thin}, about {_duration(left)} left")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


PROGRESS_STEPS = 20
"""Calls (progress lines) a pass of draws is split into, in chunks of whole ``CHUNK``s."""


def _sample(chains, target: int, watch: _Watch, max_gradients: int | None = None) -> list:
    """Warm ``chains`` up (if not yet) and draw until each has ``target`` draws, or until they
    have used ``max_gradients``: the chunks of this call's draws."""
    from svi_bench.benchmarks.inference.reference_chains import CHUNK

    def spent() -> bool:
        return max_gradients is not None and chains.gradients > max_gradients

    while chains.warmed < chains.settings.num_warmup and not spent():
        watch(chains.warm_up())
    # a long extension in PROGRESS_STEPS calls: each call costs a dispatch and a copy
    step = max(CHUNK, (target - chains.drawn) // PROGRESS_STEPS // CHUNK * CHUNK)
    parts = []
    while chains.drawn < target and not spent():
        parts.append(chains.draw(min(step, target - chains.drawn)))
        watch(parts[-1])
    return parts


def _joined(parts: list, field: str):
    """One field of consecutive chunks joined along the draw axis (a dict of sites, or an array)."""
    first = getattr(parts[0], field)
    if isinstance(first, dict):
        return {k: np.concatenate([getattr(p, field)[k] for p in parts], axis=1) for k in first}
    return np.concatenate([getattr(p, field) for p in parts], axis=1)


def _full_chains(spec: ModelSpec, ds: Dataset, seed: int, sites: tuple[str, ...],
                 settings: NUTSSettings, gate_space, log, progress: Callable[[str], None]):
    """A full reference's chains: the mass matrix chosen (``_choose_mass``), the chains in
    parallel across the host's devices, extended until thinning keeps enough draws or the
    time guard stops them. Returns (draws, diverging, energy, settings, provenance, budget
    note)."""
    import jax

    from svi_bench.benchmarks.inference.reference_chains import (
        CHAIN_METHOD,
        CHUNK,
        ReferenceChains,
    )

    dense, mass_choice = _choose_mass(spec, ds, seed, sites, settings, gate_space, progress)
    settings = dataclasses.replace(settings, dense_mass=dense)
    _, max_samples = NUTS_REFERENCE["full"]
    budget = REFERENCE_BUDGET_S["full"]
    keys = jax.random.split(jax.random.PRNGKey(seed), settings.num_chains)
    chains = ReferenceChains(spec.reference_model or spec.model, ds.model_kwargs, sites,
                             settings, keys)
    parts: list = []
    target, thin, budget_note = settings.num_samples, None, ""
    while True:
        watch = _Watch(spec.name, "sampling" if not parts else "extension", chains, target,
                       progress, thin)
        parts += _sample(chains, target, watch)
        draws = _joined(parts, "draws")
        thin = _thin_factor(gate_space(draws))
        kept = len(range(0, chains.drawn, thin)) * settings.num_chains
        if kept >= NUTS_GATES["min_draws"] or chains.drawn >= max_samples or budget_note:
            break
        # 15% margin: the thinning estimated on the longer run is often a little larger.
        need = math.ceil(NUTS_GATES["min_draws"] / settings.num_chains * thin * 1.15 / CHUNK) * CHUNK
        per_draw = sum(p.seconds for p in parts) / chains.drawn
        affordable = chains.drawn + int((budget - chains.run_s) / per_draw) // CHUNK * CHUNK
        if need > affordable:
            budget_note = (f"enough draws would need {need} per chain, about "
                           f"{chains.run_s + per_draw * (need - chains.drawn):.0f} s, beyond the "
                           f"{budget} s budget")
            need = max(affordable, chains.drawn)
            if need == chains.drawn:
                break
        target = min(need, max_samples)
        log(f"{spec.name}: thinning by {thin} keeps {kept} draws; extending to {target} per chain")
    settings = dataclasses.replace(settings, num_samples=chains.drawn)
    return draws, _joined(parts, "diverging"), _joined(parts, "energy"), settings, {
        "mass_matrix": _mass_name(dense), "mass_choice": mass_choice,
        "devices": chains.devices, "chain_method": CHAIN_METHOD,
        "compile_s": chains.compile_s, "run_s": chains.run_s}, budget_note


def recipe_hash(spec: ModelSpec, quality: str) -> str:
    """Hash of how a reference of this kind is made: a change of settings or gates rebuilds it."""
    recipe = {"draws": REFERENCE_DRAWS, "kind": spec.reference_kind}
    if spec.reference_kind == "nuts":
        settings, cap = NUTS_REFERENCE[quality]
        recipe.update(settings=identity(settings), cap=cap, gates=NUTS_GATES,
                      budget=REFERENCE_BUDGET_S[quality], model_overrides=dict(spec.reference_nuts))
        if quality == "full":
            recipe.update(mass=MASS_RECIPE)
        if QUALITY_XLA_FLAGS[quality]:  # (full: none, and its shipped references' hash unchanged)
            recipe.update(xla_flags=QUALITY_XLA_FLAGS[quality])
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def with_extra_sites(spec: ModelSpec, ds: Dataset, draws: dict[str, np.ndarray],
                     seed: int) -> dict[str, np.ndarray]:
    """``draws`` plus the spec's ``extra_sites`` (deterministic sites) the builder did not give,
    computed by replaying the model on the latent draws."""
    missing = [s for s in getattr(spec, "extra_sites", ()) if s not in draws]
    if not missing:
        return draws
    import jax
    from numpyro.infer import Predictive

    det = Predictive(spec.model, posterior_samples={k: np.asarray(v) for k, v in draws.items()},
                     return_sites=missing)(jax.random.PRNGKey(seed), **ds.model_kwargs)
    return {**draws, **{s: np.asarray(det[s]) for s in missing}}
