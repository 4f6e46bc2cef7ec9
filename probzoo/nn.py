"""Flax networks shared by the models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["MLP", "ConvDecoder", "ConvEncoder"]


class MLP(nn.Module):
    """A dense network: ``hidden`` layers with ``activation``, then a linear layer of ``out`` units."""

    hidden: Sequence[int]
    out: int
    activation: Callable[[jnp.ndarray], jnp.ndarray] = nn.relu

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


# --- convolutional encoder/decoder for 28 x 28 images (the clustering VAE's article networks) ------------


def _leaky(x: jnp.ndarray) -> jnp.ndarray:
    return nn.leaky_relu(x, 0.2)


class ConvEncoder(nn.Module):
    """Image (..., H*W) -> features (..., ``out``): two 4x4 stride-2 convolutions (H -> H/2 -> H/4) and a
    dense layer, LeakyReLU(0.2) after each, as the clustering VAE article's encoder (without BatchNorm).
    """

    image_shape: tuple[int, int] = (28, 28)
    channels: Sequence[int] = (32, 64)
    out: int = 256

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        lead = x.shape[:-1]
        h = x.reshape((-1, *self.image_shape, 1))
        for c in self.channels:
            h = _leaky(nn.Conv(c, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(h))
        h = h.reshape((h.shape[0], -1))
        return _leaky(nn.Dense(self.out)(h)).reshape((*lead, self.out))


def _depth_to_space(h: jnp.ndarray, channels: int) -> jnp.ndarray:
    """(n, H, W, 4c) -> (n, 2H, 2W, c): each pixel's 4c features become a 2 x 2 block of c features."""
    n, H, W, _ = h.shape
    return h.reshape((n, H, W, 2, 2, channels)).transpose(0, 1, 3, 2, 4, 5).reshape((n, 2 * H, 2 * W, channels))


class ConvDecoder(nn.Module):
    """Latent (..., d) -> image logits (..., H*W): a dense layer, a dense layer onto a (H/4, W/4, c2) map,
    and two stride-2 upsamplings (H/4 -> H/2 -> H), as the article's decoder.

    Each upsampling is a sub-pixel convolution (a 3x3 convolution to 4c channels, then depth-to-space),
    which spans every stride-2 4x4 transposed convolution (the article's ``ConvTranspose2d(c, 4, 2, 1)``)
    and runs several times faster than XLA's transposed convolution on CPU.
    """

    image_shape: tuple[int, int] = (28, 28)
    channels: Sequence[int] = (32, 64)
    hidden: int = 256

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        lead = z.shape[:-1]
        h0, w0 = self.image_shape[0] // 4, self.image_shape[1] // 4
        c1, c2 = self.channels
        h = _leaky(nn.Dense(self.hidden)(z.reshape((-1, z.shape[-1]))))
        h = _leaky(nn.Dense(h0 * w0 * c2)(h)).reshape((-1, h0, w0, c2))
        h = _leaky(_depth_to_space(nn.Conv(4 * c1, (3, 3), padding="SAME")(h), c1))
        h = _depth_to_space(nn.Conv(4, (3, 3), padding="SAME")(h), 1)
        return h.reshape((*lead, self.image_shape[0] * self.image_shape[1]))
