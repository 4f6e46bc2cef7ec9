"""Matplotlib figures. Shared helpers live here; each model's figures are in ``probzoo.plots.<model>``."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")  # probzoo writes PNG files; it never needs a screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["loss_curve", "plt", "save"]


def save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Save ``fig`` as PNG at ``path`` (folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def loss_curve(losses: np.ndarray, path: str | os.PathLike, title: str = "training loss") -> Path:
    """The loss trace (and its running mean, since minibatch losses are noisy)."""
    losses = np.asarray(losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.5, alpha=0.5, label="per step")
    if len(losses) >= 20:
        w = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w - 1, len(losses)), smooth, lw=1.5, label=f"mean of {w}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    lo, hi = np.percentile(losses, [1, 99]) if len(losses) > 10 else (losses.min(), losses.max())
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        pad = 0.05 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    ax.legend()
    return save(fig, path)
