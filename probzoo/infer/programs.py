"""Whole compiled programs in place of JAX's op-by-op dispatch.

Outside ``jax.jit`` every JAX operation is compiled on its own the first time it meets a new shape:
about 40 ms of XLA each on a CPU. Setting up a NumPyro SVI run evaluates the model and guide eagerly
(the autoguide's prototype trace, its search for valid initial values, the gradient of the potential),
which costs a few hundred such compilations, 10-20 s before the first step of a small network and again
for every new data shape. Traced inside one ``jax.jit`` the same work is a single program compiled in
well under a second, and the persistent compilation cache can keep it.

NumPyro's MCMC starts its HMC and NUTS chains the same way: ``HMC.init`` (the model's prototype trace, the
search for valid starting values, the potential and its gradient, the warm-up's first step size) runs op by
op, under ``vmap`` for vectorised chains: about 10 s for a network of a few dozen weights.
:func:`compiled_init` runs it as one program.

One catch: an autoguide sets itself up on its first call and keeps what it found (its prototype trace,
starting values, transforms). Set up inside a traced program those are tracers that must not leak into
another program, so each program gets a :func:`fresh_guide`, a copy of the caller's guide that sets
itself up inside that program; the caller's guide object is never modified.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from numpyro import handlers
from numpyro.infer.autoguide import AutoGuide
from numpyro.infer.hmc import HMC

__all__ = ["DRAWS_OPTIONS", "SET_UP_OPTIONS", "call_compiled", "call_draws", "call_set_up", "compiled_init",
           "fresh_guide", "guide_posterior", "is_array", "set_up"]


def is_array(value: Any) -> bool:
    """Whether ``value`` is traced as data (NumPy or JAX array) rather than held as a constant of the program."""
    return isinstance(value, (np.ndarray, jax.Array))


# XLA's backend optimisations (LLVM's) cost more time to compile than they save on a program that runs once and
# does little work (a guide's set-up on one minibatch, a network's initialisation): such programs compile with
# them off, about twice as fast. Programs that do the bulk work (training chunks, predictions) keep them; a
# guide's draws compile at level 1 (below).
SET_UP_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

# A trained guide's draws and its importance ratios (guide and model evaluated once per draw, vectorised over the
# draws) compile at XLA's backend optimisation level 1 instead of its default 3: LLVM's further passes took 16-67 %
# of their compilation (a 4-unit MDN's mean-field guide: 1.52 s for the draws against 0.69 s, 2.63 s for the
# ratios against 1.79 s) and did not make them run faster (the ratios of a 64-64 MDN over 10,000 points, 1.6-1.7 s
# at either level). ``python benchmarks/compile_levels.py`` measures both (docs/benchmarks.md).
DRAWS_OPTIONS = {"xla_backend_optimization_level": 1}


def call_compiled(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` as one compiled program: array leaves are its inputs, anything else a constant.

    Each call traces and compiles anew (the persistent compilation cache spares the compilation when the
    program was seen before), so use it for work done once per fit, not inside a loop.
    """
    return _call(fn, args, kwargs, None)


def call_draws(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """:func:`call_compiled` for a program that evaluates a guide (and the model) once per posterior draw:
    compiled at XLA's backend optimisation level 1 (``DRAWS_OPTIONS``): 0.3-0.8 of the default level's compile
    time, the same run time."""
    return _call(fn, args, kwargs, DRAWS_OPTIONS)


def call_set_up(fn: Callable[..., Any], *args: Any) -> Any:
    """:func:`call_compiled` for a cheap program run once (set-up work): compiled without XLA's backend
    optimisations (``SET_UP_OPTIONS``), which would cost more compile time than they save."""
    return _call(fn, args, {}, SET_UP_OPTIONS)


def _call(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any], options: dict[str, Any] | None) -> Any:
    leaves, treedef = jax.tree.flatten((args, kwargs))
    traced = [is_array(leaf) for leaf in leaves]

    def program(arrays: list[Any]) -> Any:
        it = iter(arrays)
        a, k = jax.tree.unflatten(treedef, [next(it) if t else leaf for leaf, t in zip(leaves, traced, strict=True)])
        return fn(*a, **k)

    inputs = [leaf for leaf, t in zip(leaves, traced, strict=True) if t]
    if options is None:
        return jax.jit(program)(inputs)
    return jax.jit(program).lower(inputs).compile(compiler_options=options)(inputs)


