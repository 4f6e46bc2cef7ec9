"""Figures of the restricted Boltzmann machine: the article's originals-vs-reconstructions and filter
grids, samples of the Gibbs chains, the pseudo-likelihood per epoch and free-energy traces."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from probzoo.plots import plt, save

__all__ = ["chain_samples", "ess_per_second_bars", "filters", "free_energy_traces", "image_grid",
           "pseudo_likelihood_curve", "reconstructions"]


def image_grid(images: np.ndarray, image_shape: Sequence[int], ncol: int, pad: int = 1) -> np.ndarray:
    """Tile rows of flattened images into one array, ``ncol`` images per row, ``pad`` pixels apart."""
    images = np.asarray(images, np.float32).reshape((-1, *image_shape))
    n, (h, w) = images.shape[0], image_shape
    nrow = -(-n // ncol)
    grid = np.ones((nrow * (h + pad) - pad, ncol * (w + pad) - pad), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return grid


def _show(ax: plt.Axes, grid: np.ndarray, title: str) -> None:
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)


def reconstructions(originals: np.ndarray, recon: np.ndarray, image_shape: Sequence[int],
                    path: str | os.PathLike, ncol: int = 8, label: str = "") -> Path:
    """The article's figure: originals (left) next to their reconstructions p(v | h) (right); ``label``
    (e.g. the method) leads both titles."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
    _show(axes[0], image_grid(originals, image_shape, ncol), f"{label}: original" if label else "original")
    _show(axes[1], image_grid(recon, image_shape, ncol), f"{label}: reconstructed" if label else "reconstructed")
    fig.tight_layout()
    return save(fig, path)


def filters(W: np.ndarray, image_shape: Sequence[int], path: str | os.PathLike, max_filters: int = 64,
            label: str = "") -> Path:
    """Each hidden unit's weights W[:, j] as an image, min-max scaled per unit as the article does."""
    W = np.asarray(W, np.float64)[:, :max_filters]
    lo, hi = W.min(axis=0), W.max(axis=0)
    scaled = ((W - lo) / np.where(hi > lo, hi - lo, 1.0)).T
    ncol = int(np.ceil(np.sqrt(scaled.shape[0])))
    fig, ax = plt.subplots(figsize=(6, 6))
    title = f"filters of {scaled.shape[0]} hidden units"
    _show(ax, image_grid(scaled, image_shape, ncol), f"{label}: {title}" if label else title)
    return save(fig, path)


def chain_samples(v: np.ndarray, image_shape: Sequence[int], path: str | os.PathLike,
                  n_chains: int = 8, n_steps: int = 10, label: str = "") -> Path:
    """Samples of the Gibbs chains: one row per chain, ``n_steps`` draws evenly spaced along it.

    ``v`` has shape (chains, draws, n_visible).
    """
    v = np.asarray(v)
    n_chains = min(n_chains, v.shape[0])
    cols = np.linspace(0, v.shape[1] - 1, min(n_steps, v.shape[1])).astype(int)
    tiles = v[:n_chains][:, cols].reshape(-1, v.shape[-1])
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 0.5, 1.0 * n_chains + 0.6))
    title = f"RBMGibbs chains (rows), draws {cols[0]}..{cols[-1]} (columns)"
    _show(ax, image_grid(tiles, image_shape, len(cols)), f"{label}: {title}" if label else title)
    return save(fig, path)


def pseudo_likelihood_curve(epoch_pl: dict[str, np.ndarray], path: str | os.PathLike,
                            ylabel: str = "pseudo-likelihood (article scale)") -> Path:
    """Pseudo-likelihood per epoch, one line per named run."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, values in epoch_pl.items():
        values = np.asarray(values)
        ax.plot(np.arange(len(values)), values, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)


def free_energy_traces(free_energy: np.ndarray, path: str | os.PathLike, title: str = "free energy") -> Path:
    """Trace of F(v) along each chain, (chains, draws)."""
    free_energy = np.asarray(free_energy)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, f in enumerate(free_energy):
        ax.plot(f, lw=0.6, label=f"chain {i}")
    ax.set_xlabel("draw")
    ax.set_ylabel("F(v)")
    ax.set_title(title)
    if free_energy.shape[0] <= 8:
        ax.legend(fontsize=7, ncol=4)
    return save(fig, path)


def ess_per_second_bars(rows: list[dict], title: str, path: str | os.PathLike) -> Path:
    """ESS of the free energy per second for each sampler (log scale): ``rows`` of {"sampler",
    "ess_per_second"} and optionally "ess_per_second_mcmc" (the same ESS per second of ``MCMC.run``'s
    wall time, drawn beside it)."""
    names = [r["sampler"] for r in rows]
    both = all("ess_per_second_mcmc" in r for r in rows)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    x = np.arange(len(rows))
    width = 0.4 if both else 0.6
    ax.bar(x - (0.2 if both else 0), [r["ess_per_second"] for r in rows], width,
           label="kernel time" if both else "wall time")
    if both:
        ax.bar(x + 0.2, [r["ess_per_second_mcmc"] for r in rows], width, label="MCMC.run wall time")
    ax.set_xticks(x, names)
    ax.set_yscale("log")
    ax.set_ylabel("ESS of F(v) per second (higher is better)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save(fig, path)
