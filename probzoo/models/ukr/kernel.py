"""The Nadaraya-Watson map of unsupervised kernel regression, in log space and in row blocks.

    f(x; X, Y) = sum_j w_j(x) y_j,    log w(x) = log_softmax_j( -||x - x_j||^2 / (2 h) )

The kernel weights are a log-softmax, so they stay finite however far apart the latents are (the
naive exp(...) / sum exp(...) is 0/0 once every kernel value underflows). The leave-one-out map drops
each training point's own term (its logit becomes -inf) before the softmax.

With ``block_size`` the queries are processed that many rows at a time, forward and backward, and within a
block the training points a column tile (:func:`column_tile`, at most 20,000) at a time, every (row block,
column tile) pair in one flat ``lax.scan``: the forward pass keeps only the (n, D) output and each query's
log normaliser (a running maximum over the tiles, the online softmax of flash attention), and the backward
pass (a custom VJP, the article's hand-derived gradient in matrix form) recomputes one tile's weights at a
time as exp(logit - log normaliser) and accumulates the gradients of the training latents and data. Memory
for the map and its gradient is O(block_size x tile) instead of the O(N^2 x M) of a dense evaluation, and
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

_BLOCK_BUDGET = 1 << 23  # about 8M kernel entries (32 MB in float32) per (row block, column tile)
_COLUMN_TILE = 20_000  # at most this many training points per column tile of a block
_FLOOR = -1e30  # the running maximum's start: finite, so that a tile of left-out points gives exp(-inf) = 0


def auto_block_size(n: int) -> int:
    """Rows per block for ``n`` training latents: a power of two in [64, 1024] with block x tile <= 8M entries
    (the tile: :func:`column_tile`, at most 20,000 points)."""
    per_row = max(1, _BLOCK_BUDGET // max(column_tile(n), 1))
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


def _tile_logits(qT, i, XT, jt, bandwidth):
    """The logits of queries ``qT`` (M, rows; leaving out points ``i``) over one tile of training points ``XT``
    (M, tile), -inf where a query leaves the point out or the point is padding. Coordinates come one
    contiguous row each: XLA's CPU backend vectorises the (rows, tile) loop over them, and not over strided
    columns of (n, M) arrays (2-3 times slower)."""
    d2 = sum(jnp.square(qT[k][:, None] - XT[k][None, :]) for k in range(qT.shape[0]))
    left_out = (i[:, None] == jt[None, :]) | (jt[None, :] < 0)
    return jnp.where(left_out, -jnp.inf, -d2 / (2.0 * bandwidth))


def _transposed(a):
    """(blocks, rows, k) -> (blocks, k, rows)."""
    return jnp.swapaxes(a, 1, 2)


def _flat_scan(step, start, tiles, n_blocks: int):
    """Run ``step(carry, b, t, tile) -> (carry, out)`` over every (row block b, column tile t) pair, tiles
    innermost, in one ``lax.scan``; returns the final carry and, per row block, the ``out`` of its last tile.

    The tile in hand travels in the loop's carry and the next one is cut out at the end of each step, so the
    (rows x tile) kernel computations read plain arrays: a tile cut inside the step would be fused into them
    as a dynamic slice per element, which XLA's CPU backend runs several times slower."""
    n_tiles = jax.tree.leaves(tiles)[0].shape[0]
    k = jnp.arange(n_blocks * n_tiles)
    b, t = k // n_tiles, k % n_tiles

    def body(carry, bt):
        tile, inner = carry
        b, t, t_next = bt
        inner, out = step(inner, b, t, tile)
        return (jax.tree.map(lambda a: a[t_next], tiles), inner), out

    first = jax.tree.map(lambda a: a[0], tiles)
    (_, carry), ys = jax.lax.scan(body, (first, start), (b, t, (t + 1) % n_tiles))
    return carry, jax.tree.map(lambda y: y.reshape((n_blocks, n_tiles) + y.shape[1:])[:, -1], ys)


