"""FlowJAX normalizing flows as methods: ``flow:rqs``, a coupling flow of rational-quadratic
splines fitted to the posterior by the ELBO.

Agrawal and Domke (2024, arXiv 2412.08824) find that flow VI matches or surpasses turnkey HMC
when four choices are right: a high-capacity coupling flow, a large batch of ELBO particles per
step, a small fixed Adam step and the sticking-the-landing (STL) gradient estimator (Roeder et al.
2017, arXiv 1703.09194), whose variance vanishes as q reaches the posterior. ``flow:rqs`` is that
recipe with FlowJAX's rational-quadratic spline couplings (Durkan et al. 2019, arXiv 1906.04032).

The flow lives on the unconstrained space R^D of ``methods.log_density`` (the one bridge from a
NumPyro model to a flat log density): a standard Normal base of dimension D pushed through
``flow_layers`` spline couplings, then an elementwise affine map. The affine map is there because
a spline is the identity outside ``[-interval, interval]`` and maps that interval onto itself: on
its own the flow could neither move the base's mass to a posterior far from the origin nor widen
it beyond the interval; the affine map places and scales it, the splines shape it. Its
parameters take Adam steps ``AFFINE_STEP_FACTOR`` times the small step of the splines: Adam moves
a parameter by at most about its step size per step, so at 1e-3 a posterior 10 units from the origin
(hierarchical_linreg's intercepts) or 20 times narrower than the base (linreg_outliers' slope)
would take more steps than the budget before the splines could shape anything. Each
coupling's conditioner ends in a zero layer, so the flow starts as the identity (q = N(0, I)), as
in Glow and nflows: FlowJAX's random last layer starts every seed from a random warp that Adam,
which scales tiny STL gradients up to full steps, never quite irons out (on a 2-D standard
Normal target, 2000 x 16 steps left KL(q||p) at 0.02-0.09 from a random start).

The program follows the suite's style (``inference.svi``): one key per seed, every seed in
sequence (``lax.map``) in one compiled program timed apart from its compile (``timed``), the
training loop one ``lax.scan`` of optax Adam steps over the equinox-partitioned parameters.
FlowJAX's own ``fit_to_key_based_loss`` is not used: it syncs with the host every step.

Gradient count: each ELBO particle of each step costs one gradient of the log density, so
``grad_evals = num_steps x batch_size`` per seed. The final ELBO's particles and the draws
evaluate the log density without a gradient and are not counted (as for the SVI guides).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.methods.base import (
    Method,
    Program,
    RunResult,
    needs_latent_dim,
    timed,
)
from svi_bench.models import Dataset, ModelSpec
from svi_bench.models.base import PRECISIONS

NAME = "flow:rqs"
MAX_BAD_STEPS = 10
"""Consecutive steps with a non-finite gradient that Adam skips (``optax.apply_if_finite``): a
rare particle far in q's tail where the log density overflows costs one step, not the fit; a
fit that keeps failing gets non-finite parameters and its row fails (``params_finite``)."""
AFFINE_STEP_FACTOR = 10.0
"""The affine (location-scale) map's Adam step as a multiple of ``learning_rate`` (the module
docstring says why); the splines take ``learning_rate`` itself."""
LOG_DENSITY_BATCH = 256
"""Particles per vectorised call of the log density for the final ELBO (bounds memory)."""


@dataclass(frozen=True)
class FlowSettings:
    """One flow fit: ``num_steps`` Adam steps at ``learning_rate`` of a ``batch_size``-particle
    STL ELBO, for a flow of ``flow_layers`` couplings of ``knots``-knot splines on
    ``[-interval, interval]`` with ``nn_width``-wide conditioners; then ``num_draws`` draws and a
    final ELBO of ``final_elbo_particles`` fresh particles."""

    num_steps: int
    batch_size: int
    learning_rate: float
    flow_layers: int
    knots: int
    interval: float
    nn_width: int
    num_draws: int
    final_elbo_particles: int
    precision: str = "float32"

    kind = "flow"

    def validate(self) -> None:
        """Raise ValueError naming the first impossible value."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        for name in ("num_steps", "batch_size", "flow_layers", "knots", "nn_width", "num_draws",
                     "final_elbo_particles"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("learning_rate", "interval"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) \
                    or not math.isfinite(value) or not value > 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def grad_evals(settings: FlowSettings) -> int:
    """Gradient evaluations of the log density per seed: one per ELBO particle and step."""
    return settings.num_steps * settings.batch_size


