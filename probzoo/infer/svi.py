"""The SVI runner: an ELBO's steps, minibatched, run through the shared training loop (:mod:`probzoo.infer.loop`:
compiled chunks, NaN guard, progress, checkpoints and exact resume, callbacks).

Minibatching works through a subsampled plate: the model declares
``with numpyro.plate(plate, N) as idx: ... obs=x[idx]`` and the runner substitutes the indices of
each step's minibatch into that plate (in model and guide alike), so NumPyro scales the likelihood by
N / batch_size exactly as it does for its own ``subsample_size``. Batches are drawn without
replacement: one permutation of the data per epoch.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import optax
from numpyro import handlers
from numpyro.distributions.util import sum_rightmost
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.svi import SVIState
from numpyro.infer.util import compute_log_probs
from numpyro.optim import _NumPyroOptim, optax_to_numpyro
from numpyro.util import _validate_model, check_model_guide_match

from probzoo.infer.checkpoint import check_checkpointing, data_digest
from probzoo.infer.devices import DataParallel
from probzoo.infer.loop import NonFiniteLossError, chunk_length, run_loop
from probzoo.infer.programs import call_set_up, fresh_guide, guide_posterior, is_array
from probzoo.validation import check_int, check_positive, check_seed

__all__ = ["NonFiniteLossError", "OrderedTraceELBO", "SVIRun", "run_svi"]


class OrderedTraceELBO(Trace_ELBO):
    """``Trace_ELBO`` whose per-site terms are formed and summed in sorted order of the site names.

    NumPyro's ``Trace_ELBO`` forms the terms log p - log q in the order of a Python set of site names,
    which the per-process string-hash salt reorders: the loss then agrees across interpreters only to
    float32 rounding, and the traced program differs from one process to the next, so the persistent
    compilation cache never finds it again. In sorted order the program and the loss are the same in every
    process (the gradient of a sum never depended on the order). A point-mass guide site adds its log density
    without evaluating ``Delta.log_prob`` (see :func:`_log_q`).
    """

    def __init__(self, num_particles: int = 1, vectorize_particles: bool = True) -> None:
        # sum_sites=False: where NumPyro's own code runs (a multi-sample guide) it returns the terms by site
        super().__init__(num_particles=num_particles, vectorize_particles=vectorize_particles, sum_sites=False)

    def loss_with_mutable_state(self, rng_key: Any, param_map: dict[str, Any], model: Callable, guide: Callable,
                                *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.multi_sample_guide:   # NumPyro's own path, its terms then summed in sorted order
            out = super().loss_with_mutable_state(rng_key, param_map, model, guide, *args, **kwargs)
            return {**out, "loss": sum((out["loss"][k] for k in sorted(out["loss"])), start=jnp.array(0.0))}

        def particle(key: Any) -> tuple[Any, Any]:
            # NumPyro's single-particle ELBO (numpyro.infer.elbo.Trace_ELBO), its sites taken in sorted order
            params = param_map.copy()
            model_seed, guide_seed = jax.random.split(key)
            guide_trace = handlers.trace(handlers.substitute(handlers.seed(guide, guide_seed), data=param_map)
                                         ).get_trace(*args, **kwargs)
            guide_log_probs = _log_q(guide_trace)
            mutable = {n: site["value"] for n, site in guide_trace.items() if site["type"] == "mutable"}
            params.update(mutable)
            replayed = handlers.replay(handlers.seed(model, model_seed), guide_trace)
            model_log_probs, model_trace = compute_log_probs(replayed, args, kwargs, params)
            check_model_guide_match(model_trace, guide_trace)
            _validate_model(model_trace, plate_warning="loose")
            mutable.update({n: site["value"] for n, site in model_trace.items() if site["type"] == "mutable"})
            zero = jnp.array(0.0)
            elbo = sum((model_log_probs.get(n, zero) - guide_log_probs.get(n, zero)
                        for n in sorted(set(model_log_probs) | set(guide_log_probs))), start=zero)
            if mutable and self.num_particles > 1:
                warnings.warn("mutable state is currently ignored when num_particles > 1.", stacklevel=2)
                mutable = {}
            return elbo, (mutable or None)

        if self.num_particles == 1:
            elbo, mutable_state = particle(rng_key)
            return {"loss": -elbo, "mutable_state": mutable_state}
        elbos, mutable_state = self.vectorize_particles_fn(particle, jax.random.split(rng_key, self.num_particles))
        return {"loss": -jnp.mean(elbos), "mutable_state": mutable_state}


def _log_q(guide_trace: dict[str, Any]) -> dict[str, Any]:
    """The guide's log density at its own draws, by site, scaled and summed as NumPyro's ``compute_log_probs``
    does. A point mass (``Delta``, alone or inside ``Independent``: AutoDelta's sites) drawn at its own point
    contributes its ``log_density`` (0 for AutoDelta, so a MAP fit's ELBO is the model's log joint) without
    forming ``where(value == v, 0, -inf)``: the same number, but that term's comparison over every weight
    cost a MAP step of the MDN about 15 % of its time."""
    out = {}
    for name, site in guide_trace.items():
        if site["type"] != "sample":
            continue
        fn, value = site["fn"], site["value"]
        base, reinterpreted = fn, 0
        while isinstance(base, dist.Independent):
            reinterpreted += base.reinterpreted_batch_ndims
            base = base.base_dist
        if isinstance(base, dist.Delta) and value is base.v and not site["is_observed"]:
            full = jnp.broadcast_shapes(base.batch_shape, jnp.shape(base.log_density))
            log_q = sum_rightmost(jnp.broadcast_to(base.log_density, full), reinterpreted)
        elif site["intermediates"]:
            log_q = fn.log_prob(value, site["intermediates"])
        else:
            log_q = fn.log_prob(value)
        scale = site["scale"]
        out[name] = jnp.sum(log_q if scale is None else scale * log_q)
    return out


@dataclass
class SVIRun:
    """What :func:`run_svi` returns."""

    params: dict[str, Any]
    losses: np.ndarray
    state: SVIState
    guide: Callable
    wall_time: float
    setup_time: float
    compile_time: float
    num_steps: int
    steps_per_epoch: int | None
    loop_time: float = float("nan")  # seconds in the training loop's chunks, compilation excluded
    args: tuple = ()  # the data the run was given (references, not copies)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        last = f", final_loss={float(self.losses[-1]):.4g}" if len(self.losses) else ""
        return f"SVIRun(num_steps={self.num_steps}, wall_time={self.wall_time:.2f}s{last})"

    @property
    def run_time(self) -> float:
        """Seconds of optimisation: the wall time less set-up (initial state, final parameters) and compilation."""
        return self.wall_time - self.setup_time - self.compile_time

    def sample_posterior(self, rng_key: Any, num_draws: int) -> dict[str, np.ndarray]:
        """``num_draws`` draws from the fitted guide, given the run's data (one compiled program)."""
        return guide_posterior(self.guide, rng_key, self.params, num_draws, *self.args, **self.kwargs)


def _with_batch(fn: Callable, plate: str) -> Callable:
    def batched(*args: Any, _batch_idx: Any = None, **kwargs: Any) -> Any:
        if _batch_idx is None:
            return fn(*args, **kwargs)
        with handlers.substitute(data={plate: _batch_idx}):
            return fn(*args, **kwargs)

    return batched


def _split_static(tree: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    dynamic, static = {}, {}
    for k, v in tree.items():
        (dynamic if is_array(v) else static)[k] = v
    return dynamic, static


def _as_optim(optim: Any, learning_rate: float) -> _NumPyroOptim:
    if optim is None:
        return optax_to_numpyro(optax.adam(learning_rate))
    if isinstance(optim, _NumPyroOptim):
        return optim
    if isinstance(optim, optax.GradientTransformation):
        return optax_to_numpyro(optim)
    raise TypeError(f"optim: expected an optax GradientTransformation or a numpyro optimiser, got {type(optim)}")


def run_svi(
    model: Callable,
    guide: Callable,
    *args: Any,
    optim: Any = None,
    learning_rate: float = 1e-3,
    loss: Any = None,
    num_steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    data_size: int | None = None,
    plate: str = "data",
    seed: int = 0,
    init_params: dict[str, Any] | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
    callback: Callable[[int, np.ndarray, SVIState], Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
    settings: dict[str, Any] | None = None,
    desc: str = "SVI",
    devices: Any = None,
    split_rows: bool = True,
    stop: Callable[[SVIState], bool] | None = None,
    **kwargs: Any,
) -> SVIRun:
    """Run SVI on ``model``/``guide`` with data ``*args``/``**kwargs``.

    Budget: ``num_steps`` optimisation steps, or ``epochs`` passes over the data in minibatches of
    ``batch_size`` (the last incomplete batch of each epoch is dropped). Steps run inside one compiled loop
    in chunks of about ``chunk_size`` steps (whole epochs when minibatching), so Python runs once a chunk.
    ``init_params`` continues from given parameter values. ``checkpoint``/``checkpoint_every`` save the
    full SVI state atomically every so many steps (at the next chunk end); ``resume`` continues from such a
    file and ends with exactly the parameters of an uninterrupted run; it refuses a checkpoint of another
    run (budget, batching, seed, data or the caller's ``settings`` differ). ``callback(step, losses, state)``
    is called after every chunk; ``stop(state)``, asked after every chunk, ends the run early when true (a
    budget that stops on convergence; ``num_steps`` / ``epochs`` is then its cap). ``devices`` (None, N or
    "all"; see :mod:`probzoo.infer.devices`) splits each minibatch's rows of the ``plate`` over that many
    devices (the full data set when there are no minibatches), with the parameters and optimiser state
    replicated; with ``split_rows=False`` the loop only replicates the state and the data over the devices,
    and the model splits its own work over them.
    """
    seed = check_seed(seed)
    parallel = DataParallel.of(devices)
    learning_rate = check_positive(learning_rate, "learning_rate")
    if (num_steps is None) == (epochs is None):
        raise ValueError("num_steps, epochs: give exactly one budget")
    spe = None
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if data_size is None:
            if not args:
                raise ValueError("data_size: needed with batch_size when the data are not positional")
            data_size = int(np.shape(args[0])[0])
        data_size = check_int(data_size, "data_size", minimum=1)
        if batch_size > data_size:
            raise ValueError(f"batch_size: {batch_size} exceeds the number of data points ({data_size})")
        spe = data_size // batch_size
    if parallel is not None and split_rows:  # what the devices split: each minibatch, or every row each step
        if data_size is None:
            if not args:
                raise ValueError("devices: needs the data positionally (their rows are split over the devices)")
            data_size = check_int(int(np.shape(args[0])[0]), "data_size", minimum=1)
        if batch_size is None:
            parallel.check_batch(data_size, "devices: the number of data points (full-batch steps)")
        else:
            parallel.check_batch(batch_size)
    if epochs is not None:
        epochs = check_int(epochs, "epochs", minimum=1)
        total = epochs * (spe or 1)
    else:
        total = check_int(num_steps, "num_steps", minimum=1)
    if chunk_size is None:
        chunk_size = spe * max(1, math.ceil(50 / spe)) if spe else int(np.clip(math.ceil(total / 100), 1, 1000))
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    checkpoint_every = check_checkpointing(checkpoint, checkpoint_every)

    optimiser = _as_optim(optim, learning_rate)
    loss = loss if loss is not None else OrderedTraceELBO()
    dyn_args = [a if is_array(a) else None for a in args]
    static_args = [None if d is not None else a for a, d in zip(args, dyn_args, strict=True)]
    dyn_kwargs, static_kwargs = _split_static(kwargs)

    def call_args(dargs: list[Any]) -> list[Any]:
        return [d if d is not None else s for d, s in zip(dargs, static_args, strict=True)]

    # The run's keys (set-up; minibatch order) are inputs of its compiled programs, never constants in them:
    # a fit with another seed then runs the very programs of the first one (the persistent compilation cache
    # serves them) instead of compiling its own.
    keys = jax.random.split(jax.random.PRNGKey(seed))
    first_idx = None if spe is None else jnp.arange(batch_size)

    def traced_svi(dargs: list[Any], dkw: dict[str, Any], keys: Any,
                   init: dict[str, Any] | None = None) -> tuple[SVI, SVIState]:
        # every compiled program below sets up its own SVI and guide while it is traced (see
        # probzoo.infer.programs): NumPyro's set-up, run eagerly, would compile op by op
        svi = SVI(_with_batch(model, plate), _with_batch(fresh_guide(guide), plate), optimiser, loss)
        return svi, svi.init(keys[0], *call_args(dargs), init_params=init, _batch_idx=first_idx, **dkw,
                             **static_kwargs)

    t_call = time.perf_counter()
    state = call_set_up(lambda d, k, ks, i: traced_svi(d, k, ks, i)[1], dyn_args, dyn_kwargs, keys, init_params)
    jax.block_until_ready(state)
    setup_time = time.perf_counter() - t_call

    # what a checkpoint records of its run, and a resume must match: budget, batching, seed and data
    # and whatever else the caller names in ``settings`` (the model's configuration, method, learning rate)
    identity = {"total": total, "batch_size": batch_size, "data_size": data_size, "plate": plate, "seed": seed,
                "data": data_digest(dyn_args, dyn_kwargs), "settings": settings, "random_stream": "fold_in(step)"}
    # each compiled program sets up its SVI once at its top (traced_svi), outside its loops
    def one_step(svi: SVI, st: SVIState, step: Any, idx: Any, dargs: list[Any],
                 dkw: dict[str, Any]) -> tuple[SVIState, Any]:
        # The step's randomness is the run's key folded with the global step, not a chain of keys carried in
        # the state: an objective that draws nothing (MAP) then compiles without random-number code (a
        # carried key is split, a threefry hash, every step whether or not it is used), and a resumed run
        # draws what an uninterrupted one does. The state keeps the run's key.
        st_step, loss_value = svi.update(st._replace(rng_key=jax.random.fold_in(st.rng_key, step)),
                                         *call_args(dargs), _batch_idx=idx, **dkw, **static_kwargs)
        return st_step._replace(rng_key=st.rng_key), loss_value.astype(jnp.float32)

    # The chunk program of the shared loop: ``n`` (a run-time value, at most ``chunk_len``) steps from the
    # global step ``first``. Minibatches follow the same order as ever: epoch e visits the permutation drawn
    # with fold_in(key_data, e), batch after batch; the chunk loops over its epochs, and over each epoch's
    # steps inside, so the permutation is drawn once an epoch, outside the step's loop body.
    chunk_len = chunk_length(spe, chunk_size)

    def chunk_fn(st, dargs, dkw, keys, first, n):
        svi = traced_svi(dargs, dkw, keys)[0]
        key_data = keys[1]
        losses = jnp.zeros((chunk_len,), jnp.float32)
        if spe is None:
            # over several devices, every row of the plate each step, split over them
            every_row = None if parallel is None or not split_rows else parallel.split(jnp.arange(data_size))

            def body(step, carry):
                s, ls = carry
                s, loss_i = one_step(svi, s, step, every_row, dargs, dkw)
                return s, jax.lax.dynamic_update_index_in_dim(ls, loss_i, step - first, 0)

            return jax.lax.fori_loop(first, first + n, body, (st, losses))

        def epoch_body(e, carry):
            epoch = first // spe + e
            perm = jax.random.permutation(jax.random.fold_in(key_data, epoch), data_size)

            def step_body(step, c):
                s, ls = c
                idx = jax.lax.dynamic_slice_in_dim(perm, (step - epoch * spe) * batch_size, batch_size)
                if parallel is not None and split_rows:
                    idx = parallel.split(idx)
                s, loss_i = one_step(svi, s, step, idx, dargs, dkw)
                return s, jax.lax.dynamic_update_index_in_dim(ls, loss_i, step - first, 0)

            lo, hi = jnp.maximum(first, epoch * spe), jnp.minimum(first + n, (epoch + 1) * spe)
            return jax.lax.fori_loop(lo, hi, step_body, carry)

        epochs_touched = jnp.where(n > 0, (first + n - 1) // spe - first // spe + 1, 0)
        return jax.lax.fori_loop(0, epochs_touched, epoch_body, (st, losses))

    run = run_loop(chunk_fn, state, (dyn_args, dyn_kwargs, keys), total=total, steps_per_epoch=spe,
                   chunk_size=chunk_size, identity=identity, desc=desc, progress=progress, checkpoint=checkpoint,
                   checkpoint_every=checkpoint_every, resume=resume, callback=callback, parallel=parallel,
                   stop=stop)
    state, compile_time = run.state, run.compile_time
    jax.block_until_ready(state)
    t_params = time.perf_counter()
    params = call_set_up(lambda st, d, k, ks: traced_svi(d, k, ks)[0].get_params(st), state, dyn_args, dyn_kwargs,
                         keys)
    jax.block_until_ready(params)
    t_end = time.perf_counter()
    return SVIRun(
        params=params,
        losses=run.losses,
        state=state,
        guide=guide,
        args=tuple(args),
        kwargs=dict(kwargs),
        wall_time=t_end - t_call,
        setup_time=setup_time + (t_end - t_params),
        compile_time=compile_time,
        num_steps=total,
        steps_per_epoch=spe,
        loop_time=run.wall_time - run.compile_time,
    )
