"""The MCMC runner: ``numpyro.infer.MCMC`` for any kernel, its chains vectorised, one after another, or split over
devices (``devices=``: a mesh of the devices of one process or several, through ``jax.shard_map``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import PartitionSpec
from numpyro.infer import HMC, MCMC
from numpyro.infer.mcmc import MCMCKernel

from probzoo.infer.devices import AXIS, DataParallel
from probzoo.infer.diagnostics import gradient_field
from probzoo.infer.programs import compiled_init
from probzoo.validation import check_choice, check_int, check_seed

__all__ = ["MCMCRun", "choose_chain_method", "run_counting_gradients", "run_mcmc", "sharded_chains"]


@dataclass
class MCMCRun:
    mcmc: MCMC
    wall_time: float
    chain_method: str
    # gradient evaluations (leapfrog steps) per iteration, (chain, draw), for kernels that count them
    warmup_steps: np.ndarray | None = None
    sample_steps: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"MCMCRun({type(self.mcmc.sampler).__name__}, num_chains={self.mcmc.num_chains}, "
                f"num_samples={self.mcmc.num_samples}, chain_method={self.chain_method!r}, "
                f"wall_time={self.wall_time:.2f}s)")

    def samples(self, group_by_chain: bool = False) -> dict[str, Any]:
        return self.mcmc.get_samples(group_by_chain=group_by_chain)


def choose_chain_method(num_chains: int) -> str:
    """"parallel" when there is a device per chain, "vectorized" otherwise ("sequential" for one chain)."""
    if num_chains == 1:
        return "sequential"
    return "parallel" if jax.local_device_count() >= num_chains else "vectorized"


def sharded_chains(parallel: DataParallel, num_chains: int) -> Callable[[Callable], Callable]:
    """A ``chain_method`` for ``numpyro.infer.MCMC`` that splits the chains over the devices of ``parallel``'s
    mesh (of one process or several) with ``jax.shard_map``, in place of ``pmap``.

    Each device runs its chains one after another (``lax.map``): every chain runs the same single-chain
    program from its own key, so the draws of chain i do not depend on how many devices there are. The
    draws come back replicated, so every process holds every chain.
    """
    parallel.check_batch(num_chains, "num_chains")

    def chain_method(single_chain: Callable) -> Callable:
        program = jax.jit(jax.shard_map(lambda chains: jax.lax.map(single_chain, chains), mesh=parallel.mesh,
                                        in_specs=PartitionSpec(AXIS), out_specs=PartitionSpec(AXIS),
                                        check_vma=False))

        def run(chains: Any) -> Any:
            return jax.tree.map(np.asarray, parallel.gather(program(parallel.distribute(chains))))

        return run

    return chain_method


def run_mcmc(
    kernel: MCMCKernel,
    *args: Any,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    thinning: int = 1,
    seed: int = 0,
    progress: bool = False,
    chain_method: str | None = None,
    init_params: Any = None,
    extra_fields: tuple[str, ...] = (),
    devices: Any = None,
    jit_model_args: bool = False,
    **kwargs: Any,
) -> MCMCRun:
    """Run ``kernel`` under ``numpyro.infer.MCMC`` on the model data ``*args``/``**kwargs``.

    ``jit_model_args`` (NumPyro's option) makes ``*args``/``**kwargs`` inputs of the compiled sampler rather than
    constants in it, so other values of the same shapes reuse it (they must then all be arrays).

    ``chain_method=None`` picks "parallel" (one device per chain, e.g. with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) when enough devices exist, else "vectorized".
    ``devices`` (None, N or "all") splits the chains over that many devices instead (:func:`sharded_chains`;
    ``chain_method`` is then "sharded"), the same draws per chain whatever their number.

    HMC and NUTS chains start as one compiled program (:func:`probzoo.infer.programs.compiled_init`; NumPyro
    starts vectorised and single chains op by op, seconds of compilation for a small model); ``kernel`` itself
    is left as it was given (the run's copy is ``MCMCRun.mcmc.sampler``).
    """
    if not isinstance(kernel, MCMCKernel):
        raise TypeError(f"kernel: expected a numpyro MCMCKernel, got {type(kernel).__name__}")
    num_warmup = check_int(num_warmup, "num_warmup", minimum=0)
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    num_chains = check_int(num_chains, "num_chains", minimum=1)
    seed = check_seed(seed)
    parallel = DataParallel.of(devices)
    if parallel is not None:
        if chain_method not in (None, "sharded"):
            raise ValueError(f"chain_method: {chain_method!r} with devices; devices splits the chains over the "
                             "devices (chain_method 'sharded'): give one or the other")
        method, runner = "sharded", sharded_chains(parallel, num_chains)
    else:
        method = chain_method or choose_chain_method(num_chains)
        runner = check_choice(method, "chain_method", ("parallel", "vectorized", "sequential"))
    if isinstance(kernel, HMC):  # NumPyro starts vectorised and single chains op by op (pmap and shard_map trace it)
        kernel = compiled_init(kernel)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                thinning=thinning, chain_method=runner, progress_bar=progress and parallel is None,
                jit_model_args=jit_model_args)
    t0 = time.perf_counter()
    warmup_steps, sample_steps = run_counting_gradients(mcmc, jax.random.PRNGKey(seed), args, kwargs,
                                                        extra_fields, init_params=init_params)
    jax.block_until_ready(mcmc.get_samples())
    return MCMCRun(mcmc=mcmc, wall_time=time.perf_counter() - t0, chain_method=method,
                   warmup_steps=None if warmup_steps is None else np.asarray(warmup_steps),
                   sample_steps=None if sample_steps is None else np.asarray(sample_steps))


def run_counting_gradients(mcmc: MCMC, rng_key: Any, args: tuple, kwargs: dict[str, Any],
                           extra_fields: tuple[str, ...] = (), init_params: Any = None) -> tuple[Any, Any]:
    """``mcmc.run`` that also returns the gradient evaluations (leapfrog steps) of every warm-up and sampling
    iteration, each (chain, draw), for kernels that count them (None, None otherwise).

    Warm-up runs apart (``MCMC.warmup`` collecting its ``num_steps``), then sampling continues from the
    warmed-up state with that state's own keys: the chains are those of a single ``run``. Both phases collect
    the same fields, so that with as many warm-up iterations as draws (and no thinning) they are one and the
    same program: the sampling phase then loads the warm-up's executable from the persistent compilation
    cache instead of compiling NUTS a second time (seconds a fit).
    """
    field = gradient_field(mcmc.sampler)
    if field is None:
        mcmc.run(rng_key, *args, init_params=init_params, extra_fields=extra_fields, **kwargs)
        return None, None
    fields = tuple(dict.fromkeys((*extra_fields, field)))
    warm = None
    if mcmc.num_warmup > 0:
        mcmc.warmup(rng_key, *args, collect_warmup=True, extra_fields=fields, init_params=init_params, **kwargs)
        warm = mcmc.get_extra_fields(group_by_chain=True)[field]
        rng_key = mcmc.post_warmup_state.rng_key
        init_params = None  # sampling continues from the warmed-up state
    mcmc.run(rng_key, *args, init_params=init_params, extra_fields=fields, **kwargs)
    steps = mcmc.get_extra_fields(group_by_chain=True)[field]
    if warm is None:
        warm = np.zeros(np.shape(steps)[:1] + (0,), np.int32)
    return warm, steps