def compiled_init(kernel: HMC) -> HMC:
    """A copy of the HMC or NUTS ``kernel`` whose ``init`` (what ``numpyro.infer.MCMC`` calls to start its chains)
    runs as one compiled program instead of op by op. The chains start where NumPyro's own ``init`` starts them
    (the same keys, the same search for valid values), up to rounding. The caller's kernel is not modified; a
    copy of the copy (NumPyro's composite kernels copy the kernels they hold) keeps the compiled ``init``.

    The model's data are constants of that program, not inputs: ``init`` leaves closures on the kernel (the
    warm-up's step-size search holds the potential, the potential holds the data) that the sampling program
    calls later, and a traced value in them would leak out of this program. NumPyro refuses starting values
    whose potential or gradient is not finite only outside a trace; the same check follows the program.
    Called inside a traced program (chains mapped over devices), ``init`` is NumPyro's own, already compiled
    as a part of that program.
    """
    if not isinstance(kernel, HMC):
        raise TypeError(f"kernel: expected numpyro's HMC or NUTS, got {type(kernel).__name__}")
    cls = _with_compiled_init(type(kernel))
    copied = cls.__new__(cls)
    copied.__dict__.update(vars(kernel))  # a shallow copy, as copy.copy makes, of the compiled-init class
    return copied


class _CompiledInit:
    """Mixin of :func:`compiled_init`: ``init`` as one compiled program."""

    def init(self, rng_key: Any, num_warmup: int, init_params: Any = None, model_args: tuple = (),
             model_kwargs: Mapping[str, Any] | None = None) -> Any:
        kwargs = dict(model_kwargs or {})
        eager = super().init  # type: ignore[misc]
        if any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves((rng_key, init_params, model_args, kwargs))):
            return eager(rng_key, num_warmup, init_params, model_args, kwargs)
        program = jax.jit(lambda key, params: eager(key, num_warmup, params, model_args, kwargs))
        state = program.lower(rng_key, init_params).compile(compiler_options=SET_UP_OPTIONS)(rng_key, init_params)
        if not (np.all(np.isfinite(np.asarray(state.potential_energy)))
                and all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(state.z_grad))):
            raise RuntimeError("Cannot find valid initial parameters. Please check your model again. (The "
                               "potential energy or its gradient is not finite where the chains start: "
                               f"{np.asarray(state.potential_energy)}.)")
        return state


@functools.cache
def _with_compiled_init(cls: type) -> type:
    if issubclass(cls, _CompiledInit):
        return cls
    # the kernel's own name, so that reprs and reports read as before
    return type(cls.__name__, (_CompiledInit, cls), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})


def fresh_guide(guide: Callable) -> Callable:
    """A copy of ``guide`` that sets itself up anew (a guide that is a plain function is returned as is).

    An autoguide's containers are copied too (and the guides inside an ``AutoGuideList``), so setting up the
    copy writes nothing into the original. A guide that was already set up outside any trace keeps its
    (concrete) set-up.
    """
    if not isinstance(guide, AutoGuide):
        return guide
    copied = copy.copy(guide)
    for name, value in vars(guide).items():
        if isinstance(value, AutoGuide):
            setattr(copied, name, fresh_guide(value))
        elif isinstance(value, list):
            setattr(copied, name, [fresh_guide(v) for v in value])
        elif isinstance(value, (dict, set)):
            setattr(copied, name, copy.copy(value))
    return copied


def set_up(guide: Callable, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
    """Let ``guide`` set itself up (an autoguide does on its first call), its parameters fixed at ``params``."""
    with handlers.block(), handlers.seed(rng_seed=0), handlers.substitute(data=dict(params)):
        guide(*args, **kwargs)


def guide_posterior(guide: Callable, rng_key: Any, params: Mapping[str, Any], num_draws: int,
                    *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    """``guide.sample_posterior(rng_key, params, *args, sample_shape=(num_draws,))`` as one compiled program.

    ``params`` are the constrained values of the guide's parameters (what ``SVI.get_params`` returns); the
    draws include the model's deterministic sites where the guide's ``sample_posterior`` adds them.
    """

    def program(rng_key: Any, params: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        g = fresh_guide(guide)
        set_up(g, params, *args, **kwargs)
        return g.sample_posterior(rng_key, params, *args, sample_shape=(num_draws,), **kwargs)

    draws = call_draws(program, rng_key, dict(params), tuple(args), dict(kwargs))
    return {k: np.asarray(v) for k, v in draws.items()}
