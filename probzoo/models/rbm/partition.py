"""The RBM's partition function: log Z exactly (enumerating the smaller layer, up to 24 units) or by annealed
importance sampling from the base-rate model (Salakhutdinov & Murray 2008), and the base-rate model itself."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from probzoo.models.rbm.draws import bernoulli
from probzoo.models.rbm.energy import check_rbm_params
from probzoo.validation import (
    as_array,
    check_int,
    check_seed,
)

MAX_ENUM_UNITS = 24
# Salakhutdinov & Murray (2008): 500 temperatures on [0, 0.5], 4,000 on [0.5, 0.9], 10,000 on [0.9, 1].
_AIS_SEGMENTS = ((0.0, 0.5, 500), (0.5, 0.9, 4_000), (0.9, 1.0, 10_000))


def base_rate(V: np.ndarray) -> np.ndarray:
    """Per-pixel probability of the independent-pixel model, (sum v + 1) / (N + 2) (Laplace smoothing)."""
    V = np.asarray(V, np.float64)
    return ((V.sum(axis=0) + 1.0) / (V.shape[0] + 2.0)).astype(np.float32)


def base_rate_log_likelihood(V: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """log p(v) per row under independent Bernoulli(rate) pixels (the baseline an RBM must beat)."""
    V = np.asarray(V, np.float64)
    p = np.asarray(rate, np.float64)
    return V @ np.log(p) + (1.0 - V) @ np.log1p(-p)


class LogPartition(NamedTuple):
    """log Z and its standard error (0 for exact enumeration)."""

    estimate: float
    se: float


@jax.jit
def _enum_chunk_lse(W: jax.Array, b: jax.Array, c: jax.Array, low_bits: jax.Array, chunk: jax.Array):
    # states of the enumerated layer: the chunk number gives the high bits, low_bits the rest
    n = c.shape[0]
    n_low = low_bits.shape[1]
    high = (chunk >> jnp.arange(n - n_low)) & 1
    states = jnp.concatenate([low_bits, jnp.broadcast_to(high, (low_bits.shape[0], n - n_low))],
                             axis=1).astype(jnp.float32)
    # sum over the other layer in closed form: log sum_v exp(-E(v, h)) = c.h + sum_i softplus(b_i + (W h)_i)
    terms = states @ c + jnp.sum(jax.nn.softplus(states @ W.T + b), axis=-1)
    return jax.scipy.special.logsumexp(terms)


def log_partition_exact(params: dict[str, Any], chunk_bits: int = 12) -> float:
    """log Z by enumerating every state of the smaller layer (at most 24 units), in chunks of 2^chunk_bits
    states, summing the other layer out in closed form. Float32 chunks, float64 total."""
    p = check_rbm_params(params)
    W, b, c = p["W"], p["b"], p["c"]
    if W.shape[0] < W.shape[1]:  # enumerate the visible layer instead: the formula is symmetric
        W, b, c = W.T, c, b
    n = int(c.shape[0])
    if n > MAX_ENUM_UNITS:
        raise ValueError(
            f"params: exact log Z enumerates 2^{n} states; only layers of at most {MAX_ENUM_UNITS} units "
            "are supported (use method='ais')"
        )
    n_low = min(n, check_int(chunk_bits, "chunk_bits", minimum=1, maximum=20))
    low = ((np.arange(2**n_low)[:, None] >> np.arange(n_low)) & 1).astype(np.int32)
    low = jnp.asarray(low)
    parts = [float(_enum_chunk_lse(W, b, c, low, jnp.int32(k))) for k in range(2 ** (n - n_low))]
    return float(logsumexp(np.asarray(parts, np.float64)))


def ais_schedule(num_betas: int) -> np.ndarray:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, spaced as Salakhutdinov & Murray (2008):
    ~3% of them on [0, 0.5], ~28% on [0.5, 0.9] and ~69% on [0.9, 1] (14,500 in the paper)."""
    num_betas = check_int(num_betas, "num_betas", minimum=3)
    total = sum(s[2] for s in _AIS_SEGMENTS)
    counts = [max(1, round(num_betas * s[2] / total)) for s in _AIS_SEGMENTS]
    counts[-1] = max(1, num_betas - sum(counts[:-1]))
    pieces = [np.linspace(lo, hi, k, endpoint=False) for (lo, hi, _), k in zip(_AIS_SEGMENTS, counts, strict=True)]
    return np.concatenate(pieces + [np.ones(1)]).astype(np.float32)


