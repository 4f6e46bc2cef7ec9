"""The predictive mixture, averaged over posterior draws (inputs (S, n, K)): density, moments, cdf,
quantiles, draws and responsibilities, each one compiled program."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

from probzoo.validation import (
    as_array,
    check_positive,
)

# --- the predictive mixture, averaged over posterior draws: inputs (S, n, K) ------------------------------

def _levels(q: Any) -> np.ndarray:
    qs = as_array(np.atleast_1d(q), "q", ndim=1)
    if np.any((qs <= 0) | (qs >= 1)):
        raise ValueError(f"q: quantile levels must lie strictly between 0 and 1, got {qs.tolist()}")
    return qs


def _central(level: Any) -> tuple[float, float]:
    level = check_positive(level, "level")
    if level >= 1:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    return (1 - level) / 2, (1 + level) / 2


@jax.jit
def _log_predictive(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """log mean_s sum_k w_sk N(y | mu_sk, sigma_sk), per point (n,)."""
    per_draw = logsumexp(logw + norm.logpdf(y[None, :, None], mu, sigma), axis=-1)
    return logsumexp(per_draw, axis=0) - jnp.log(per_draw.shape[0])


@jax.jit
def _score_and_predict(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, y: jnp.ndarray,
                       key: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per draw: log p(y_i | x_i) and one draw of y at every x_i, (S, n) each."""
    mixture = dist.MixtureSameFamily(dist.Categorical(logits=logw), dist.Normal(mu, sigma))
    return mixture.log_prob(y), mixture.sample(key)


@jax.jit
def _responsibilities(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    joint = logsumexp(logw + norm.logpdf(y[None, :, None], mu, sigma), axis=0)   # (n, K)
    return jnp.exp(joint - logsumexp(joint, axis=-1, keepdims=True))


@partial(jax.jit, static_argnums=4)
def _predictive_sample(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, key: jnp.ndarray,
                       num_samples: int) -> jnp.ndarray:
    k_draw, k_y = jax.random.split(key)
    s = jax.random.randint(k_draw, (num_samples,), 0, logw.shape[0])
    mixture = dist.MixtureSameFamily(dist.Categorical(logits=logw[s]), dist.Normal(mu[s], sigma[s]))
    return mixture.sample(k_y)


@jax.jit
def _moments(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Predictive mean and standard deviation (n,) by the laws of total expectation and variance."""
    w = jnp.exp(logw)
    m = jnp.mean(jnp.sum(w * mu, -1), 0)
    second = jnp.mean(jnp.sum(w * (sigma**2 + mu**2), -1), 0)
    return m, jnp.sqrt(jnp.maximum(second - m**2, 0.0))


@jax.jit
def _cdf(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    return jnp.mean(jnp.sum(jnp.exp(logw) * norm.cdf((t[None, :, None] - mu) / sigma), -1), 0)


@jax.jit
def _mixture_quantiles(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, qs: jnp.ndarray) -> jnp.ndarray:
    """Solve cdf(t) = q for t by bisection (len(q), n): the bracket [min(mu - 12 sigma), max(mu + 12 sigma)]
    holds every quantile of interest and 32 halvings shrink it below float32 resolution."""
    lo = jnp.min(mu - 12 * sigma, axis=(0, 2))
    hi = jnp.max(mu + 12 * sigma, axis=(0, 2))

    def solve(q):
        def body(_, bounds):
            a, b = bounds
            m = 0.5 * (a + b)
            below = _cdf(logw, mu, sigma, m) < q
            return jnp.where(below, m, a), jnp.where(below, b, m)

        a, b = jax.lax.fori_loop(0, 32, body, (lo, hi))
        return 0.5 * (a + b)

    return jax.lax.map(solve, qs)
