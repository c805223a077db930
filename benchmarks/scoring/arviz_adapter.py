"""The one place the suite calls ArviZ (pinned to 0.23.x; ArviZ 1.x needs Python 3.12).

NumPy in, NumPy out: draws are ``(chain, draw)`` arrays for one scalar component.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az


def _quiet(fn):
    """Run an ArviZ statistic without NumPy's warnings on degenerate (constant) draws: the NaN it
    returns is recorded in the results, the console noise is not needed."""

    def wrapped(*args, **kwargs):
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


@_quiet
def ess_bulk(draws: np.ndarray) -> float:
    """Bulk effective sample size of one scalar, draws shaped (chain, draw)."""
    return float(az.ess(np.asarray(draws, dtype=float), method="bulk"))


@_quiet
def ess_tail(draws: np.ndarray) -> float:
    """Tail effective sample size of one scalar, draws shaped (chain, draw)."""
    return float(az.ess(np.asarray(draws, dtype=float), method="tail"))


@_quiet
def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat of one scalar, draws shaped (chain, draw). A single chain is
    judged by its two halves as two chains (ArviZ refuses one chain; split R-hat is defined for
    it, Vehtari et al. 2021), so a one-chain run's health check has an R-hat, not a NaN."""
    draws = np.asarray(draws, dtype=float)
    if draws.shape[0] == 1 and draws.shape[1] >= 8:
        half = draws.shape[1] // 2
        draws = np.stack([draws[0, :half], draws[0, half:2 * half]])
    return float(az.rhat(draws, method="rank"))


@_quiet
def bfmi(energy: np.ndarray) -> np.ndarray:
    """Energy Bayesian fraction of missing information per chain, energy shaped (chain, draw)."""
    return np.asarray(az.bfmi(np.asarray(energy, dtype=float)))


def psis_khat(log_weights: np.ndarray) -> float:
    """Pareto k-hat of importance log weights log p(x, z) - log q(z) (Yao et al. 2018)."""
    lw = np.asarray(log_weights, dtype=float).ravel()
    if not np.all(np.isfinite(lw)):
        return float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, khat = az.psislw(lw)
    return float(khat)


def library_version() -> str:
    return str(az.__version__)


# --- plots for the report (matplotlib figures; the caller saves and closes them) --------------


