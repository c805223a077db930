"""NUTS chains for a reference build: in parallel across the host's CPU devices, chunk by chunk.

A reference is not a timed run, so it may use every core: its chains are spread over JAX's
devices (``jax.pmap``; on a CPU host their number is ``--xla_force_host_platform_device_count``,
which ``host_device_flags`` sets before JAX starts), each device running its share of the chains
one after another (``lax.map``), as ``inference.nuts.run_nuts`` runs them all on one. The chains
advance ``CHUNK`` iterations per call, so a build can report its progress between calls and
extend its sampling without repeating the warm-up. A chain's draws depend on its key only: not
on the number of devices, nor on how its iterations are split into calls.

The grid's timed NUTS runs stay in ``inference.nuts`` (one device, one program, timing lock).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.inference.nuts import make_nuts, nuts_init, nuts_step
from svi_bench.benchmarks.inference.settings import NUTSSettings

CHUNK = 250
"""Iterations a chain advances per call by default: the grain of the progress line and of
extensions."""

CHAIN_METHOD = "parallel"
"""How the chains run, as NumPyro names it: in parallel across devices (each device's share of
the chains in sequence)."""

_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def host_device_flags(flags: str, cores: int | None = None) -> str:
    """``flags`` (an ``XLA_FLAGS`` value) asking for one CPU device per core, unless they already
    name a device count. Must be in the environment before JAX starts."""
    if _DEVICE_FLAG in flags:
        return flags
    count = cores or os.cpu_count() or 1
    return f"{flags} {_DEVICE_FLAG}={count}".strip()


def chain_devices(num_chains: int) -> int:
    """Devices the chains run on: the most of JAX's devices that share the chains evenly."""
    available = jax.local_device_count()
    return max(d for d in range(1, min(available, num_chains) + 1) if num_chains % d == 0)


class Chunk(NamedTuple):
    """What one call gave every chain (leading axes: chain, iteration)."""

    draws: dict[str, np.ndarray]  # empty in warm-up
    num_steps: np.ndarray
    diverging: np.ndarray
    energy: np.ndarray
    seconds: float  # the call's run time (its compile apart)


class ReferenceChains:
    """``settings.num_chains`` NUTS chains (its mass matrix, acceptance, tree depth and warm-up),
    started from ``keys`` and advanced ``CHUNK`` iterations a call: ``warm_up`` then ``draw``."""

    def __init__(self, model: Callable[..., None], model_kwargs: Mapping[str, Any],
                 sites: Sequence[str], settings: NUTSSettings, keys: jax.Array) -> None:
        self.settings = settings
        self.devices = chain_devices(settings.num_chains)
        self.compile_s = 0.0
        self.run_s = 0.0
        self.warmed = 0  # warm-up iterations done
        self.drawn = 0  # draws done
        self.gradients = 0  # leapfrog steps (gradient evaluations) of every chain so far
        per_device = settings.num_chains // self.devices
        self._keys = np.asarray(keys).reshape(self.devices, per_device, *keys.shape[1:])
        self._programs: dict[tuple[str, int], Any] = {}
        self._model, self._kwargs, self._sites = model, model_kwargs, tuple(sites)
        self._state = self._call("start", 0, self._keys)

    @property
    def dimension(self) -> int:
        """The unconstrained dimension of the posterior (what a dense mass matrix spans)."""
        return int(sum(np.prod(leaf.shape[2:]) for leaf in jax.tree.leaves(self._state.z)))

    def warm_up(self, length: int = CHUNK) -> Chunk:
        """``length`` more warm-up (adaptation) iterations of every chain."""
        length = min(length, self.settings.num_warmup - self.warmed)
        if length <= 0:
            raise ValueError("the warm-up is done")
        self.warmed += length
        return self._advance("warm", length)

    def draw(self, length: int = CHUNK) -> Chunk:
        """``length`` more draws of every chain, after the warm-up."""
        if self.warmed < self.settings.num_warmup:
            raise ValueError("draws come after the warm-up")
        self.drawn += length
        return self._advance("draw", length)

    def _advance(self, kind: str, length: int) -> Chunk:
        run_s = self.run_s
        self._state, out = self._call(kind, length, self._state)
        out = jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]), jax.device_get(out))
        draws, num_steps, diverging, energy = out
        self.gradients += int(num_steps.sum())
        return Chunk(draws, num_steps, diverging, energy, self.run_s - run_s)

    def _call(self, kind: str, length: int, arg: Any) -> Any:
        if (kind, length) not in self._programs:
            start = time.perf_counter()
            program = jax.pmap(self._per_device(kind, length))
            self._programs[kind, length] = jax_setup.lower(program, arg).compile()
            self.compile_s += time.perf_counter() - start
        start = time.perf_counter()
        out = jax.block_until_ready(self._programs[kind, length](arg))
        self.run_s += time.perf_counter() - start
        return out

    def _per_device(self, kind: str, length: int) -> Callable[[Any], Any]:
        """One device's program: its chains one after another."""
        model, kwargs, settings, sites = self._model, self._kwargs, self.settings, self._sites

        def kernel_for(key: jax.Array) -> tuple[Any, Any]:
            kernel = make_nuts(model, settings)
            return kernel, nuts_init(kernel, key, settings, kwargs)

        def start(key: jax.Array) -> Any:
            return kernel_for(key)[1]

        def advance(state: Any) -> tuple[Any, tuple]:
            kernel, _ = kernel_for(state.rng_key)  # sets the kernel up; its state is unused
            record = (lambda s: (s.z, s.num_steps, s.diverging, s.energy)) if kind == "draw" \
                else (lambda s: ({}, s.num_steps, s.diverging, s.energy))
            state, (z, num_steps, diverging, energy) = jax.lax.scan(
                nuts_step(kernel, kwargs, record), state, None, length=length)
            draws = {}
            if kind == "draw":
                constrained = jax.vmap(kernel.postprocess_fn((), kwargs))(z)
                draws = {site: constrained[site] for site in sites}
            return state, (draws, num_steps, diverging, energy)

        one_chain = start if kind == "start" else advance
        return lambda batch: jax.lax.map(one_chain, batch)
