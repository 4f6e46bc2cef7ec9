"""The three ways of handling the discrete y in the ELBO (relaxed, enum, score), the labelled rows of
semi-supervised training and the optimiser."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from jax.scipy.ndimage import map_coordinates
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


def affine_warp(images: jnp.ndarray, angle: jnp.ndarray, scale: jnp.ndarray, shift: jnp.ndarray) -> jnp.ndarray:
    """Images ``(n, h, w)`` each turned by ``angle[i]`` radians and scaled by ``scale[i]`` about its centre, then
    moved by ``shift[i]`` = (rows, columns) pixels. Each output pixel reads the input where the inverse map
    sends it, bilinearly interpolated; what comes in from outside the image is 0 (the background)."""
    _, h, w = images.shape
    rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing="ij")

    def one(image: jnp.ndarray, a: jnp.ndarray, s: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
        cos, sin = jnp.cos(a) / s, jnp.sin(a) / s   # the inverse of s R(a): R(-a) / s
        r, c = rows - t[0], cols - t[1]
        source = [cos * r - sin * c + (h - 1) / 2, sin * r + cos * c + (w - 1) / 2]
        return map_coordinates(image, source, order=1, mode="constant", cval=0.0)

    return jax.vmap(one)(images, angle, scale, shift)


def random_move(key: Any, x: jnp.ndarray, max_shift: int, max_rotation: float, max_scale: float,
                image_shape: tuple[int, int]) -> jnp.ndarray:
    """Each row of ``x`` (a flattened ``image_shape`` image) moved at random: without rotation and scaling, by a
    whole-pixel shift (:func:`random_shift`, the pixels copied); otherwise turned by an angle uniform in
    +-``max_rotation`` degrees, scaled by a factor uniform in 1 +- ``max_scale`` and shifted by up to ``max_shift``
    pixels each way (uniform, sub-pixel), bilinearly (:func:`affine_warp`)."""
    if max_rotation == 0 and max_scale == 0:
        return random_shift(key, x, max_shift, image_shape)
    n = x.shape[0]
    k_angle, k_scale, k_shift = jax.random.split(key, 3)
    angle = jnp.deg2rad(max_rotation) * jax.random.uniform(k_angle, (n,), minval=-1.0, maxval=1.0)
    scale = 1.0 + max_scale * jax.random.uniform(k_scale, (n,), minval=-1.0, maxval=1.0)
    shift = max_shift * jax.random.uniform(k_shift, (n, 2), minval=-1.0, maxval=1.0)
    return affine_warp(x.reshape(n, *image_shape), angle, scale, shift).reshape(x.shape)


def consistency_penalty(logits: jnp.ndarray, moved_logits: jnp.ndarray, threshold: float | None) -> jnp.ndarray:
    """Per row, how far q(y | x moved) is from q(y | x), the latter held fixed (the target, no gradient).

    ``threshold`` None: KL(q(y | x) || q(y | x moved)) (the Pi-model's soft target). A threshold c: the target
    is the hard label argmax q(y | x) where q gives it at least c, and the penalty -log q(that label | x moved)
    (FixMatch's pseudo-labels, Sohn et al. 2020); rows below the threshold add nothing.
    """
    target = jax.nn.log_softmax(jax.lax.stop_gradient(logits))
    log_moved = jax.nn.log_softmax(moved_logits)
    if threshold is None:
        return jnp.sum(jnp.exp(target) * (target - log_moved), -1)
    label = jnp.argmax(target, -1)
    confident = jnp.max(target, -1) >= math.log(threshold)
    return jnp.where(confident, -jnp.take_along_axis(log_moved, label[:, None], -1)[:, 0], 0.0)


def _optimiser(learning_rate: float) -> optax.GradientTransformation:
    """Adam for every parameter but the schedule's ``clock``, which advances by one per step."""
    learning_rate = check_positive(learning_rate, "learning_rate")

    def tick_update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        return jax.tree.map(jnp.ones_like, updates), state

    tick = optax.GradientTransformation(lambda params: optax.EmptyState(), tick_update)

    def labels(params: dict[str, Any]) -> dict[str, Any]:
        return {k: jax.tree.map(lambda _, k=k: "clock" if k == "clock" else "adam", v) for k, v in params.items()}

    return optax.multi_transform({"adam": optax.adam(learning_rate), "clock": tick}, labels)
