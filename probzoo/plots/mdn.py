"""Figures for mixture density regression: the source article's plots and the per-component ones it lacked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from probzoo.plots import plt, save

__all__ = ["bands_per_method", "components", "data_and_samples", "mean_std", "predictive_band"]


def _grid(fit: Any, x_grid: Any = None, n: int = 200) -> np.ndarray:
    if x_grid is not None:
        return np.asarray(x_grid, np.float32).reshape(-1, 1)
    ref = np.asarray(fit.arrays["x_reference"])[:, 0]
    return np.linspace(ref.min(), ref.max(), n, dtype=np.float32)[:, None]


def _truth(dataset: str | None, x: np.ndarray) -> dict[str, np.ndarray] | None:
    if dataset is None:
        return None
    from probzoo.data import true_components

    return true_components(dataset, x)


def _title(fit: Any) -> str:
    return f"MDN K={fit.model.n_components}, {fit.method}"


def data_and_samples(fit: Any, x: Any, y: Any, path: str | os.PathLike, seed: int = 0) -> Path:
    """The article's scatter: observed y and one predictive draw of y at every x."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    pred = fit.sample(x, num_samples=1, seed=seed)[0]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(x[:, 0], y, s=5, alpha=0.4, label="true y")
    ax.scatter(x[:, 0], pred, s=5, alpha=0.6, label="pred y")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{_title(fit)}: data and predictive samples")
    ax.legend(markerscale=3)
    return save(fig, path)


def mean_std(fit: Any, path: str | os.PathLike, dataset: str | None = None, x_grid: Any = None) -> Path:
    """The article's two curves: the predictive mean and standard deviation of y against the truth's."""
    g = _grid(fit, x_grid)
    truth = _truth(dataset, g)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, what, pred in ((axes[0], "mean", fit.mean(g)), (axes[1], "standard deviation", fit.std(g))):
        if truth is not None:
            w, m, s = truth["weights"], truth["means"], truth["stds"]
            mean = np.sum(w * m, 1)
            true = mean if what == "mean" else np.sqrt(np.sum(w * (s**2 + m**2), 1) - mean**2)
            ax.plot(g[:, 0], true, "k--", lw=1.5, label=f"true {what}")
        ax.plot(g[:, 0], pred, lw=2, label=f"predicted {what}")
        ax.set_xlabel("x")
        ax.set_ylabel(f"{what} of y")
        ax.set_title(f"{_title(fit)}: {what} of y | x")
        ax.legend()
    return save(fig, path)


def components(fit: Any, path: str | os.PathLike, dataset: str | None = None, x_grid: Any = None) -> Path:
    """Each component's mean, standard deviation and weight as functions of x (bands: 90% over posterior
    draws for Bayesian fits), with the true branches dashed."""
    g = _grid(fit, x_grid)
    p = fit.predict(g, draws=True)
    truth = _truth(dataset, g)
    K = fit.model.n_components
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key, label in zip(axes, ("means", "stds", "weights"), ("mean", "standard deviation", "weight"),
                              strict=True):
        for k in range(K):
            draws = p[key][:, :, k]
            color = f"C{k}"
            ax.plot(g[:, 0], draws.mean(0), color=color, lw=2, label=f"component {k}")
            if draws.shape[0] > 1:
                lo, hi = np.percentile(draws, [5, 95], axis=0)
                ax.fill_between(g[:, 0], lo, hi, color=color, alpha=0.25, lw=0)
            if truth is not None and k < truth[key].shape[1] and truth[key].shape[1] == K:
                ax.plot(g[:, 0], truth[key][:, k], "--", color="k", lw=1, label="truth" if k == 0 else None)
        if key == "weights":
            ax.set_ylim(0, 1)
        ax.set_xlabel("x")
        ax.set_ylabel(label)
        ax.set_title(f"component {label}s")
        ax.legend(fontsize=8)
    fig.suptitle(_title(fit))
    return save(fig, path)


def predictive_band(fit: Any, x: Any, y: Any, path: str | os.PathLike, levels: tuple[float, ...] = (0.5, 0.9),
                    x_grid: Any = None) -> Path:
    """Central predictive intervals of y | x over the data, with each component's mean and its 90% band
    over posterior draws (the epistemic part, wide where data are sparse)."""
    g = _grid(fit, x_grid)
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(x[:, 0], y, s=4, alpha=0.3, color="0.4", label="data")
    for level, alpha in zip(sorted(levels, reverse=True), (0.15, 0.3, 0.45), strict=False):
        lo, hi = fit.interval(g, level)
        ax.fill_between(g[:, 0], lo, hi, color="C0", alpha=alpha, lw=0, label=f"{level:.0%} predictive interval")
    means = fit.predict(g, draws=True)["means"]
    for k in range(means.shape[2]):
        lo, hi = np.percentile(means[:, :, k], [5, 95], axis=0)
        ax.plot(g[:, 0], means[:, :, k].mean(0), color=f"C{k + 1}", lw=1.5, label=f"component {k} mean")
        ax.fill_between(g[:, 0], lo, hi, color=f"C{k + 1}", alpha=0.5, lw=0)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{_title(fit)}: predictive bands")
    ax.legend(fontsize=8, loc="lower left")
    return save(fig, path)


def bands_per_method(fits: dict[str, Any], x: Any, y: Any, path: str | os.PathLike, level: float = 0.9) -> Path:
    """One panel per fitted method: the data, the central ``level`` predictive interval and the predictive
    mean over the inputs' range, on shared axes so the methods' uncertainty can be compared."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    n = len(fits)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), sharex=True, sharey=True, squeeze=False)
    for ax, (name, fit) in zip(axes[0], fits.items(), strict=True):
        g = _grid(fit)
        lo, hi = fit.interval(g, level)
        ax.scatter(x[:, 0], y, s=3, alpha=0.25, color="0.4")
        ax.fill_between(g[:, 0], lo, hi, color="C0", alpha=0.3, lw=0, label=f"{level:.0%} interval")
        ax.plot(g[:, 0], fit.mean(g), color="C1", lw=1.5, label="mean")
        ax.set_title(name)
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    return save(fig, path)