def _log_pstar(params: dict[str, Any], base_bias: jax.Array, v: jax.Array, x: jax.Array, beta: jax.Array):
    """Unnormalised log p_beta(v) on the path from the base-rate model (beta = 0) to the RBM (beta = 1): the RBM
    with W' = beta W, b' = (1 - beta) b_A + beta b, c' = beta c, its hidden units summed out (x = c + v W)."""
    return (1.0 - beta) * (v @ base_bias) + beta * (v @ params["b"]) + jnp.sum(jax.nn.softplus(beta * x), axis=-1)


def _sweep(params: dict[str, Any], base_bias: jax.Array, v: jax.Array, x: jax.Array, beta: jax.Array,
           key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One block-Gibbs sweep (h | v, then v | h) that leaves p_beta invariant and is reversible with respect to
    it; returns the new v and its hidden input."""
    W = params["W"]
    k_h, k_v = jax.random.split(key)
    h = bernoulli(k_h, jax.nn.sigmoid(beta * x))
    v = bernoulli(k_v, jax.nn.sigmoid((1.0 - beta) * base_bias + beta * (h @ W.T + params["b"])))
    return v, v @ W + params["c"]


@jax.jit
def _ais_log_weights(params: dict[str, Any], base_bias: jax.Array, betas: jax.Array, key: jax.Array,
                     v0: jax.Array) -> jax.Array:
    def level(carry, inp):
        v, x, logw = carry
        beta_prev, beta, k = inp
        logw = logw + _log_pstar(params, base_bias, v, x, beta) - _log_pstar(params, base_bias, v, x, beta_prev)
        v, x = _sweep(params, base_bias, v, x, beta, k)
        return (v, x, logw), None

    keys = jax.random.split(key, betas.shape[0] - 1)
    init = (v0, v0 @ params["W"] + params["c"], jnp.zeros(v0.shape[0], jnp.float32))
    (_, _, logw), _ = jax.lax.scan(level, init, (betas[:-1], betas[1:], keys))
    return logw


@jax.jit
def _raise_log_weights(params: dict[str, Any], base_bias: jax.Array, betas: jax.Array, key: jax.Array,
                       V: jax.Array) -> jax.Array:
    # from x_K = v down the path: x_{k-1} ~ T_k(. | x_k), weight f_k(x_k) / f_k(x_{k-1}), k = K, ..., 1
    def level(carry, inp):
        v, x, logw = carry
        beta, k = inp
        v_new, x_new = _sweep(params, base_bias, v, x, beta, k)
        logw = logw + _log_pstar(params, base_bias, v, x, beta) - _log_pstar(params, base_bias, v_new, x_new, beta)
        return (v_new, x_new, logw), None

    keys = jax.random.split(key, betas.shape[0] - 1)
    init = (V, V @ params["W"] + params["c"], jnp.zeros(V.shape[0], jnp.float32))
    (v0, x0, logw), _ = jax.lax.scan(level, init, (betas[1:][::-1], keys))
    return logw + _log_pstar(params, base_bias, v0, x0, jnp.float32(0.0))  # + log f_0(x_0); log Z_0 apart


def _base_bias(m: int, base_rate_probs: Any) -> jax.Array:
    """The base-rate model's log-odds b_A (uniform pixels without base rates)."""
    if base_rate_probs is None:
        rate = np.full(m, 0.5, np.float32)
    else:
        rate = np.clip(as_array(base_rate_probs, "base_rate_probs", ndim=1), 1e-6, 1 - 1e-6)
        if rate.shape != (m,):
            raise ValueError(f"base_rate_probs: expected {m} probabilities, got shape {rate.shape}")
    return jnp.asarray(np.log(rate) - np.log1p(-rate), jnp.float32)


def _log_z_base(base_bias: jax.Array, n_hidden: int) -> float:
    """log Z_A of the path's start: sum_i softplus(b_A_i) + n_hidden log 2."""
    return float(np.sum(np.logaddexp(0.0, np.asarray(base_bias, np.float64))) + n_hidden * math.log(2.0))


def ais_log_partition(params: dict[str, Any], base_rate_probs: np.ndarray | None = None, num_runs: int = 100,
                      num_betas: int = 14_500, seed: int = 0) -> LogPartition:
    """log Z by annealed importance sampling from the base-rate model (Salakhutdinov & Murray 2008).

    The path p_beta(v) ∝ exp((1 - beta) b_A.v) exp(beta b.v) prod_j (1 + exp(beta (c_j + (v W)_j)))
    runs from independent pixels with log-odds b_A (log Z_A = sum_i softplus(b_A_i) + n log 2) to the
    RBM. ``num_runs`` independent runs give weights w; the estimate is log Z_A + log mean w and its
    standard error std(w) / (sqrt(num_runs) mean w) (delta method).
    """
    p = check_rbm_params(params)
    num_runs = check_int(num_runs, "num_runs", minimum=2)
    seed = check_seed(seed)
    m, n = p["W"].shape
    base_bias = _base_bias(m, base_rate_probs)
    betas = jnp.asarray(ais_schedule(num_betas))
    k0, k1 = jax.random.split(jax.random.PRNGKey(seed))
    v0 = bernoulli(k0, jnp.broadcast_to(jax.nn.sigmoid(base_bias), (num_runs, m)))
    logw = np.asarray(_ais_log_weights(p, base_bias, betas, k1, v0), np.float64)
    if not np.all(np.isfinite(logw)):
        raise FloatingPointError("ais: non-finite importance weights; the RBM's parameters may be extreme")
    log_za = _log_z_base(base_bias, n)
    w = np.exp(logw - logw.max())
    estimate = log_za + float(logw.max() + np.log(w.mean()))
    se = float(w.std(ddof=1) / (math.sqrt(num_runs) * w.mean()))
    return LogPartition(estimate, se)


def raise_log_likelihood(params: dict[str, Any], V: Any, base_rate_probs: np.ndarray | None = None,
                         num_betas: int = 14_500, seed: int = 0) -> np.ndarray:
    """log p(v) per row of binary ``V`` by reverse annealed importance sampling (RAISE; Burda, Grosse &
    Salakhutdinov 2015): one run per row, from v itself down the AIS path to the base-rate model.

    The path with its block-Gibbs sweeps is a generative model of v (the annealing model); each run is an
    unbiased estimate of its likelihood, log p_0(x_0) + sum_k [log f_k(x_k) - log f_k(x_{k-1})] with
    x_K = v and x_{k-1} drawn by the sweep at beta_k (reversible, so it is its own reversal). Its log is
    biased low (Jensen), and the annealing model is a slightly worse model of the data than the RBM
    itself, so RAISE under-estimates the log-likelihood on average, where AIS (through an under-estimated
    log Z) over-estimates it: the two bracket the truth.
    """
    p = check_rbm_params(params)
    seed = check_seed(seed)
    m, n = p["W"].shape
    V = jnp.asarray(V, jnp.float32)
    if V.ndim != 2 or V.shape[1] != m:
        raise ValueError(f"V: expected rows of {m} visible units, got shape {tuple(V.shape)}")
    base_bias = _base_bias(m, base_rate_probs)
    betas = jnp.asarray(ais_schedule(num_betas))
    logw = np.asarray(_raise_log_weights(p, base_bias, betas, jax.random.PRNGKey(seed), V), np.float64)
    if not np.all(np.isfinite(logw)):
        raise FloatingPointError("raise: non-finite importance weights; the RBM's parameters may be extreme")
    return logw - _log_z_base(base_bias, n)
