"""The Nadaraya-Watson map of unsupervised kernel regression, in log space and in row blocks.

    f(x; X, Y) = sum_j w_j(x) y_j,    log w(x) = log_softmax_j( -||x - x_j||^2 / (2 h) )

The kernel weights are a log-softmax, so they stay finite however far apart the latents are (the
naive exp(...) / sum exp(...) is 0/0 once every kernel value underflows). The leave-one-out map drops
each training point's own term (its logit becomes -inf) before the softmax.

With ``block_size`` the queries are processed that many rows at a time under ``lax.scan``, forward and
backward, and within a block the training points a column tile (:func:`column_tile`, at most 20,000) at a
time: the forward pass keeps only the (n, D) output and each query's log normaliser (a running maximum
over the tiles, the online softmax of flash attention), and the backward pass (a custom VJP, the
article's hand-derived gradient in matrix form) recomputes one tile's weights at a time as
exp(logit - log normaliser) and accumulates the gradients of the training latents and data. Memory for
the map and its gradient is O(block_size x tile) instead of the O(N^2 x M) of a dense evaluation, and
a block's working set stays the same size however large N grows.

With ``parallel`` (a :class:`probzoo.infer.devices.DataParallel`) the queries are split by rows over its
devices (``jax.shard_map``): each device sums the kernel over every training point for its share of the
rows, and the gradients of the training latents and data, partial sums on each device, are summed
across them by the transpose of the replication (a ``psum``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

__all__ = ["auto_block_size", "column_tile", "latent_grid", "log_weights", "nadaraya_watson", "weights"]

_BLOCK_BUDGET = 1 << 22  # about 4M kernel entries (16 MB in float32) per block
_COLUMN_TILE = 20_000  # at most this many training points per column tile of a block
_FLOOR = -1e30  # the running maximum's start: finite, so that a tile of left-out points gives exp(-inf) = 0


def auto_block_size(n: int) -> int:
    """Rows per block for ``n`` training latents: a power of two with block x n <= 4M, in [64, 1024]."""
    per_row = max(1, _BLOCK_BUDGET // max(n, 1))
    return int(min(1024, max(64, 1 << int(math.floor(math.log2(per_row))))))


def _logits(xq: jnp.ndarray, X: jnp.ndarray, bandwidth: float, self_index: jnp.ndarray | None) -> jnp.ndarray:
    # sum over the (few) latent coordinates written out: elementwise (n, N) work that XLA fuses,
    # several times faster on CPU than reducing a (n, N, M) tensor over its short last axis
    d2 = sum(jnp.square(xq[:, None, k] - X[None, :, k]) for k in range(X.shape[1]))
    logits = -d2 / (2.0 * bandwidth)
    if self_index is not None:
        own = self_index[:, None] == jnp.arange(X.shape[0])[None, :]
        logits = jnp.where(own, -jnp.inf, logits)
    return logits


def log_weights(xq: jnp.ndarray, X: jnp.ndarray, bandwidth: float, self_index: jnp.ndarray | None = None):
    """log w (n, N): the kernel weights of queries ``xq`` (n, M) over training latents ``X`` (N, M).

    ``self_index`` (n,) names the training point each query leaves out (-1: none).
    """
    return jax.nn.log_softmax(_logits(xq, X, bandwidth, self_index), axis=-1)


def weights(xq: jnp.ndarray, X: jnp.ndarray, bandwidth: float, self_index: jnp.ndarray | None = None):
    """w = exp(log w) (n, N), computed as exp(logit - max logit) / sum(...): one exp per entry, never 0/0."""
    return jax.nn.softmax(_logits(xq, X, bandwidth, self_index), axis=-1)


def _blocks(a: jnp.ndarray, block_size: int, fill: float | int = 0) -> jnp.ndarray:
    n = a.shape[0]
    n_blocks = -(-n // block_size)
    pad = [(0, n_blocks * block_size - n)] + [(0, 0)] * (a.ndim - 1)
    return jnp.pad(a, pad, constant_values=fill).reshape((n_blocks, block_size) + a.shape[1:])


def column_tile(n: int) -> int:
    """Training points per column tile: all of them up to 20,000, else equal tiles of at most 20,000 (a
    multiple of 8), so that a block's working set stays the same size however large N grows."""
    tiles = -(-n // _COLUMN_TILE)
    return min(n, 8 * -(-n // (8 * tiles)))


def _tiles(X, Y, tile):
    """X, Y in column tiles, with each tile's point indices (-1 marks padding, which every query leaves out)."""
    return _blocks(X, tile), _blocks(Y, tile), _blocks(jnp.arange(X.shape[0]), tile, -1)


def _varying(x) -> set:
    kind = jax.typeof(x)
    manual = getattr(kind, "manual_axis_type", None)  # JAX >= 0.9; before it, the set was ``vma``
    return set(manual.varying if manual is not None else getattr(kind, "vma", ()))


def _like(ref, value):
    """``value`` varying over the same ``shard_map`` axes as ``ref`` (a scan's carry must keep its type when the
    map runs on each device's share of the rows)."""
    axes = _varying(ref)

    def cast(leaf):
        missing = tuple(sorted(axes - _varying(leaf)))
        return jax.lax.pcast(leaf, missing, to="varying") if missing else leaf

    return jax.tree.map(cast, value)


def _tile_logits(q, i, Xt, jt, bandwidth):
    """The logits of queries ``q`` (leaving out points ``i``) over one tile of training points, -inf where a
    query leaves the point out or the point is padding."""
    d2 = sum(jnp.square(q[:, None, k] - Xt[None, :, k]) for k in range(q.shape[1]))
    left_out = (i[:, None] == jt[None, :]) | (jt[None, :] < 0)
    return jnp.where(left_out, -jnp.inf, -d2 / (2.0 * bandwidth))


def _forward(xq, X, Y, self_index, bandwidth, block_size):
    """f (n, D) and the log normaliser lse (n,) of every query, a row block at a time and, within it, a column
    tile at a time with a running maximum (the online softmax): one exp per kernel entry."""
    Xs, Ys, Js = _tiles(X, Y, column_tile(X.shape[0]))

    def block(_, qi):
        q, i = qi

        def tile(carry, t):
            m, total, acc = carry
            logits = _tile_logits(q, i, t[0], t[2], bandwidth)
            m_new = jnp.maximum(m, jnp.max(logits, axis=1))
            shrink = jnp.exp(m - m_new)
            p = jnp.exp(logits - m_new[:, None])
            return (m_new, total * shrink + jnp.sum(p, axis=1), acc * shrink[:, None] + p @ t[1]), None

        rows = q.shape[0]
        start = _like(q, (jnp.full((rows,), _FLOOR, q.dtype), jnp.zeros((rows,), q.dtype),
                          jnp.zeros((rows, Y.shape[1]), q.dtype)))
        (m, total, acc), _ = jax.lax.scan(tile, start, (Xs, Ys, Js))
        return None, (acc / total[:, None], m + jnp.log(total))

    _, (f, lse) = jax.lax.scan(block, None, (_blocks(xq, block_size), _blocks(self_index, block_size, -1)))
    n = xq.shape[0]
    return f.reshape(-1, Y.shape[1])[:n], lse.reshape(-1)[:n]


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _blockwise(xq, X, Y, self_index, bandwidth, block_size):
    return _forward(xq, X, Y, self_index, bandwidth, block_size)[0]


def _blockwise_fwd(xq, X, Y, self_index, bandwidth, block_size):
    f, lse = _forward(xq, X, Y, self_index, bandwidth, block_size)
    return f, (xq, X, Y, self_index, f, lse)


def _blockwise_bwd(bandwidth, block_size, res, g):
    """Cotangents of (xq, X, Y) from the cotangent g (n, D) of f, one row block and column tile at a time.

    With w = softmax(logits) = exp(logits - lse) and f_b = sum_j w_bj y_j, the cotangent of logit_bj is
    c_bj = w_bj (g_b . y_j - g_b . f_b); logit_bj = -||q_b - x_j||^2 / 2h then gives
    dq_b = -sum_j c_bj (q_b - x_j) / h and dx_j = sum_b c_bj (q_b - x_j) / h; dY = w^T g.
    """
    xq, X, Y, self_index, f, lse = res
    h = bandwidth
    Xs, Ys, Js = _tiles(X, Y, column_tile(X.shape[0]))

    def block(carry, blk):
        gX, gY = carry
        q, i, fb, gb, lb = blk
        gf = jnp.sum(gb * fb, axis=-1)

        def tile(acc, t):
            cX, c_rows = acc
            Xt, Yt, jt = t
            w = jnp.exp(_tile_logits(q, i, Xt, jt, h) - lb[:, None])
            c = w * (gb @ Yt.T - gf[:, None])
            gXt = (c.T @ q - jnp.sum(c, axis=0)[:, None] * Xt) / h
            return (cX + c @ Xt, c_rows + jnp.sum(c, axis=1)), (gXt, w.T @ gb)

        (cX, c_rows), (gXt, gYt) = jax.lax.scan(
            tile, _like(q, (jnp.zeros_like(q), jnp.zeros(q.shape[:1], q.dtype))), (Xs, Ys, Js))
        gq = (cX - c_rows[:, None] * q) / h
        return (gX + gXt.reshape(gX.shape), gY + gYt.reshape(gY.shape)), gq

    padded = Xs.shape[0] * Xs.shape[1]
    blocks = (_blocks(xq, block_size), _blocks(self_index, block_size, -1), _blocks(f, block_size),
              _blocks(g, block_size), _blocks(lse, block_size))
    start = _like(xq, (jnp.zeros((padded, X.shape[1]), X.dtype), jnp.zeros((padded, Y.shape[1]), Y.dtype)))
    (gX, gY), gq = jax.lax.scan(block, start, blocks)
    n = X.shape[0]
    return gq.reshape(-1, xq.shape[1])[: xq.shape[0]], gX[:n], gY[:n], None


_blockwise.defvjp(_blockwise_fwd, _blockwise_bwd)


def nadaraya_watson(
    xq: jnp.ndarray,
    X: jnp.ndarray,
    Y: jnp.ndarray,
    bandwidth: float,
    *,
    self_index: jnp.ndarray | None = None,
    block_size: int | None = None,
    parallel: Any = None,
) -> jnp.ndarray:
    """f(xq; X) (n, D): the Nadaraya-Watson map of queries ``xq`` (n, M) given latents X (N, M), data Y (N, D).

    ``self_index`` (n,) int: leave the named training point out of each query's sum (-1: keep all);
    ``arange(N)`` with ``xq = X`` is the leave-one-out reconstruction. ``block_size=None`` evaluates
    all queries at once (dense: O(n N) memory, differentiated by plain autodiff, forward mode
    included); an int evaluates ``block_size`` rows at a time, forward and backward (reverse mode only).
    ``parallel`` splits the queries over its devices (reverse mode only; each device's rows in blocks of
    ``block_size``, or of :func:`auto_block_size`).
    """
    if parallel is not None:
        return _row_split(xq, X, Y, float(bandwidth), self_index, block_size, parallel)
    if block_size is None or block_size >= xq.shape[0]:
        return weights(xq, X, bandwidth, self_index) @ Y
    idx = jnp.full((xq.shape[0],), -1, jnp.int32) if self_index is None else jnp.asarray(self_index, jnp.int32)
    return _blockwise(xq, X, Y, idx, float(bandwidth), int(block_size))


def _row_split(xq, X, Y, bandwidth, self_index, block_size, parallel):
    """The map of queries ``xq`` split by rows over ``parallel``'s devices; rows padded to a multiple of
    their number (padded rows leave no point out and are dropped from the result)."""
    from probzoo.infer.devices import AXIS

    n, devices = xq.shape[0], parallel.size
    padded = -(-n // devices) * devices
    idx = jnp.full((n,), -1, jnp.int32) if self_index is None else jnp.asarray(self_index, jnp.int32)
    xq = jnp.pad(xq, ((0, padded - n), (0, 0)))
    idx = jnp.pad(idx, (0, padded - n), constant_values=-1)
    block = int(block_size) if block_size is not None else auto_block_size(X.shape[0])

    def local(q, i, X, Y):
        # X and Y are the same on every device; marked varying here, so that the gradients of them (partial
        # sums over this device's rows) are summed over the devices when the replication is transposed
        X, Y = jax.lax.pcast(X, AXIS, to="varying"), jax.lax.pcast(Y, AXIS, to="varying")
        return _blockwise(q, X, Y, i, bandwidth, min(block, q.shape[0]))

    f = jax.shard_map(local, mesh=parallel.mesh, in_specs=(PartitionSpec(AXIS), PartitionSpec(AXIS),
                                                           PartitionSpec(), PartitionSpec()),
                      out_specs=PartitionSpec(AXIS))(xq, idx, X, Y)
    return f[:n]


def latent_grid(latents: np.ndarray, side: int = 20) -> np.ndarray:
    """A side x side regular grid (side^2, 2) over the bounding box of 2-D ``latents``."""
    lo, hi = np.min(latents, axis=0), np.max(latents, axis=0)
    axes = [np.linspace(lo[k], hi[k], side) for k in range(2)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float32)
