"""The RBM's pseudo-likelihood: log sigmoid(F(v~) - F(v)) for one flipped unit (stochastic, scikit-learn's
``score_samples``) or averaged over every unit (exact), a cheap proxy of the likelihood during training."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from probzoo.models.rbm.energy import free_energy


@jax.jit
def pseudo_likelihood_terms(params: dict[str, Any], V: jax.Array, key: jax.Array) -> jax.Array:
    """log sigmoid(F(v~) - F(v)) per row, v~ = v with one random unit i flipped (v_i -> 1 - v_i).

    n_visible times this is the stochastic pseudo-log-likelihood of scikit-learn's ``score_samples``.
    The flipped row's hidden input is c + v W + (1 - 2 v_i) W_i, so no second matrix product is needed.
    """
    x = V @ params["W"] + params["c"]
    return pl_terms_from_hidden_input(params, V, x, key)


def pl_terms_from_hidden_input(params: dict[str, Any], V: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
    n, m = V.shape
    i = jax.random.randint(key, (n,), 0, m)
    vi = jnp.take_along_axis(V, i[:, None], axis=1)[:, 0]
    delta = 1.0 - 2.0 * vi  # v~_i - v_i
    f = free_energy(params, V, x)
    x_flip = x + delta[:, None] * params["W"][i]
    f_flip = -(V @ params["b"] + delta * params["b"][i]) - jnp.sum(jax.nn.softplus(x_flip), axis=-1)
    return jax.nn.log_sigmoid(f_flip - f)


@jax.jit
def pl_all_flips(params: dict[str, Any], V: jax.Array) -> jax.Array:
    # mean over i of log sigmoid(F(v^(i)) - F(v)) per row, v^(i) = v with unit i flipped; rows in chunks
    W, b = params["W"], params["b"]

    def rows(v):
        x = v @ W + params["c"]
        f = free_energy(params, v, x)
        delta = 1.0 - 2.0 * v  # (r, m)
        x_flip = x[:, None, :] + delta[:, :, None] * W[None]  # (r, m, n)
        f_flip = -((v @ b)[:, None] + delta * b) - jnp.sum(jax.nn.softplus(x_flip), axis=-1)
        return jnp.mean(jax.nn.log_sigmoid(f_flip - f[:, None]), axis=1)

    chunk = 64
    n = V.shape[0]
    pad = (-n) % chunk
    Vp = jnp.concatenate([V, jnp.zeros((pad, V.shape[1]), V.dtype)]).reshape(-1, chunk, V.shape[1])
    return jax.lax.map(rows, Vp).reshape(-1)[:n]
