"""The RBM's energy, free energy and conditionals (the math every other module of the package uses).

An RBM with parameters ``{"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,)}`` has

    E(v, h) = -v W h - b.v - c.h,        p(v, h) = exp(-E(v, h)) / Z,
    F(v)    = -b.v - sum_j softplus(c_j + (v W)_j),   p(v) = exp(-F(v)) / Z,

and both conditionals factorise: p(h_j = 1 | v) = sigmoid(c_j + (v W)_j), p(v_i = 1 | h) =
sigmoid(b_i + (W h)_i). The free energy F is the potential of p(v). The functions work on any leading
batch shape of ``v``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Mapping[str, Any]


def check_rbm_params(params: Any, name: str = "params") -> dict[str, jax.Array]:
    """``params`` as a dict of float32 arrays W (n_visible, n_hidden), b (n_visible,), c (n_hidden,).

    Shapes are always checked; finiteness only for concrete (not traced) arrays.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"{name}: expected a dict with keys W, b, c; got {type(params).__name__}")
    missing = [k for k in ("W", "b", "c") if k not in params]
    if missing:
        raise ValueError(f"{name}: missing key(s) {', '.join(missing)}; an RBM needs W, b and c")
    out = {}
    for k in ("W", "b", "c"):
        x = params[k]
        if isinstance(x, jax.core.Tracer):
            out[k] = x.astype(jnp.float32)
            continue
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}: {k} must hold real numbers, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: {k} contains NaN or infinite values")
        out[k] = jnp.asarray(arr, jnp.float32)
    W, b, c = out["W"], out["b"], out["c"]
    if W.ndim != 2:
        raise ValueError(f"{name}: W must be a (n_visible, n_hidden) matrix, got shape {W.shape}")
    if b.shape != (W.shape[0],) or c.shape != (W.shape[1],):
        raise ValueError(
            f"{name}: b must have shape ({W.shape[0]},) and c ({W.shape[1]},) to match W {W.shape}; "
            f"got b {b.shape}, c {c.shape}"
        )
    return out


def hidden_input(params: Params, v: jax.Array) -> jax.Array:
    """c + v W: the input to each hidden unit."""
    return v @ params["W"] + params["c"]


def hidden_probs(params: Params, v: jax.Array) -> jax.Array:
    """p(h_j = 1 | v) = sigmoid(c_j + (v W)_j)."""
    return jax.nn.sigmoid(hidden_input(params, v))


def visible_probs(params: Params, h: jax.Array) -> jax.Array:
    """p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)."""
    return jax.nn.sigmoid(h @ params["W"].T + params["b"])


def free_energy(params: Params, v: jax.Array, x: jax.Array | None = None) -> jax.Array:
    """F(v) = -b.v - sum_j softplus(c_j + (v W)_j); ``x`` is c + v W when already computed."""
    x = hidden_input(params, v) if x is None else x
    return -(v @ params["b"]) - jnp.sum(jax.nn.softplus(x), axis=-1)


def energy(params: Params, v: jax.Array, h: jax.Array) -> jax.Array:
    """E(v, h) = -v W h - b.v - c.h."""
    return -jnp.sum((v @ params["W"]) * h, axis=-1) - v @ params["b"] - h @ params["c"]