def plot_trace(draws_by_site: dict[str, np.ndarray], figsize: tuple[float, float] | None = None,
               diverging: np.ndarray | None = None):
    """ArviZ trace plot (density and trace per site); draws shaped (chain, draw, *shape).

    Vector sites are drawn compactly (one line per component). ``diverging`` (chain, draw) marks
    divergent transitions. Returns the matplotlib figure.
    """
    posterior = {k: np.asarray(v, dtype=float) for k, v in draws_by_site.items()}
    if not posterior:
        raise ValueError("plot_trace: no sites given")
    stats = {} if diverging is None else {"diverging": np.asarray(diverging, dtype=bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(posterior=posterior, sample_stats=stats or None)
        size = figsize or (8.0, 1.6 * len(posterior) + 0.4)
        axes = az.plot_trace(idata, compact=True, figsize=size,
                             divergences="bottom" if stats else None)
    fig = np.asarray(axes).ravel()[0].figure
    fig.tight_layout()
    return fig


def plot_energy(energy: np.ndarray, figsize: tuple[float, float] = (4.5, 3.2)):
    """ArviZ energy plot (marginal energy against energy transitions, with E-BFMI per chain);
    energy shaped (chain, draw). Returns the matplotlib figure."""
    energy = np.asarray(energy, dtype=float)
    if energy.ndim != 2:
        raise ValueError(f"plot_energy: energy must be (chain, draw), got shape {energy.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(sample_stats={"energy": energy})
        ax = az.plot_energy(idata, figsize=figsize, textsize=8)
    fig = ax.figure
    fig.tight_layout()
    return fig


# --- draws on disk as ArviZ InferenceData (netCDF) ----------------------------------------------


ENGINE = "netcdf4"
"""The netCDF library every file is written and read with: the netCDF-C bindings write a run's
artifact 5-7x faster than ArviZ's default ``h5netcdf`` (0.025 s against 0.13-0.18 s measured on a
quick linreg_outliers run; 183 of them per quick grid) and read it 4x faster, into the same
netCDF4/HDF5 format: files of either engine open with either."""

SLASH = "~"
"""netCDF (HDF5) names cannot hold "/", which NumPyro module sites use (``nn/layers.0.bias``):
it is stored as this character, and ``site_names`` in the group's attrs maps names back."""


def netcdf_name(site: str) -> str:
    """The variable name a site gets in netCDF files."""
    return site.replace("/", SLASH)


def _save(path, posterior: dict[str, np.ndarray], attrs: dict[str, str], **groups) -> None:
    """Write InferenceData: ``posterior`` ``{site: (chain, draw, *shape)}`` with ``attrs`` (strings)
    and the site-name map on its group, plus any other ``groups`` (datasets); atomically."""
    import json
    from pathlib import Path

    from svi_bench.benchmarks.artifacts import atomic_write

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = az.convert_to_dataset({netcdf_name(k): np.asarray(v) for k, v in posterior.items()})
        idata = az.InferenceData(posterior=dataset, **groups)
    idata.posterior.attrs.update(
        {**attrs, "site_names": json.dumps({netcdf_name(k): k for k in posterior})})
    atomic_write(Path(path), partial(idata.to_netcdf, engine=ENGINE))


def _read(path):
    """``(idata, {site: (chain, draw, *shape)}, posterior attrs)`` of a file ``_save`` wrote;
    the caller closes the groups."""
    import json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(str(path), engine=ENGINE)
    attrs = {str(k): str(v) for k, v in idata.posterior.attrs.items()}
    names = json.loads(attrs.pop("site_names", "{}"))
    draws = {names.get(str(k), str(k)): np.asarray(v.values)
             for k, v in idata.posterior.data_vars.items()}
    return idata, draws, attrs


def _close(idata) -> None:
    for group in idata.groups():
        getattr(idata, group).close()


def save_posterior(path, draws: dict[str, np.ndarray], attrs: dict[str, str]) -> None:
    """Write ``{site: (n, *shape)}`` as the posterior group (one chain) of a netCDF file that
    ``az.from_netcdf`` opens; ``attrs`` (strings) go on the posterior group."""
    _save(path, {k: np.asarray(v)[None] for k, v in draws.items()}, attrs)


def load_posterior(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({site: (chain * draw, *shape)}, posterior attrs)`` from a netCDF file of ``save_posterior``."""
    idata, draws, attrs = _read(path)
    _close(idata)
    return {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}, attrs


# --- one run's artifact: InferenceData netCDF (posterior, sample_stats, warm-up, SVI trace) -----

#: ArviZ names in the file -> the names the suite uses in memory (``load_run`` returns these).
_NUTS_STATS = {"diverging": "diverging", "energy": "energy", "n_steps": "num_steps"}
_SVI_VARS = {"loss": ("losses", "step"), "particle_elbo": ("particle_elbos", "particle")}


def save_run(path, draws: dict[str, np.ndarray], attrs: dict[str, str], *,
             nuts: dict[str, np.ndarray] | None = None,
             svi: dict[str, np.ndarray] | None = None,
             predictive: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
             chains: bool | None = None) -> None:
    """One run as InferenceData netCDF, so ``az.from_netcdf`` then ``az.summary`` just work.

    NUTS: ``draws`` are ``(chain, draw, *shape)``; ``nuts`` holds ``energy``, ``diverging``,
    ``num_steps`` (chain, draw) -> group ``sample_stats`` (``energy``, ``diverging``, ``n_steps``)
    and ``num_steps_warmup`` (chain, warm-up draw) -> group ``warmup_sample_stats`` (``n_steps``).
    SVI: ``draws`` are ``(draw, *shape)`` and stored as one chain; ``svi`` holds ``losses`` (step)
    and ``particle_elbos`` (particle) -> group ``svi`` (``loss``, ``particle_elbo``).
    ``chains=True``: ``draws`` are ``(chain, draw, *shape)`` whatever the kind (the grid's runs);
    without ``nuts`` and with one chain the run is stored as an SVI run.
    ``attrs`` (strings) go on the posterior group; ``inference`` records which kind it is.
    ``predictive`` (replicated data ``{site: (n, *shape)}``, observations) -> groups
    ``posterior_predictive`` (one chain) and ``observed_data`` (``benchmarks.scoring.predictive``).
    """
    import xarray as xr

    chains = nuts is not None if chains is None else chains
    posterior = {k: np.asarray(v) if chains else np.asarray(v)[None] for k, v in draws.items()}
    one_chain = all(np.shape(v)[0] == 1 for v in posterior.values())
    kind = "nuts" if nuts is not None else "svi" if one_chain else "chains"
    groups: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if nuts is not None:
            stats = {name: np.asarray(nuts[ours]) for name, ours in _NUTS_STATS.items()
                     if ours in nuts}
            groups["sample_stats"] = az.convert_to_dataset(stats)
            if "num_steps_warmup" in nuts:
                groups["warmup_sample_stats"] = az.convert_to_dataset(
                    {"n_steps": np.asarray(nuts["num_steps_warmup"])})
    if svi is not None:
        groups["svi"] = xr.Dataset({name: (dim, np.asarray(svi[ours]))
                                    for name, (ours, dim) in _SVI_VARS.items()
                                    if svi.get(ours) is not None})
    if predictive is not None:
        groups.update(_predictive_groups(*predictive))
    _save(path, posterior, {**attrs, "inference": kind}, **groups)


def load_run(path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """``(draws, other arrays, posterior attrs)`` of a ``save_run`` file, in the layout given to
    ``save_run`` (NUTS draws ``(chain, draw, ...)``, SVI draws ``(draw, ...)``)."""
    idata, draws, attrs = _read(path)
    if attrs.get("inference") == "svi":
        draws = {k: v[0] for k, v in draws.items()}
    other: dict[str, np.ndarray] = {}
    groups = set(idata.groups())
    if "sample_stats" in groups:
        for name, ours in _NUTS_STATS.items():
            if name in idata.sample_stats:
                other[ours] = np.asarray(idata.sample_stats[name].values)
    if "warmup_sample_stats" in groups and "n_steps" in idata.warmup_sample_stats:
        other["num_steps_warmup"] = np.asarray(idata.warmup_sample_stats["n_steps"].values)
    if "svi" in groups:
        for name, (ours, _) in _SVI_VARS.items():
            if name in idata.svi:
                other[ours] = np.asarray(idata.svi[name].values)
    _close(idata)
    return draws, other, attrs


def run_status(path) -> str:
    """The ``status`` a run artifact records (``""`` if unreadable): an ok artifact is never
    overwritten by a failed re-run."""
    try:
        return load_run(path)[2].get("status", "")
    except Exception:
        return ""


def _predictive_groups(reps: dict[str, np.ndarray], observed: dict[str, np.ndarray]) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"posterior_predictive": az.convert_to_dataset(
                    {netcdf_name(k): np.asarray(v)[None] for k, v in reps.items()}),
                "observed_data": az.dict_to_dataset(
                    {netcdf_name(k): np.asarray(v) for k, v in observed.items()}, default_dims=[])}


def save_predictive(path, reps: dict[str, np.ndarray], observed: dict[str, np.ndarray],
                    attrs: dict[str, str]) -> None:
    """Replicated data alone (a reference's): the two predictive groups, ``attrs`` on the first."""
    from pathlib import Path

    from svi_bench.benchmarks.artifacts import atomic_write

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.InferenceData(**_predictive_groups(reps, observed))
    idata.posterior_predictive.attrs.update(attrs)
    atomic_write(Path(path), partial(idata.to_netcdf, engine=ENGINE))


def load_predictive(path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """``(replicated {site: (n, *shape)}, observed {site: array})`` stored in a file, or None if it
    has no ``posterior_predictive`` group (a run scored before predictive checks existed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(str(path), engine=ENGINE)
    try:
        if "posterior_predictive" not in idata.groups():
            return None
        def site(name) -> str:  # stored under netcdf_name
            return str(name).replace(SLASH, "/")

        reps = {site(k): np.asarray(v.values).reshape(-1, *v.shape[2:])
                for k, v in idata.posterior_predictive.data_vars.items()}
        observed = ({site(k): np.asarray(v.values) for k, v in idata.observed_data.data_vars.items()}
                    if "observed_data" in idata.groups() else {})
        return reps, observed
    finally:
        _close(idata)
