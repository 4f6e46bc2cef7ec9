"""The training loop that every iterative fit runs through: SVI of every model and the RBM's CD / PCD.

A fit hands the loop its state (a pytree), its data and one pure function that advances the state by
``n`` steps from global step ``first``: ``chunk(state, *operands, first, n) -> (state, losses)``, with
``losses`` of a fixed length (the chunk length; the first ``n`` entries are the steps run). The loop
compiles that function once and calls it chunk after chunk, so Python runs once a chunk, never per step,
and a last partial chunk or a resumed run reuses the same program. Unless the fit has a stopping rule, the
loop keeps the next chunk dispatched while it handles the one before, so the device never waits for the host.
Between chunks it does what every fit needs, in one place:

- the NaN guard: a non-finite loss (or state, where the fit gives ``finite``) stops the run with
  :class:`NonFiniteLossError`, naming the step;
- the progress bar (steps, with the chunk's mean loss, and an optional line per chunk);
- checkpoints: the state, the step and the loss trace, written atomically every ``checkpoint_every``
  steps (at the next chunk end) and at the end;
- exact resume: one check (the run's ``identity``: budget, batching, seed, data digest and the fit's
  settings) before the state is restored; the resumed run executes the same compiled program from the
  restored state, so it ends with exactly the state of an uninterrupted run;
- callbacks ``callback(step, losses, state)`` after every chunk, and the loss history;
- a stopping rule ``stop(state)``, asked after every chunk: a fit that stops on convergence ends there
  (with a checkpoint, when it writes them); as it reads only the state, a resumed run stops where an
  uninterrupted one does;
- data parallelism (``parallel``, a :class:`~probzoo.infer.devices.DataParallel`): the state and the data
  replicated over a mesh of devices (of one process or several), the chunk's minibatches split over it by
  the chunk itself; only process 0 writes checkpoints and shows progress.

Chunks are laid out from step 0 (:func:`chunk_plan`), whole epochs at a time when the fit minibatches, so
a resumed run follows the schedule of an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from probzoo.infer.checkpoint import check_resume, load_checkpoint, save_checkpoint
from probzoo.infer.devices import DataParallel, is_writer

__all__ = ["LoopRun", "NonFiniteLossError", "chunk_length", "chunk_plan", "run_loop"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


@dataclass
class LoopRun:
    """What :func:`run_loop` returns: the final state, the loss of every step (float32), the seconds spent
    compiling the chunk program and the loop's wall time (compilation included)."""

    state: Any
    losses: np.ndarray
    compile_time: float
    wall_time: float

    def __repr__(self) -> str:
        return f"LoopRun(steps={len(self.losses)}, wall_time={self.wall_time:.2f}s)"


