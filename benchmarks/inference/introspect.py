"""What a model's latent space looks like: site names, shapes and unconstrained dimension."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from numpyro.infer.util import initialize_model


class LatentInfo(NamedTuple):
    sites: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]
    unconstrained_dim: int


def latent_info(model: Callable[..., None], model_kwargs: Mapping[str, Any]) -> LatentInfo:
    """The model's latent sample sites (not observed, not auxiliary) and their dimensions."""
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=dict(model_kwargs))
    tr = info.model_trace  # an initialised trace: ImproperUniform sites cannot be sampled
    sites = tuple(
        name
        for name, site in tr.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and not site.get("infer", {}).get("is_auxiliary", False)
    )
    shapes = {name: tuple(np.shape(tr[name]["value"])) for name in sites}
    dim = int(sum(np.size(v) for v in info.param_info.z.values()))
    return LatentInfo(sites=sites, shapes=shapes, unconstrained_dim=dim)
