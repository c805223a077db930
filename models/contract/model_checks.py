"""The checks on the spec itself, its data, the model, its guides and its reference_model.

Each check takes the shared Context, returns an optional note and raises Fail with the fix.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping

import numpy as np

from svi_bench.models import BUILT_IN
from svi_bench.models.base import PRECISIONS, Dataset, ModelSpec
from svi_bench.models.contract import tools as ck
from svi_bench.models.contract.tools import Context, Detected, Fail
from svi_bench.models.names import NAME_RULE, is_file_name, shown

REFERENCE_KINDS = ("exact", "quadrature", "nuts")
OPTIONAL_FUNCTIONS = ("exact_sampler", "exact_moments", "log_evidence", "log_density_grid",
                      "predictive_check", "reference_model", "draw_probs", "predictive_probs",
                      "data_plot")


def _text(spec: ModelSpec, field: str, hint: str) -> None:
    value = getattr(spec, field)
    if not isinstance(value, str) or not value.strip():
        raise Fail(f"{field} is {value!r}: give {hint}")


# --------------------------------------------------------------------------- the spec itself


def name(ctx: Context) -> None:
    """The model's name and its manual guides' names can name files (``models.names``)."""
    guides = ctx.spec.guides if isinstance(ctx.spec.guides, Mapping) else {}
    bad = [f"name {shown(ctx.spec.name)}"] if not is_file_name(ctx.spec.name) else []
    bad += [f"guide name {shown(g)}" for g in guides if not is_file_name(g)]
    if bad:
        raise Fail(f"{', '.join(bad)}: a name must be {NAME_RULE} (e.g. 'my_model'); names "
                   "make file names, report pages and --models/--methods entries")


def description(ctx: Context) -> None:
    _text(ctx.spec, "description", "one line saying what the model is")


def source(ctx: Context) -> None:
    _text(ctx.spec, "source", "free text saying where the model comes from (a paper, a URL, ...)")


def reference_kind(ctx: Context) -> None:
    if ctx.spec.reference_kind not in REFERENCE_KINDS:
        raise Fail(f"reference_kind is {ctx.spec.reference_kind!r}: use one of {REFERENCE_KINDS}")


def functions(ctx: Context) -> None:
    spec, problems = ctx.spec, []
    problems += [f"{f} is not callable" for f in ("model", "data") if not callable(getattr(spec, f))]
    if not isinstance(spec.guides, Mapping):
        problems.append("guides is not a mapping {name: guide function} (use {} for none)")
    else:
        problems += [f"guide {g!r} is not callable" for g, fn in spec.guides.items()
                     if not isinstance(g, str) or not callable(fn)]
    problems += [f"{f} is neither None nor callable" for f in OPTIONAL_FUNCTIONS
                 if getattr(spec, f) is not None and not callable(getattr(spec, f))]
    if problems:
        raise Fail("; ".join(problems) + ": pass the function itself, not its result")


def settings(ctx: Context) -> None:
    spec, problems = ctx.spec, []
    if not isinstance(spec.size_defaults, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in spec.size_defaults.items()):
        problems.append("size_defaults must map data() argument names to int or float defaults")
    if not isinstance(spec.reference_nuts, Mapping) or not all(
            isinstance(k, str) for k in spec.reference_nuts):
        problems.append("reference_nuts must map NUTS setting names to values ({} for none)")
    if not isinstance(spec.default_data_seed, int) or isinstance(spec.default_data_seed, bool):
        problems.append(f"default_data_seed is {spec.default_data_seed!r}: use an int")
    if not isinstance(spec.data_uses_seed, bool):
        problems.append(f"data_uses_seed is {spec.data_uses_seed!r}: use True or False")
    if not isinstance(spec.notes, str):
        problems.append("notes must be a string")
    if spec.precision not in PRECISIONS:
        problems.append(f"precision is {spec.precision!r}: use one of {', '.join(PRECISIONS)}")
    if problems:
        raise Fail("; ".join(problems))


def reference_requirements(ctx: Context) -> None:
    spec = ctx.spec
    needed = {"exact": ("exact_sampler", "exact_moments"), "quadrature": ("log_density_grid",),
              "nuts": ()}[spec.reference_kind]
    missing = [f for f in needed if getattr(spec, f) is None]
    if spec.predictive_check is not None:
        # judged in predictive space: scoring compares predictive_probs, the NUTS reference gate
        # and the report use draw_probs
        missing += [f for f in ("draw_probs", "predictive_probs") if getattr(spec, f) is None]
    if missing:
        why = f"reference_kind {spec.reference_kind!r}" if spec.predictive_check is None else \
            f"reference_kind {spec.reference_kind!r} with a predictive_check"
        raise Fail(f"{why} needs {', '.join(missing)}: provide them or change the kind")


def module_source(ctx: Context) -> None:
    module_name = getattr(ctx.spec.model, "__module__", None)
    module = sys.modules.get(module_name)
    if module is None:
        raise Fail(f"the model's module {module_name!r} is not in sys.modules: import the model "
                   "file as a module (register it in sys.modules before executing it)")
    try:
        inspect.getsource(module)
    except (OSError, TypeError) as e:
        raise Fail(f"the source of module {module_name!r} cannot be read ({e}): define the model "
                   "in a .py file; references are keyed by a hash of that source") from None


# --------------------------------------------------------------------------- data


def data(ctx: Context) -> str:
    spec = ctx.spec
    ds = spec.make_data()
    if not isinstance(ds, Dataset):
        raise Fail(f"data() returned {type(ds).__name__}: return a models.Dataset")
    if not isinstance(ds.model_kwargs, Mapping):
        raise Fail("Dataset.model_kwargs must be a mapping of the model's keyword arguments")
    direct = spec.data(spec.default_data_seed, **spec.size_defaults)
    if not ck.datasets_equal(direct, ds):
        raise Fail("data(default_data_seed, **size_defaults) differs from make_data(): "
                   "size_defaults must be data()'s own keyword arguments and defaults")
    ctx.ds = ds
    return f"model arguments: {', '.join(ds.model_kwargs) or 'none'}"


def data_deterministic(ctx: Context) -> None:
    spec = ctx.spec
    if not (ck.datasets_equal(ctx.ds, spec.make_data())
            and ck.datasets_equal(spec.make_data(seed=7), spec.make_data(seed=7))):
        raise Fail("data() gave different data for the same seed: draw only from a generator "
                   "made from the seed (np.random.default_rng(seed)), never global state")


def data_seed(ctx: Context) -> Detected | None:
    """``data_uses_seed`` as declared. A built-in model must declare it right; for a user's
    model what the check detects is taken (and said), since refusing it would add nothing."""
    spec = ctx.spec
    uses = not ck.datasets_equal(ctx.ds, spec.make_data(seed=spec.default_data_seed + 1))
    if uses == spec.data_uses_seed:
        return None
    if spec.name not in BUILT_IN:
        return Detected(f"data() {'depends on' if uses else 'ignores'} the seed: taken as "
                        f"data_uses_seed={uses} (declare it in the spec to say so yourself)")
    if not uses:
        raise Fail("data() gives the same data for every seed: declare data_uses_seed=False")
    raise Fail("data() depends on the seed but the spec declares data_uses_seed=False: "
               "remove that declaration")


def data_dtypes(ctx: Context) -> None:
    """The model's floating arrays are in its precision (float32 unless it declares float64) and
    its integer arrays int32, or int32 or int64 for a float64 model (64-bit mode's own default
    integer): what JAX computes in, and what the data hashes of stored runs and references were
    made from."""
    wrong: dict[tuple[str, str], list[str]] = {}
    floats = ctx.spec.precision if ctx.spec.precision in PRECISIONS else "float32"
    ints = ("int32", "int64") if floats == "float64" else ("int32",)
    for key, value in ctx.ds.model_kwargs.items():
        if not hasattr(value, "dtype"):
            continue  # Python scalars, None and the like
        dtype = np.dtype(value.dtype)
        want = {"f": floats, "i": "int32", "u": "int32"}.get(dtype.kind)
        if want == "int32" and str(dtype) in ints:
            continue
        if want is not None and dtype != np.dtype(want):
            wrong.setdefault((str(dtype), want), []).append(key)
    if wrong:
        raise Fail("; ".join(f"data() returned {dtype} arrays ({', '.join(keys)}): use {want}, "
                             f"e.g. jnp.asarray(x, dtype=jnp.{want})"
                             + (" (or declare precision='float64')" if dtype == "float64"
                                else "")
                             for (dtype, want), keys in wrong.items()))


# --------------------------------------------------------------------------- the model


def model_trace(ctx: Context) -> str:
    spec, kwargs = ctx.spec, ctx.kwargs
    trace = ck.model_trace(spec.model, kwargs)
    ctx.latents = ck.latent_shapes(trace)
    if not ctx.latents:
        raise Fail("the model has no latent sample site: there is nothing to infer")
    ctx.point = {name: trace[name]["value"] for name in ctx.latents}
    if not np.isfinite(ck.log_joint(spec.model, kwargs, ctx.point)):
        raise Fail("the log joint is not finite at an init_to_uniform point: check the priors' "
                   "supports and that the data are possible under the model")
    return f"latent sites: {', '.join(f'{k} {v}' for k, v in ctx.latents.items())}"


def extra_sites(ctx: Context) -> str | None:
    names = ctx.spec.extra_sites
    if not names:
        return "none"
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise Fail(f"extra_sites is {names!r}: give a tuple of site names, e.g. ('theta',)")
    trace = ck.model_trace(ctx.spec.model, ctx.kwargs)
    bad = [n for n in names if trace.get(n, {}).get("type") != "deterministic"]
    if bad:
        raise Fail(f"extra_sites {bad} are not deterministic sites of the model: name sites the "
                   "model records with numpyro.deterministic(name, value)")
    return f"scored deterministic sites: {', '.join(names)}"


def true_values(ctx: Context) -> str | None:
    truth = ctx.ds.true_values
    if not truth:
        return "no true values"
    unknown = sorted(set(truth) - set(ctx.latents))
    if unknown:
        raise Fail(f"true_values has {unknown}, not latent sites of the model: name latent sites")
    for name, value in truth.items():
        if np.shape(value) != ctx.latents[name]:
            raise Fail(f"true value {name} has shape {np.shape(value)}, the site "
                       f"{ctx.latents[name]}: give it the site's shape")
        if not np.all(np.isfinite(value)):
            raise Fail(f"true value {name} is not finite")
    if set(truth) == set(ctx.latents):
        if not np.isfinite(ck.log_joint(ctx.spec.model, ctx.kwargs, dict(truth))):
            raise Fail("the log joint at the true values is not finite: they are impossible "
                       "under the model's priors")
    return None


def autonormal(ctx: Context) -> None:
    if not np.isfinite(ck.autonormal_loss(ctx.spec.model, ctx.kwargs)):
        raise Fail("AutoNormal's initial loss is not finite: the model must be usable by the "
                   "autoguides (continuous latents, a finite log density near the prior)")


def guide(guide_name: str) -> Callable[[Context], None]:
    def check(ctx: Context) -> None:
        spec, kwargs = ctx.spec, ctx.kwargs
        fn = spec.guides[guide_name]
        sampled = ck.latent_shapes(ck.guide_trace(fn, kwargs))
        missing = sorted(set(ctx.latents) - set(sampled))
        extra = sorted(set(sampled) - set(ctx.latents))
        wrong = sorted(k for k in set(sampled) & set(ctx.latents) if sampled[k] != ctx.latents[k])
        if missing or extra or wrong:
            parts = [f"does not sample latent site(s) {missing}"] if missing else []
            parts += [f"samples {extra}, not latent sites of the model"] if extra else []
            parts += [f"gives {k} shape {sampled[k]}, not {ctx.latents[k]}" for k in wrong]
            raise Fail(f"guide {guide_name!r} {'; '.join(parts)}: a guide must sample every latent "
                       "site of the model, with the same name and shape, and nothing else")
        if not np.isfinite(ck.elbo_loss(spec.model, fn, kwargs)):
            raise Fail(f"guide {guide_name!r}: the ELBO loss at its initial parameters is not "
                       "finite; start its parameters inside the posterior's support")
    return check


def reference_model(ctx: Context) -> str | None:
    ref = ctx.spec.reference_model
    if ref is None:
        return "none (NUTS references run the model itself)"
    sites = ck.site_shapes(ck.model_trace(ref, ctx.kwargs))
    bad = [f"{k} {sites.get(k, 'missing')}" for k, v in ctx.latents.items() if sites.get(k) != v]
    if bad:
        raise Fail(f"reference_model lacks the model's latent sites ({', '.join(bad)}): give it "
                   "every latent site, with its shape, as a sample or deterministic site")
    return None
