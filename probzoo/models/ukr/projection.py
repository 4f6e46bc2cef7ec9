"""Held-out points in UKR: their latent images by penalised least squares (the out-of-sample
projection) and their log marginal density under the fitted map, each one compiled program."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from probzoo.models.ukr.kernel import nadaraya_watson


def _log_mean_exp(a: np.ndarray) -> np.ndarray:
    m = np.max(a, axis=0)
    return m + np.log(np.mean(np.exp(a - m), axis=0))


def _f_point(x: jnp.ndarray, X: jnp.ndarray, Y: jnp.ndarray, h: float) -> jnp.ndarray:
    return nadaraya_watson(x[None], X, Y, h)[0]


@partial(jax.jit, static_argnames=("h", "num_iters"))
def _transform(Yn, X, Y, images, h, penalty, num_iters):
    """argmin_x ||y - f(x)||^2 + penalty ||x||^2 per row of ``Yn``: Levenberg-Marquardt from the training
    latent whose image (``images``, f at the training latents) is nearest to y."""
    eye = jnp.eye(X.shape[1], dtype=X.dtype)

    def one(y):
        x0 = X[jnp.argmin(jnp.sum((images - y) ** 2, axis=-1))]

        def cost(x):
            r = y - _f_point(x, X, Y, h)
            return r @ r + penalty * (x @ x)

        def step(_, carry):
            x, lam, c = carry
            r = y - _f_point(x, X, Y, h)
            J = jax.jacfwd(_f_point)(x, X, Y, h)
            A = J.T @ J + penalty * eye
            g = J.T @ r - penalty * x
            trial = x + jnp.linalg.solve(A + lam * jnp.diag(jnp.diag(A) + 1e-9), g)
            ct = cost(trial)
            better = ct < c
            return (jnp.where(better, trial, x), jnp.where(better, lam * 0.3, lam * 10.0), jnp.minimum(ct, c))

        x, _, _ = jax.lax.fori_loop(0, num_iters, step, (x0, jnp.asarray(1e-2, X.dtype), cost(x0)))
        return x

    return jax.lax.map(one, Yn, batch_size=64)


@partial(jax.jit, static_argnames=("h", "reg", "num_draws"))
def _log_marginal(Yn, x_hat, X, Y, h, reg, s, key, num_draws):
    """log p(y) = log E_{x ~ N(0, I/reg)} N(y; f(x), s^2 I) for each row of ``Yn``, by importance sampling.

    Defensive mixture proposal q = 1/2 N(x_hat, 2C) + 1/2 N(0, I/reg), C the inverse of the Laplace
    precision J^T J / s^2 + reg I at x_hat (half the draws from each part): the Laplace part covers the
    peak, the prior part the plateaus where f flattens beyond the data, and the weights stay below
    2 p(y | x) so the estimate has finite variance.
    """
    m = X.shape[1]
    k_near = num_draws // 2
    prior = dist.Normal(0.0, 1.0 / math.sqrt(reg)).expand([m]).to_event(1)

    def one(args):
        y, xh, i = args
        z = jax.random.normal(jax.random.fold_in(key, i), (num_draws, m))  # independent draws per point
        J = jax.jacfwd(_f_point)(xh, X, Y, h)
        P = J.T @ J / s**2 + reg * jnp.eye(m)
        L = jnp.linalg.cholesky(2.0 * jnp.linalg.inv(P))
        near = dist.MultivariateNormal(xh, scale_tril=L)
        xs = jnp.concatenate([xh + z[:k_near] @ L.T, z[k_near:] / math.sqrt(reg)])
        f = nadaraya_watson(xs, X, Y, h)
        log_lik = jnp.sum(dist.Normal(f, s).log_prob(y), -1)
        log_q = jnp.logaddexp(near.log_prob(xs), prior.log_prob(xs)) - jnp.log(2.0)
        return jax.nn.logsumexp(log_lik + prior.log_prob(xs) - log_q) - jnp.log(num_draws)

    return jax.lax.map(one, (Yn, x_hat, jnp.arange(Yn.shape[0])), batch_size=16)
