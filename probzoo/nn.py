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
# The layers compute flax's ``nn.Conv`` / ``nn.ConvTranspose`` with the same parameters (kernel
# (kh, kw, c_in, c_out), bias).


def _leaky(x: jnp.ndarray) -> jnp.ndarray:
    return nn.leaky_relu(x, 0.2)


def _depth_to_space(h: jnp.ndarray, channels: int) -> jnp.ndarray:
    """(n, H, W, 4c) -> (n, 2H, 2W, c): each pixel's 4c features become a 2 x 2 block of c features."""
    n, H, W, _ = h.shape
    return h.reshape((n, H, W, 2, 2, channels)).transpose(0, 1, 3, 2, 4, 5).reshape((n, 2 * H, 2 * W, channels))


class PatchConv(nn.Module):
    """A 4x4 stride-2 convolution (``kind="down"``) or transposed convolution (``kind="up"``) on NHWC maps
    (n, H, W, c), written as matrix products over patches.

    - ``"down"``: ``nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))``, H x W -> H/2 x W/2
      (PyTorch's ``Conv2d(c, features, 4, 2, 1)``). The padded map is folded into 2 x 2 blocks
      (space-to-depth), so the strided 4x4 window is a 2 x 2 window of blocks.
    - ``"up"``: ``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))``,
      H x W -> 2H x 2W (PyTorch's ``ConvTranspose2d(c, features, 4, 2, 1)`` with the kernel flipped). Each
      2 x 2 window of the padded input gives the 2 x 2 block of outputs that it alone reaches (4 features
      channels, then depth-to-space), cropped by one pixel at the border.

    Parameters ``kernel`` (4, 4, c, features) and ``bias`` as in those flax layers. Both are a 2 x 2 window
    (T = 4 taps) over a map of d channels (d = 4c blocks for "down", c for "up") with m outputs per position
    (m = features for "down", 4 features for "up"): one product of the (n H W, T d) patches with the (T d, m)
    kernel, or, when the outputs are few (4 m <= d), the product of the map with the (d, T m) kernel followed
    by the sum of the T shifted results, which avoids a T-times wider copy of the input.
    """

    features: int
    kind: str = "down"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.kind not in ("down", "up"):
            raise ValueError(f"kind: expected 'down' or 'up', got {self.kind!r}")
        n, H, W, c = x.shape
        o = self.features
        # LeCun initialisation over the inputs that reach one output: 4 x 4 x c for the convolution (as
        # nn.Conv), 2 x 2 x c for the stride-2 transposed convolution
        init = nn.initializers.variance_scaling(4.0 if self.kind == "up" else 1.0, "fan_in", "truncated_normal")
        kernel = self.param("kernel", init, (4, 4, c, o), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (o,), jnp.float32)
        offsets = [(0, 0), (0, 1), (1, 0), (1, 1)]
        if self.kind == "down":
            if H % 2 or W % 2:
                raise ValueError(f"x: a stride-2 convolution needs even height and width, got {H} x {W}")
            Ho, Wo, pad = H // 2, W // 2, 0
            # block (i, j) holds padded pixels (2i + a, 2j + b); kernel row 2 di + a, column 2 dj + b
            xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            base = xp.reshape((n, Ho + 1, 2, Wo + 1, 2, c)).transpose(0, 1, 3, 2, 4, 5).reshape(
                (n, Ho + 1, Wo + 1, 4 * c))
            taps = kernel.reshape((2, 2, 2, 2, c, o)).transpose(0, 2, 1, 3, 4, 5).reshape((4, 4 * c, o))
        else:
            # the window of padded rows (q + t, t = 0, 1) gives output rows 2q - 1 + a (a = 0, 1), row q + t
            # through kernel row 2 t + 1 - a
            Ho, Wo, pad, base = H + 1, W + 1, 1, x
            taps = kernel.reshape((2, 2, 2, 2, c, o))[:, ::-1, :, ::-1].transpose(0, 2, 4, 1, 3, 5).reshape(
                (4, c, 4 * o))
        T, cb, m = taps.shape
        widths = ((0, 0), (pad, pad), (pad, pad))
        if 4 * m > cb:
            bp = jnp.pad(base, (*widths, (0, 0)))
            patches = jnp.concatenate([bp[:, dy:dy + Ho, dx:dx + Wo] for dy, dx in offsets], axis=-1)
            out = jnp.dot(patches.reshape((n * Ho * Wo, T * cb)), taps.reshape((T * cb, m)))
        else:
            _, Hb, Wb, _ = base.shape
            y = jnp.dot(base.reshape((n * Hb * Wb, cb)), taps.transpose(1, 0, 2).reshape((cb, T * m)))
            y = jnp.pad(y.reshape((n, Hb, Wb, T, m)), (*widths, (0, 0), (0, 0)))
            out = sum(y[:, dy:dy + Ho, dx:dx + Wo, t] for t, (dy, dx) in enumerate(offsets))
        out = out.reshape((n, Ho, Wo, m))
        if self.kind == "up":
            out = _depth_to_space(out, o)[:, 1:-1, 1:-1]
        return out + bias


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


class ConvDecoder(nn.Module):
    """Latent (..., d) -> image logits (..., H*W): a dense layer, a dense layer onto a (H/4, W/4, c2) map, and
    two 4x4 stride-2 transposed convolutions (H/4 -> H/2 -> H, c2 -> c1 -> 1 channels), LeakyReLU(0.2)
    after all but the last, as the article's decoder (``ConvTranspose2d(c, 4, 2, 1)``, without BatchNorm).
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
        h = _leaky(PatchConv(c1, "up", name="ConvTranspose_0")(h))
        h = PatchConv(1, "up", name="ConvTranspose_1")(h)
        return h.reshape((*lead, self.image_shape[0] * self.image_shape[1]))
