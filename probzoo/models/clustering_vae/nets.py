"""The clustering VAE's networks: the encoders of q(y | x) and q(z | x, y) (the decoders are probzoo.nn's)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from probzoo.nn import MLP, ConvEncoder

METHODS = ("relaxed", "enum", "score")
DISCRETE = ("enum", "score")  # the methods in which y is a Categorical sample site
_EPS = 1e-4  # floor on the networks' standard deviations


def _leaky(x: jnp.ndarray) -> jnp.ndarray:
    return nn.leaky_relu(x, 0.2)


class _Encoder(nn.Module):
    """x -> (features h, logits of q(y | x)): the conv encoder for images, an MLP for vectors."""

    n_clusters: int
    kind: str
    hidden: tuple[int, ...]
    image_shape: tuple[int, int]
    channels: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        if self.kind == "conv":
            h = ConvEncoder(self.image_shape, self.channels, self.hidden[-1])(x)
        else:
            h = _leaky(MLP(self.hidden[:-1], self.hidden[-1], _leaky)(x))
        return h, nn.Dense(self.n_clusters)(h)


class _EncoderZ(nn.Module):
    """(h, y) -> (loc, scale) of q(z | x, y): one hidden layer on [h, y]; with ``uses_y=False``, q(z | x).

    The first layer is split as W_h h + W_y y (the same affine map as on the concatenation) so that an
    enumerated y of shape (K, 1, K) broadcasts against h of shape (B, H) without copying h K times. q(z | x)
    keeps h's shape (B, D) under an enumerated y: z is drawn once per row, not once per branch, and the
    decoder runs once per row instead of K times.
    """

    latent_dim: int
    hidden: int
    uses_y: bool = True

    @nn.compact
    def __call__(self, h: jnp.ndarray, y: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        a = nn.Dense(self.hidden, name="Dense_0")(h)
        if self.uses_y:
            a = a + nn.Dense(self.hidden, use_bias=False, name="Dense_1")(y)
        out = nn.Dense(2 * self.latent_dim, name="Dense_2")(_leaky(a))
        loc, raw = jnp.split(out, 2, axis=-1)
        return loc, jax.nn.softplus(raw) + _EPS