def chunk_length(steps_per_epoch: int | None, chunk_size: int) -> int:
    """Steps in a full chunk: about ``chunk_size``, whole epochs when minibatching."""
    if steps_per_epoch is None:
        return chunk_size
    return steps_per_epoch * max(1, chunk_size // steps_per_epoch)


def chunk_plan(total: int, start: int, steps_per_epoch: int | None, chunk_size: int) -> list[tuple[int, int]]:
    """Chunks as (first step, number of steps), laid out from global step 0 (so a resumed run follows the
    same schedule), skipping those before ``start``. With minibatches a chunk is whole epochs, or the last,
    partial epoch."""
    plan, step = [], 0
    per_chunk = chunk_length(steps_per_epoch, chunk_size)
    while step < total:
        length = min(per_chunk, total - step)
        if steps_per_epoch is not None and length > steps_per_epoch:
            length -= length % steps_per_epoch  # whole epochs; a partial epoch only at the very end
        if step >= start:
            plan.append((step, length))
        step += length
    return plan


def run_loop(
    chunk: Callable[..., tuple[Any, Any]],
    state: Any,
    operands: tuple[Any, ...] = (),
    *,
    total: int,
    steps_per_epoch: int | None = None,
    chunk_size: int,
    identity: dict[str, Any],
    desc: str,
    progress: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
    callback: Callable[[int, np.ndarray, Any], Any] | None = None,
    finite: Callable[[Any], bool] | None = None,
    log: Callable[[int, np.ndarray], str | None] | None = None,
    parallel: DataParallel | None = None,
    stop: Callable[[Any], bool] | None = None,
) -> LoopRun:
    """Run ``chunk`` from ``state`` for ``total`` steps (see the module docstring).

    ``operands`` (the data) are passed to every chunk as arguments of the compiled program, never baked
    into it. ``identity`` is what a checkpoint records of its run and a resume must match (with a
    ``"total"`` entry, a resume must also have the same number of steps; without one it may run longer).
    ``finite(state)`` (optional) is checked after each chunk besides the losses. ``log(step, chunk_losses)``
    may return a line that the progress bar prints after the chunk (with ``progress``). ``stop(state)``
    (optional) ends the run after a chunk for which it is true, before ``total``. With ``parallel``
    the state and the operands are replicated over its devices and the state stays replicated from chunk
    to chunk; the returned state is on the host (NumPy), the same in every process.
    """
    t0 = time.perf_counter()
    start, losses_done = 0, np.zeros((0,), np.float32)
    if resume is not None:
        ckpt = load_checkpoint(resume)
        if "total" in identity and ckpt.meta.get("total") not in (None, total):
            raise ValueError(f"resume: the checkpoint was written by a run of {ckpt.meta['total']} steps, "
                             f"this run has {total}")
        check_resume(ckpt.meta, identity)
        state = ckpt.restore(state)
        start, losses_done = int(ckpt.step), np.asarray(ckpt.losses, np.float32)
        if start > total:
            raise ValueError(f"resume: the checkpoint is at step {start}, beyond this run's {total}")
    plan = chunk_plan(total, start, steps_per_epoch, chunk_size)
    if start and plan and plan[0][0] != start:
        raise ValueError("resume: the checkpoint's step does not fall on a chunk boundary of this run")

    writer = is_writer()
    progress = progress and writer
    if parallel is not None:
        state, operands = parallel.replicate(state), parallel.replicate(tuple(operands))
    compile_time, program = 0.0, None
    loss_parts = [losses_done]
    step = last_saved = start
    bar = tqdm(total=total, initial=start, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    # Without a stopping rule the loop runs one chunk ahead: chunk k + 1 is dispatched (JAX runs it
    # asynchronously) before chunk k's losses are read, so the device never waits for the host's work between
    # chunks (reading the losses, the NaN guard, the bar, checkpoints, callbacks). Each chunk's results are
    # still handled in order, with that chunk's state; a NaN stops the run at its chunk, and the chunk run
    # ahead is dropped. With ``stop`` the rule must see a chunk's state before the next one starts, or a fit
    # that stops would have run a chunk for nothing.
    ahead = stop is None
    in_flight: list[tuple[int, int, Any, Any]] = []  # (first, length, state after the chunk, its losses)
    chunks = iter(plan)
    try:
        while True:
            while len(in_flight) < (2 if ahead else 1) and (chunk_range := next(chunks, None)) is not None:
                first, length = chunk_range
                latest = in_flight[-1][2] if in_flight else state
                args = (latest, *operands, jnp.asarray(first, jnp.int32), jnp.asarray(length, jnp.int32))
                if program is None:
                    t_compile = time.perf_counter()
                    # with a mesh, the state and the losses come back replicated, ready for the next chunk
                    jitted = jax.jit(chunk) if parallel is None else jax.jit(chunk, out_shardings=parallel.replicated)
                    program = jitted.lower(*args).compile()
                    compile_time = time.perf_counter() - t_compile
                in_flight.append((first, length, *program(*args)))
            if not in_flight:
                break
            _, length, state, chunk_losses = in_flight.pop(0)
            chunk_losses = np.asarray(chunk_losses, dtype=np.float32)[:length]
            bad = ~np.isfinite(chunk_losses)
            if bad.any():
                at = step + int(np.argmax(bad)) + 1
                raise NonFiniteLossError(f"{desc}: the loss became {chunk_losses[np.argmax(bad)]} at step {at} "
                                         f"of {total}; stopping (lower the learning rate, or check the data's "
                                         "scale)")
            if finite is not None and not finite(state):
                raise NonFiniteLossError(f"{desc}: the parameters became non-finite by step {step + length} of "
                                         f"{total}; stopping (lower the learning rate)")
            step += length
            loss_parts.append(chunk_losses)
            bar.update(length)
            bar.set_postfix(loss=f"{float(np.mean(chunk_losses)):.4g}")
            if progress and log is not None and (line := log(step, chunk_losses)):
                bar.write(line)
            done = step == total or (stop is not None and bool(stop(state)))
            if writer and checkpoint is not None and checkpoint_every is not None and (
                    step // checkpoint_every > last_saved // checkpoint_every or done):
                save_checkpoint(checkpoint, state, step, np.concatenate(loss_parts), **identity)
                last_saved = step
            if callback is not None:
                callback(step, np.concatenate(loss_parts), state)
            if done:
                break
    finally:
        bar.close()
    jax.block_until_ready(state)
    if parallel is not None:  # what follows the loop (draws, scores, figures) runs in each process on its own
        state = jax.tree.map(np.asarray, state)
    return LoopRun(state=state, losses=np.concatenate(loss_parts), compile_time=compile_time,
                   wall_time=time.perf_counter() - t0)
