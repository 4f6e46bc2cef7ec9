"""The three ways of handling the discrete y in the ELBO (relaxed, enum, score), the labelled rows of
semi-supervised training and the optimiser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro import handlers
from numpyro.infer import TraceEnum_ELBO, TraceGraph_ELBO

from probzoo.infer.svi import OrderedTraceELBO
from probzoo.validation import (
    check_positive,
)


def elbo_loss(method: str, num_particles: int = 1) -> Any:
    """The NumPyro ELBO that ``method`` trains with (on ``config_enumerate(guide)`` for "enum")."""
    if method == "enum":
        return TraceEnum_ELBO(num_particles=num_particles, max_plate_nesting=1)
    if method == "score":
        return TraceGraph_ELBO(num_particles=num_particles)
    return OrderedTraceELBO(num_particles=num_particles)


@contextmanager
def _labelled_rows(labels: Any, labelled: Any, batch: int, scale: float) -> Iterator[tuple[jnp.ndarray, jnp.ndarray]]:
    """The plate "labelled" over the labelled rows (a minibatch of at most ``batch``), each weighted ``scale``;
    yields the rows' indices into X and their labels. Model and guide must subsample it alike."""
    L = np.shape(labelled)[0]
    with handlers.scale(scale=scale), numpyro.plate("labelled", L, subsample_size=min(L, batch)) as j:
        i = jnp.asarray(labelled)[j]
        yield i, jnp.asarray(labels)[i]


def random_shift(key: Any, x: jnp.ndarray, max_shift: int, image_shape: tuple[int, int]) -> jnp.ndarray:
    """Each row of ``x`` (a flattened ``image_shape`` image) moved by its own random whole-pixel shift of at most
    ``max_shift`` each way, vertically and horizontally; what moves in from the edge is 0 (the background)."""
    h, w = image_shape
    padded = jnp.pad(x.reshape(-1, h, w), ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    corner = jax.random.randint(key, (x.shape[0], 2), 0, 2 * max_shift + 1)
    moved = jax.vmap(lambda image, c: jax.lax.dynamic_slice(image, (c[0], c[1]), (h, w)))(padded, corner)
    return moved.reshape(x.shape)


def _optimiser(learning_rate: float) -> optax.GradientTransformation:
    """Adam for every parameter but the schedule's ``clock``, which advances by one per step."""
    learning_rate = check_positive(learning_rate, "learning_rate")

    def tick_update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        return jax.tree.map(jnp.ones_like, updates), state

    tick = optax.GradientTransformation(lambda params: optax.EmptyState(), tick_update)

    def labels(params: dict[str, Any]) -> dict[str, Any]:
        return {k: jax.tree.map(lambda _, k=k: "clock" if k == "clock" else "adam", v) for k, v in params.items()}

    return optax.multi_transform({"adam": optax.adam(learning_rate), "clock": tick}, labels)
