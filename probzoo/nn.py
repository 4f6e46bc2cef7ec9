"""Flax networks shared by the models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["MLP", "ConvDecoder", "ConvEncoder", "PatchConv"]


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
#
# The convolutions are written as patch extraction (pads, slices, reshapes) and one matrix product each.
# XLA's CPU backend runs a convolution's gradient inside a loop body (the SVI runner's ``lax.scan``) with
# non-canonical kernel layouts that miss its fast convolution path, about ten times slower than outside
# the loop; the matrix products and the data movement around them run at GEMM speed in both places.
# The layers keep ``nn.Conv``'s parameters (kernel (kh, kw, c_in, c_out), bias), names and initialisation,
# and compute the same function.


def _leaky(x: jnp.ndarray) -> jnp.ndarray:
    return nn.leaky_relu(x, 0.2)


class PatchConv(nn.Module):
    """``nn.Conv(features, (4, 4), strides=(2, 2), padding=1)`` or ``nn.Conv(features, (3, 3), padding="SAME")``
    on NHWC maps (n, H, W, c), written with matrix products.

    ``kind="down"``: 4x4 kernel, stride 2, zero padding 1: (n, H, W, c) -> (n, H/2, W/2, features), H and W
    even. The padded map is folded into 2 x 2 blocks (space-to-depth), so the strided 4x4 window is a 2 x 2
    window of blocks. ``kind="same"``: 3x3 kernel, stride 1, zero padding 1: (n, H, W, c) -> (n, H, W, features).

    A window of T taps over a map of c channels is one product of the (n H W, T c) patches with the
    (T c, features) kernel; when the output is much narrower than the input (4 features <= c), the map is
    multiplied by the (c, T features) kernel first and the T shifted outputs are summed, which avoids a
    T-times wider copy of the input and a product with few columns.
    """

    features: int
    kind: str = "same"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.kind not in ("down", "same"):
            raise ValueError(f"kind: expected 'down' or 'same', got {self.kind!r}")
        n, H, W, c = x.shape
        k, o = (4, self.features) if self.kind == "down" else (3, self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, c, o), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (o,), jnp.float32)
        if self.kind == "down":
            if H % 2 or W % 2:
                raise ValueError(f"x: a stride-2 convolution needs even height and width, got {H} x {W}")
            Ho, Wo = H // 2, W // 2
            # block (i, j) holds padded pixels (2i + a, 2j + b) in its 4c channels; kernel row 2 di + a,
            # column 2 dj + b, so the taps are the 2 x 2 block offsets (di, dj)
            xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            base = xp.reshape((n, Ho + 1, 2, Wo + 1, 2, c)).transpose(0, 1, 3, 2, 4, 5).reshape(
                (n, Ho + 1, Wo + 1, 4 * c))
            taps = kernel.reshape((2, 2, 2, 2, c, o)).transpose(0, 2, 1, 3, 4, 5).reshape((4, 4 * c, o))
            offsets, pad = [(di, dj) for di in (0, 1) for dj in (0, 1)], 0
        else:
            Ho, Wo = H, W
            base, taps = x, kernel.reshape((9, c, o))
            offsets, pad = [(dy, dx) for dy in range(3) for dx in range(3)], 1
        T, cb = taps.shape[:2]
        widths = ((0, 0), (pad, pad), (pad, pad))
        if 4 * o > cb:
            bp = jnp.pad(base, (*widths, (0, 0)))
            patches = jnp.concatenate([bp[:, dy:dy + Ho, dx:dx + Wo] for dy, dx in offsets], axis=-1)
            out = jnp.dot(patches.reshape((n * Ho * Wo, T * cb)), taps.reshape((T * cb, o)))
        else:
            _, Hb, Wb, _ = base.shape
            y = jnp.dot(base.reshape((n * Hb * Wb, cb)), taps.transpose(1, 0, 2).reshape((cb, T * o)))
            y = jnp.pad(y.reshape((n, Hb, Wb, T, o)), (*widths, (0, 0), (0, 0)))
            out = sum(y[:, dy:dy + Ho, dx:dx + Wo, t] for t, (dy, dx) in enumerate(offsets))
        return out.reshape((n, Ho, Wo, o)) + bias


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
        for i, c in enumerate(self.channels):
            h = _leaky(PatchConv(c, "down", name=f"Conv_{i}")(h))
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
        h = _leaky(_depth_to_space(PatchConv(4 * c1, "same", name="Conv_0")(h), c1))
        h = _depth_to_space(PatchConv(4, "same", name="Conv_1")(h), 1)
        return h.reshape((*lead, self.image_shape[0] * self.image_shape[1]))
