"""Flax networks shared by the models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["MLP"]


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