# Budgets: NUTS on the quick profile takes 4 chains x 1500 iterations, 10^4-10^5 gradients per
# seed (correlated_gaussian: ~38000); quick gives the flow 1000 x 32 = 32000, paper 8000 x 32.
# Smoke is plumbing only: a small flow that XLA compiles fast.
DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": dict(num_steps=200, batch_size=8, learning_rate=1e-3, flow_layers=2, knots=4,
                  interval=5.0, nn_width=16, num_draws=400, final_elbo_particles=200),
    "quick": dict(num_steps=1000, batch_size=32, learning_rate=1e-3, flow_layers=8, knots=8,
                  interval=5.0, nn_width=32, num_draws=4000, final_elbo_particles=4000),
    "paper": dict(num_steps=8000, batch_size=32, learning_rate=5e-4, flow_layers=8, knots=10,
                  interval=5.0, nn_width=64, num_draws=20000, final_elbo_particles=4000),
}


applicable = needs_latent_dim(
    2, "a coupling flow needs a latent dimension of at least 2 (it conditions one half of the "
       "latent vector on the other; this model has {dim}); use autodiagonalnormal or nuts instead")
"""A coupling flow splits the latent vector in two halves, so it needs D >= 2."""


def _typed_key(key: Any) -> Any:
    """FlowJAX wants new-style typed keys; the suite passes raw uint32 ones."""
    import jax

    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


def make_flow(key: Any, dim: int, settings: FlowSettings) -> Any:
    """The untrained flow on R^dim: a standard Normal base, ``flow_layers`` rational-quadratic
    spline couplings (``flowjax.flows.coupling_flow``) that start as the identity, then an
    elementwise affine map (the module docstring says why). Parameters are in JAX's default
    float type: the precision the caller traces in."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from flowjax.bijections import Affine, Chain, RationalQuadraticSpline
    from flowjax.distributions import StandardNormal, Transformed
    from flowjax.flows import coupling_flow

    splines = coupling_flow(
        _typed_key(key), base_dist=StandardNormal((dim,)),
        transformer=RationalQuadraticSpline(knots=settings.knots, interval=settings.interval),
        flow_layers=settings.flow_layers, nn_width=settings.nn_width)
    splines = jax.tree_util.tree_map(_zero_last_layer, splines,
                                     is_leaf=lambda node: isinstance(node, eqx.nn.MLP))
    return Transformed(splines.base_dist,
                       Chain([splines.bijection, Affine(jnp.zeros(dim), jnp.ones(dim))]))


def _zero_last_layer(node: Any) -> Any:
    """A conditioner with a zero last layer outputs zeros: FlowJAX's initial, identity spline."""
    import equinox as eqx
    import jax.numpy as jnp

    if not isinstance(node, eqx.nn.MLP):
        return node
    return eqx.tree_at(lambda mlp: (mlp.layers[-1].weight, mlp.layers[-1].bias), node,
                       replace_fn=jnp.zeros_like)


def affine_of(flow: Any) -> Any:
    """The final affine map of a ``make_flow`` flow (or of its parameter tree)."""
    return flow.bijection.bijections[-1]


