"""The document's linreg_outliers experiment as written there: MCMC.run and svi.run with progress bars.

Same work as ``svi-bench run --profile paper --models linreg_outliers --methods
nuts,manual:independent,autodiagonalnormal,automvn --seeds 1``: NUTS 1000 warm-up + 20000 draws,
then three guides for 10000 steps x 8 particles at Adam 1e-3, each followed by 40000 posterior
draws. Prints the wall time of each stage and in total; used for the side-by-side timing.
"""

from __future__ import annotations

import time

import jax
import numpyro
from numpyro import infer
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoDiagonalNormal, AutoMultivariateNormal

from svi_bench.models import linreg_outliers


def main() -> None:
    ds = linreg_outliers.SPEC.make_data()
    x, yerr, y = (ds.model_kwargs[k] for k in ("x", "yerr", "y"))
    model = linreg_outliers.model
    total = time.perf_counter()

    start = time.perf_counter()
    sampler = infer.MCMC(infer.NUTS(model), num_warmup=1000, num_samples=20000, num_chains=1,
                         progress_bar=True)
    sampler.run(jax.random.PRNGKey(3), x, yerr, y=y)
    jax.block_until_ready(sampler.get_samples())
    print(f"nuts: {time.perf_counter() - start:.2f} s")

    optimizer = numpyro.optim.Adam(step_size=0.001)
    guides = {
        "automvn": AutoMultivariateNormal(model),
        "autodiagonalnormal": AutoDiagonalNormal(model),
        "manual:independent": linreg_outliers.SPEC.guides["independent"],
    }
    for name, guide in guides.items():
        start = time.perf_counter()
        svi = SVI(model, guide, optim=optimizer, loss=Trace_ELBO(num_particles=8))
        result = svi.run(jax.random.PRNGKey(1), 10000, x, yerr, y=y)
        draws = Predictive(guide, params=result.params, num_samples=40000)(
            jax.random.PRNGKey(1), x=x, yerr=yerr, y=y)
        jax.block_until_ready(draws)
        print(f"{name}: {time.perf_counter() - start:.2f} s, "
              f"final loss {float(result.losses[-1000:].mean()):.2f}")
    print(f"total: {time.perf_counter() - total:.2f} s")


if __name__ == "__main__":
    main()
