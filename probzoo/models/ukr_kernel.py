"""The Nadaraya-Watson map of unsupervised kernel regression, in log space and in row blocks.

    f(x; X, Y) = sum_j w_j(x) y_j,    log w(x) = log_softmax_j( -||x - x_j||^2 / (2 h) )

The kernel weights are a log-softmax, so they stay finite however far apart the latents are (the
naive exp(...) / sum exp(...) is 0/0 once every kernel value underflows). The leave-one-out map drops
each training point's own term (its logit becomes -inf) before the softmax.

Queries are processed ``block_size`` rows at a time under ``lax.map`` with ``jax.checkpoint`` on the
block: the forward pass keeps only the (n, D) output, and the backward pass recomputes one block's
(block_size, N) weights at a time. Memory for the map and its gradient is O(N x block_size) instead
of the O(N^2 x M) of a dense evaluation, and the result is the same function.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["auto_block_size", "log_weights", "nadaraya_watson"]

_BLOCK_BUDGET = 1 << 22  # about 4M kernel entries (16 MB in float32) per block


def auto_block_size(n: int) -> int:
    """Rows per block for ``n`` training latents: a power of two with block x n <= 4M, in [64, 1024]."""
    per_row = max(1, _BLOCK_BUDGET // max(n, 1))
    return int(min(1024, max(64, 1 << int(math.floor(math.log2(per_row))))))


def log_weights(xq: jnp.ndarray, X: jnp.ndarray, bandwidth: float, self_index: jnp.ndarray | None = None):
    """log w (n, N): the kernel weights of queries ``xq`` (n, M) over training latents ``X`` (N, M).

    ``self_index`` (n,) names the training point each query leaves out (-1: none).
    """
    d2 = jnp.sum(jnp.square(xq[:, None, :] - X[None, :, :]), axis=-1)
    logits = -d2 / (2.0 * bandwidth)
    if self_index is not None:
        own = self_index[:, None] == jnp.arange(X.shape[0])[None, :]
        logits = jnp.where(own, -jnp.inf, logits)
    return jax.nn.log_softmax(logits, axis=-1)


def _map_block(xq: jnp.ndarray, self_index: jnp.ndarray | None, X: jnp.ndarray, Y: jnp.ndarray,
               bandwidth: float) -> jnp.ndarray:
    return jnp.exp(log_weights(xq, X, bandwidth, self_index)) @ Y


def nadaraya_watson(
    xq: jnp.ndarray,
    X: jnp.ndarray,
    Y: jnp.ndarray,
    bandwidth: float,
    *,
    self_index: jnp.ndarray | None = None,
    block_size: int | None = None,
) -> jnp.ndarray:
    """f(xq; X) (n, D): the Nadaraya-Watson map of the queries ``xq`` (n, M) given latents X (N, M), data Y (N, D).

    ``self_index`` (n,) int: leave the named training point out of each query's sum (-1: keep all);
    ``arange(N)`` with ``xq = X`` is the leave-one-out reconstruction. ``block_size=None`` evaluates
    all queries at once (dense, O(n N) memory); an int evaluates that many rows at a time with the
    block recomputed in the backward pass (O(block_size N) memory for the map and its gradient).
    """
    n = xq.shape[0]
    if block_size is None or block_size >= n:
        return _map_block(xq, self_index, X, Y, bandwidth)
    n_blocks = -(-n // block_size)
    pad = n_blocks * block_size - n
    xq_blocks = jnp.pad(xq, ((0, pad), (0, 0))).reshape(n_blocks, block_size, xq.shape[1])
    idx = jnp.full((n,), -1, jnp.int32) if self_index is None else jnp.asarray(self_index, jnp.int32)
    idx_blocks = jnp.pad(idx, (0, pad), constant_values=-1).reshape(n_blocks, block_size)
    block = jax.checkpoint(lambda q, i, X_, Y_: _map_block(q, i, X_, Y_, bandwidth))
    out = jax.lax.map(lambda qi: block(qi[0], qi[1], X, Y), (xq_blocks, idx_blocks))
    return out.reshape(n_blocks * block_size, Y.shape[1])[:n]
