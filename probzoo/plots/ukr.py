"""UKR figures: the mapped latent grid over the data (the articles' wireframe), the latent space, the
animation of the manifold covering the data over the iterations, and NUTS traces of invariant quantities."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from probzoo.plots import plt, save

__all__ = ["animate", "latent_scatter", "latents_per_method", "nuts_traces", "snapshots", "wireframe"]


def _check_2d(latents: np.ndarray, Y: np.ndarray) -> None:
    if latents.shape[1] != 2 or Y.shape[1] < 3:
        raise ValueError(f"latents: the wireframe needs 2-D latents and >= 3-D data, got latent_dim "
                         f"{latents.shape[1]} and D = {Y.shape[1]}")


def _draw(ax3, ax2, Y: np.ndarray, F: np.ndarray, latents: np.ndarray, color: np.ndarray, title: str) -> None:
    ax3.cla()
    ax2.cla()
    ax3.scatter(Y[:, 0], Y[:, 1], Y[:, 2], c=color, s=6, cmap="viridis", depthshade=False)
    ax3.plot_wireframe(F[..., 0], F[..., 1], F[..., 2], color="tab:red", lw=0.6)
    ax3.set_xlabel("$y_1$")
    ax3.set_ylabel("$y_2$")
    ax3.set_zlabel("$y_3$", labelpad=-2)
    ax3.set_title(title)
    ax2.scatter(latents[:, 0], latents[:, 1], c=color, s=8, cmap="viridis")
    ax2.set_xlabel("$x_1$")
    ax2.set_ylabel("$x_2$")
    ax2.set_title("latent space (colour: $y_1$)")
    ax2.set_aspect("equal", adjustable="datalim")


def wireframe(fit: Any, path: str | os.PathLike, color: np.ndarray | None = None, side: int = 20) -> Path:
    """The articles' figure: observed points with the wireframe of f over a regular latent grid (left),
    and the latents coloured by y1 (right)."""
    Y, X = np.asarray(fit.data), np.asarray(fit.latents)
    _check_2d(X, Y)
    color = Y[:, 0] if color is None else np.asarray(color)
    F = fit.model.grid_map(X[None], Y, side)[0]
    fig = plt.figure(figsize=(8.4, 3.6))
    ax3 = fig.add_subplot(121, projection="3d")
    ax2 = fig.add_subplot(122)
    _draw(ax3, ax2, Y, F, X, color, f"UKR ({fit.method}): f over the latent grid")
    return save(fig, path)


def latent_scatter(latents: np.ndarray, path: str | os.PathLike, color: np.ndarray | None = None,
                   title: str = "UKR latents") -> Path:
    """The latents (first two coordinates), coloured by ``color``."""
    latents = np.asarray(latents)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    sc = ax.scatter(latents[:, 0], latents[:, 1] if latents.shape[1] > 1 else np.zeros(len(latents)),
                    c=color, s=10, cmap="viridis")
    if color is not None:
        fig.colorbar(sc, ax=ax, label="$y_1$")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    return save(fig, path)


def animate(Y: np.ndarray, history: np.ndarray, model: Any, path: str | os.PathLike,
            color: np.ndarray | None = None, side: int = 20, fps: int = 6,
            steps: np.ndarray | None = None) -> Path:
    """GIF (matplotlib's PillowWriter) of the manifold covering the data: one frame per snapshot of the
    latents in ``history`` (frames, N, 2), as in the article's animation; ``model`` (the ``pz.UKR`` that was
    fitted) maps each snapshot's latent grid (``model.grid_map``)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    Y, history = np.asarray(Y), np.asarray(history)
    _check_2d(history[0], Y)
    color = Y[:, 0] if color is None else np.asarray(color)
    F = model.grid_map(history, Y, side)
    steps = np.arange(len(history)) if steps is None else np.asarray(steps)
    fig = plt.figure(figsize=(9, 4))
    ax3 = fig.add_subplot(121, projection="3d")
    ax2 = fig.add_subplot(122)

    def update(i: int) -> None:
        _draw(ax3, ax2, Y, F[i], history[i], color, f"step {int(steps[i])}")

    anim = FuncAnimation(fig, update, frames=len(history), interval=1000 // fps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(str(path), writer=PillowWriter(fps=fps), dpi=60)
    plt.close(fig)
    return path


def snapshots(Y: np.ndarray, history: np.ndarray, model: Any, path: str | os.PathLike,
              frames: tuple[int, ...] = (0, 2, 8, -1), steps: np.ndarray | None = None,
              color: np.ndarray | None = None, side: int = 15) -> Path:
    """A still of the animation: the data with the mapped latent grid at a few snapshots of ``history``."""
    Y, history = np.asarray(Y), np.asarray(history)
    _check_2d(history[0], Y)
    color = Y[:, 0] if color is None else np.asarray(color)
    idx = [f % len(history) for f in frames]
    F = model.grid_map(history[idx], Y, side)
    steps = np.arange(len(history)) if steps is None else np.asarray(steps)
    fig = plt.figure(figsize=(3 * len(idx), 3))
    for k, (i, Fi) in enumerate(zip(idx, F, strict=True)):
        ax = fig.add_subplot(1, len(idx), k + 1, projection="3d")
        ax.scatter(Y[:, 0], Y[:, 1], Y[:, 2], c=color, s=3, cmap="viridis", depthshade=False)
        ax.plot_wireframe(Fi[..., 0], Fi[..., 1], Fi[..., 2], color="tab:red", lw=0.5)
        ax.set_title(f"step {int(steps[i])}", fontsize=9)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
    return save(fig, path)


def nuts_traces(fit: Any, path: str | os.PathLike) -> Path:
    """Per-chain traces of invariant quantities (reconstruction error, a pairwise latent distance) next to
    a raw latent coordinate, which drifts with the chains' orientation and is not identified."""
    post = fit.idata.posterior
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    panels = [(post["recon_error"].values, "reconstruction error (invariant)"),
              (post["pair_dist"].values[..., 0], "distance of a latent pair (invariant)"),
              (post["x"].values[..., 0, 0], "raw latent $x_{1,1}$ (not identified)")]
    for ax, (values, title) in zip(axes, panels, strict=True):
        for c in range(values.shape[0]):
            ax.plot(values[c], lw=0.7, label=f"chain {c}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("draw")
        ax.set_ylabel(title.split(" (")[0])
    axes[0].legend(fontsize=8)
    return save(fig, path)


def latents_per_method(fits: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per fitted method: its latents (first two coordinates) coloured by the first data
    coordinate y1, as the articles colour their latent space."""
    n = len(fits)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.6), squeeze=False)
    for ax, (name, fit) in zip(axes[0], fits.items(), strict=True):
        X, Y = np.asarray(fit.latents), np.asarray(fit.data)
        ax.scatter(X[:, 0], X[:, 1] if X.shape[1] > 1 else np.zeros(len(X)), c=Y[:, 0], s=8, cmap="viridis")
        ax.set_title(name)
        ax.set_xlabel("$x_1$")
        ax.set_aspect("equal", adjustable="datalim")
    axes[0, 0].set_ylabel("$x_2$")
    return save(fig, path)