def fit_flow(key: Any, flow: Any, logdensity_fn: Callable[[Any], Any],
             settings: FlowSettings) -> tuple[Any, Any]:
    """Train ``flow`` (made by ``make_flow``) on the STL ELBO of ``logdensity_fn``:
    ``(trained flow, loss per step)``, the loss being the batch's negative ELBO. One ``lax.scan``
    of Adam steps, traced into the caller's program (nothing here is jitted or synced with the
    host)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax
    import paramax

    params, static = eqx.partition(flow, eqx.is_inexact_array,
                                   is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
    labels = jax.tree_util.tree_map(lambda _: "splines", params)
    labels = eqx.tree_at(affine_of, labels, replace=jax.tree_util.tree_map(
        lambda _: "affine", affine_of(params)))
    optimizer = optax.apply_if_finite(optax.multi_transform(
        {"splines": optax.adam(settings.learning_rate),
         "affine": optax.adam(settings.learning_rate * AFFINE_STEP_FACTOR)}, labels),
        MAX_BAD_STEPS)

    def negative_elbo(params: Any, key: Any) -> Any:
        q = paramax.unwrap(eqx.combine(params, static))
        # STL: log q at the draws with the parameters held fixed drops the score term, whose
        # expectation is zero and whose variance does not vanish at the optimum.
        q_fixed = paramax.unwrap(eqx.combine(jax.lax.stop_gradient(params), static))
        x = q.sample(key, (settings.batch_size,))
        return jnp.mean(q_fixed.log_prob(x) - jax.vmap(logdensity_fn)(x))

    def step(carry: tuple, key: Any) -> tuple:
        params, opt_state = carry
        loss, grads = eqx.filter_value_and_grad(negative_elbo)(params, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (eqx.apply_updates(params, updates), opt_state), loss

    keys = jax.random.split(_typed_key(key), settings.num_steps)
    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), keys)
    return eqx.combine(params, static), losses


def all_finite(tree: Any) -> Any:
    """Whether every inexact array of ``tree`` (a flow's parameters) is finite (traced bool)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def build(spec: ModelSpec, data: Dataset, settings: FlowSettings, latent_info: LatentInfo,
          program_key: Mapping[str, Any] | None = None) -> Program:
    """Every seed's fit, draws and final ELBO in one compiled program (seeds in sequence),
    timed apart from its compile."""
    import jax

    from svi_bench.benchmarks.methods.log_density import constrain_draws, log_density

    sites = latent_info.sites + tuple(spec.extra_sites)
    kwargs = dict(data.model_kwargs)

    def one_seed(rng_key: Any) -> tuple:
        init_key, flow_key, fit_key, draw_key = jax.random.split(rng_key, 4)
        bridge = log_density(init_key, spec.model, kwargs, sites)
        flow = make_flow(flow_key, bridge.dim, settings)
        flow, losses = fit_flow(fit_key, flow, bridge.logdensity_fn, settings)
        # One sampling pass gives the draws and the final ELBO's particles (fresh draws of the
        # trained flow with their exact log q): XLA compiles the flow's sampling code once.
        n = max(settings.num_draws, settings.final_elbo_particles)
        x, log_q = flow.sample_and_log_prob(_typed_key(draw_key), (n,))
        draws = constrain_draws(bridge, x[:settings.num_draws])
        m = settings.final_elbo_particles
        log_p = jax.lax.map(bridge.logdensity_fn, x[:m], batch_size=LOG_DENSITY_BATCH)
        return losses, draws, log_p - log_q[:m], all_finite(flow)

    identity = None if program_key is None else {**program_key, "settings": repr(settings)}

    def program(rng_keys: Any) -> RunResult:
        out, timing = timed(jax.jit(lambda keys: jax.lax.map(one_seed, keys)), rng_keys,
                            identity=identity)
        losses, draws, log_weights, finite = (jax.tree_util.tree_map(np.asarray, o) for o in out)
        return RunResult(
            draws={site: v[:, None] for site, v in draws.items()},  # one chain
            grad_evals=np.full(len(losses), float(grad_evals(settings))),
            compile_s=timing.compile_s, run_s=timing.run_s, cache=timing.cache,
            host_others_share=timing.host_others_share, cost=timing.cost,
            losses=losses, log_weights=log_weights, params_finite=finite,
            columns={"num_draws": settings.num_draws, "num_steps": settings.num_steps,
                     "num_particles": settings.batch_size},
        )

    return program


FLOW_RQS = Method(
    name=NAME,
    family="vi",
    description=(
        "FlowJAX coupling flow of rational-quadratic splines on the unconstrained space, then an "
        "elementwise affine map, fitted by Adam at a small fixed step on a large-batch ELBO with "
        "the sticking-the-landing gradient: the flow VI recipe of Agrawal and Domke 2024 (arXiv "
        "2412.08824), reported there to match or surpass turnkey HMC. Splines: Durkan et al. "
        "2019 (arXiv 1906.04032); sticking the landing: Roeder et al. 2017 (arXiv 1703.09194)."),
    settings_type=FlowSettings,
    defaults=DEFAULTS,
    build=build,
    applicable=applicable,
    psis=True,  # the flow's log q is exact
    order=400,
    budget="num_steps",
)

METHODS = [FLOW_RQS]
