"""Figures of the clustering VAE (article 002): reconstructions, samples per cluster, latent scatters."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from probzoo.plots import plt, save

__all__ = ["generated_grid", "image_side", "latent_scatter", "prior_scatter", "reconstructions", "toy_clusters",
           "toy_generated"]

_COLORS = ["r", "g", "b", "y", "pink", "olive", "cyan", "gray", "brown", "purple"]  # the article's palette


def _color(i: int) -> Any:
    return _COLORS[i] if i < len(_COLORS) else plt.cm.tab20(i % 20)


def image_side(n_features: int) -> tuple[int, int] | None:
    """(h, w) when rows are flattened square images (784 -> 28 x 28, 64 -> 8 x 8), else None."""
    side = math.isqrt(int(n_features))
    return (side, side) if side * side == n_features and side >= 4 else None


def reconstructions(originals: np.ndarray, recons: np.ndarray, path: str | os.PathLike, n: int = 10,
                    title: str = "top: data, bottom: reconstruction") -> Path:
    """The article's figure: originals (top row) above their reconstructions (bottom row)."""
    n = min(n, len(originals))
    shape = image_side(originals.shape[1])
    if shape is None:
        raise ValueError("originals: reconstructions are drawn for square images only")
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.6), squeeze=False)
    for i in range(n):
        for row, data in enumerate((originals, recons)):
            ax = axes[row, i]
            ax.imshow(np.asarray(data[i]).reshape(shape), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def generated_grid(images: np.ndarray, path: str | os.PathLike, title: str = "x ~ p(x | z), z ~ p(z | y): one row per y"
                   ) -> Path:
    """A (K, n, features) array of generated images as a K x n grid, row k from cluster k."""
    images = np.asarray(images)
    K, n = images.shape[:2]
    shape = image_side(images.shape[2])
    if shape is None:
        raise ValueError("images: the generated grid is drawn for square images only")
    fig, axes = plt.subplots(K, n, figsize=(0.6 * n, 0.6 * K), squeeze=False)
    for k in range(K):
        for j in range(n):
            ax = axes[k, j]
            ax.imshow(images[k, j].reshape(shape), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        axes[k, 0].set_ylabel(str(k), rotation=0, labelpad=10, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def latent_scatter(Z: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                   title: str = "z = mean of q(z | x, y), coloured by true label", legend: bool = True) -> Path:
    """2-D embeddings coloured by (true) label, as the article's latent figure."""
    Z, labels = np.asarray(Z), np.asarray(labels)
    if Z.shape[1] != 2:
        raise ValueError(f"Z: the scatter needs a 2-D latent space, got {Z.shape[1]} dimensions")
    fig, ax = plt.subplots(figsize=(6, 6))
    for i in np.unique(labels):
        sel = labels == i
        ax.scatter(Z[sel, 0], Z[sel, 1], s=4, color=_color(int(i)), label=str(i), alpha=0.7)
    if legend:
        ax.legend(fontsize=8, markerscale=3, loc="best")
    ax.set_xlabel("z1"), ax.set_ylabel("z2"), ax.set_title(title, fontsize=10)
    return save(fig, path)


def prior_scatter(fit: Any, path: str | os.PathLike, n: int = 500, seed: int = 0) -> Path:
    """Draws of z ~ p(z | y) for every cluster y (the article's last figure)."""
    K = fit.model.n_clusters
    Z = np.concatenate([fit.sample_latent(k, n, seed + k) for k in range(K)])
    y = np.repeat(np.arange(K), n)
    return latent_scatter(Z, y, path, title=f"{fit.method}: z ~ p(z | y), coloured by y")


def toy_clusters(X: np.ndarray, pred: np.ndarray, path: str | os.PathLike,
                 title: str = "2-D toy: points coloured by argmax q(y | x)") -> Path:
    X, pred = np.asarray(X), np.asarray(pred)
    fig, ax = plt.subplots(figsize=(5, 5))
    for i in np.unique(pred):
        sel = pred == i
        ax.scatter(X[sel, 0], X[sel, 1], s=5, color=_color(int(i)), label=f"y = {i}")
    ax.legend(fontsize=8, markerscale=2)
    ax.set_title(title, fontsize=10), ax.set_aspect("equal")
    return save(fig, path)


def toy_generated(fit: Any, path: str | os.PathLike, n: int = 500, seed: int = 0) -> Path:
    """2-D toy: x = decoder mean at z ~ p(z | y), one colour per y (the article's generated toy figure)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for k in range(fit.model.n_clusters):
        x = fit.generate(k, n, seed + k)
        ax.scatter(x[:, 0], x[:, 1], s=5, color=_color(k), label=f"y = {k}")
    ax.legend(fontsize=8, markerscale=2)
    ax.set_title(f"2-D toy ({fit.method}): generated from p(z | y), p(x | z)", fontsize=10), ax.set_aspect("equal")
    return save(fig, path)
