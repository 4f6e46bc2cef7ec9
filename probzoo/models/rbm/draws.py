"""Bernoulli draws for the RBM's samplers: threefry-2x32 written out in full, two draws from every hash.

Block-Gibbs sampling draws a uniform number for every unit of every sweep, and with ``jax.random.bernoulli``
those draws take about a third of a CD epoch of a 784-64 RBM on a CPU, for two reasons:

- with ``jax_threefry_partitionable`` (JAX's default since 0.5) ``jax.random.bits`` spends one threefry hash on
  every 32-bit word it returns (it XORs the hash's pair of output words), so half of each hash is thrown away;
- on a CPU, JAX lowers the hash's 20 rounds as a loop of 5 steps, each of which writes its whole array of
  intermediate words to memory and reads it back.

:func:`bernoulli` keeps both words of each hash (the draws of a row's first half come from the first word, those of
its second half from the second) and computes the hash as one straight run of the 20 rounds (:func:`threefry2x32`,
the same function as ``jax.extend.random.threefry2x32_p``, word for word), which XLA fuses into a single pass over
the array: about a quarter of ``jax.random.bernoulli``'s time on a CPU (78 minibatches of 64 x 784 draws in 4.5-4.8
ms against 18-20 ms; docs/benchmarks.md). Each word becomes a uniform number exactly as ``jax.random.uniform`` makes
one (its top 23 bits), so every draw is Bernoulli(p) as ``jax.random.bernoulli`` draws it, from another stream of
bits.

The counters are the draws' positions, so each draw depends on the key and its position alone: a program split
over devices (rows on different devices) draws what one device draws.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

_MANTISSA_BITS = 23  # float32's
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # threefry-2x32's, for even and odd groups of four rounds
_PARITY = np.uint32(0x1BD11BDA)  # threefry's key-schedule constant


def threefry2x32(key: tuple[jax.Array, jax.Array], x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011) of the counter words ``x`` under the key words ``key``:
    what ``jax.extend.random.threefry2x32_p`` computes, written as straight-line uint32 arithmetic (JAX's CPU
    lowering runs the rounds as a loop)."""
    k0, k1, x0, x1 = (jnp.asarray(w, jnp.uint32) for w in (*key, *x))
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = x0 ^ ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r)))
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def _threefry_words(key: jax.Array) -> tuple[jax.Array, jax.Array] | None:
    """The key's two 32-bit words, or None for a key of another generator."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        key = jax.random.key_data(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        return None
    return key[0], key[1]


@jax.jit  # one program where it is called eagerly (AIS's and PCD's starting states), not op by op
def bernoulli(key: jax.Array, p: jax.Array) -> jax.Array:
    """Bernoulli(``p``) draws of ``p``'s shape as float32 0 / 1: ``jax.random.bernoulli(key, p)``'s
    distribution from half its hashes, each computed in one pass (see the module's docstring). Keys of another
    generator than threefry fall back to ``jax.random.bernoulli``."""
    p = jnp.asarray(p, jnp.float32)
    words = _threefry_words(key)
    if words is None or p.ndim == 0:
        return jax.random.bernoulli(key, p).astype(jnp.float32)
    *lead, n = p.shape
    half = (n + 1) // 2
    shape = (*lead, half)
    if math.prod(shape) >= 2**32:
        raise ValueError(f"p: {p.shape} holds more values than one key's 32-bit counters can number")
    # each hash's counter: its position in the (..., half) array, row-major (the high counter word is 0)
    strides = np.cumprod((1, *shape[::-1]))[:-1][::-1]
    position = sum(jax.lax.broadcasted_iota(jnp.uint32, shape, d) * jnp.uint32(s) for d, s in enumerate(strides))
    first, second = threefry2x32(words, (jnp.zeros(shape, jnp.uint32), position))
    # both words leave the hash as arrays: a guard against XLA fusing the hash into the consumers of each half,
    # where it would be computed once per word (no cost measured here: 4.55-4.67 ms against 4.54-4.85 without)
    first, second = jax.lax.optimization_barrier((first, second))
    bits = jnp.concatenate([first, second], axis=-1)[..., :n]
    # jax.random.uniform's construction: 23 random mantissa bits under the exponent of 1.0, less 1
    one = np.array(1.0, np.float32).view(np.uint32)
    u = jax.lax.bitcast_convert_type((bits >> (32 - _MANTISSA_BITS)) | one, jnp.float32) - 1.0
    return (u < p).astype(jnp.float32)


# What a training checkpoint records of the draws, so that a run resumes only with the stream it started with.
STREAM = "threefry2x32, two Bernoulli draws a hash"