def _forward(xq, X, Y, self_index, bandwidth, block_size):
    """f (n, D) and the log normaliser lse (n,) of every query, a row block and a column tile at a time with a
    running maximum (the online softmax): one exp per kernel entry."""
    Xs, Ys, Js = _tiles(X, Y, column_tile(X.shape[0]))
    # [y_j, 1]: one product of the weights gives both the weighted sum of the y_j and the normaliser
    Y1 = jnp.concatenate([Ys, jnp.ones(Ys.shape[:2] + (1,), Ys.dtype)], axis=-1)
    QT, I = _transposed(_blocks(xq, block_size)), _blocks(self_index, block_size, -1)
    D = Y.shape[1]

    def step(carry, b, t, tile):
        XT, Jt, Y1t = tile
        first = t == 0  # a new row block: its sums start afresh
        m, acc = jnp.where(first, _FLOOR, carry[0]), jnp.where(first, 0.0, carry[1])
        logits = _tile_logits(QT[b], I[b], XT, Jt, bandwidth)
        m_new = jnp.maximum(m, jnp.max(logits, axis=1))
        acc = acc * jnp.exp(m - m_new)[:, None] + jnp.exp(logits - m_new[:, None]) @ Y1t
        return (m_new, acc), (acc[:, :D] / acc[:, D:], m_new + jnp.log(acc[:, D]))

    start = _like(xq, (jnp.full((block_size,), _FLOOR, xq.dtype), jnp.zeros((block_size, D + 1), xq.dtype)))
    _, (f, lse) = _flat_scan(step, start, (_transposed(Xs), Js, Y1), QT.shape[0])
    n = xq.shape[0]
    return f.reshape(-1, D)[:n], lse.reshape(-1)[:n]


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
    X1 = jnp.concatenate([Xs, jnp.ones(Xs.shape[:2] + (1,), Xs.dtype)], axis=-1)  # [x_j, 1]
    Q, I = _blocks(xq, block_size), _blocks(self_index, block_size, -1)
    QT, G, L = _transposed(Q), _blocks(g, block_size), _blocks(lse, block_size)
    GF = jnp.sum(G * _blocks(f, block_size), axis=-1)  # g_b . f_b
    M = X.shape[1]
    over_rows = (((0,), (0,)), ((), ()))  # contract a block's rows: (rows, k), (rows, tile) -> (k, tile)

    def step(carry, b, t, tile):
        rows, gX, gY = carry
        Xt, XT, Jt, Yt, X1t = tile
        q, gb = Q[b], G[b]
        w = jnp.exp(_tile_logits(QT[b], I[b], XT, Jt, h) - L[b][:, None])
        c = w * (gb @ Yt.T - GF[b][:, None])
        # sum_j c_bj [x_j, 1] for the block's queries; sum_b c_bj [q_b, 1] and sum_b w_bj g_b for the tile's
        # points, as products that contract the rows (several times faster on CPU than c.T @ q)
        rows = jnp.where(t == 0, 0.0, rows) + c @ X1t
        cq = jax.lax.dot_general(jnp.concatenate([q, jnp.ones_like(q[:, :1])], axis=1), c, over_rows)
        gX = jax.lax.dynamic_update_index_in_dim(gX, gX[t] + (cq[:M].T - cq[M][:, None] * Xt) / h, t, 0)
        gY = jax.lax.dynamic_update_index_in_dim(gY, gY[t] + jax.lax.dot_general(gb, w, over_rows).T, t, 0)
        return (rows, gX, gY), (rows[:, :M] - rows[:, M:] * q) / h

    start = _like(xq, (jnp.zeros((block_size, M + 1), xq.dtype), jnp.zeros(Xs.shape, X.dtype),
                       jnp.zeros(Ys.shape, Y.dtype)))
    (_, gX, gY), gq = _flat_scan(step, start, (Xs, _transposed(Xs), Js, Ys, X1), Q.shape[0])
    n = X.shape[0]
    return gq.reshape(-1, M)[: xq.shape[0]], gX.reshape(-1, M)[:n], gY.reshape(-1, Y.shape[1])[:n], None


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
