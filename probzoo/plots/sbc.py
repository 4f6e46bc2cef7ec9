"""The figure of simulation-based calibration: each quantity's rank-ECDF difference inside its simultaneous band."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from probzoo.plots import plt, save

__all__ = ["ecdf_difference"]


def ecdf_difference(z: np.ndarray, curves: Mapping[str, np.ndarray], band: np.ndarray, path: Path,
                    title: str = "") -> Path:
    """ECDF of the fractional ranks minus the uniform CDF, one line per quantity, against the simultaneous 95%
    band of calibrated ranks (Säilynoja, Bürkner & Vehtari 2022): a curve that leaves the band is miscalibrated
    (a U-shaped rank histogram dips then rises: the posterior is too narrow; a shifted one stays on one side)."""
    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    ax.fill_between(z, -band, band, color="0.85", label="95% band of calibrated ranks")
    colors = plt.get_cmap("tab20").colors  # one colour per curve: up to 12 are drawn, tab10 would repeat
    for i, (name, diff) in enumerate(curves.items()):
        ax.plot(z, diff, lw=1.2, label=name, color=colors[(2 * i) % 20 + (2 * i) // 20])
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xlabel("fractional rank of the true value among the posterior draws")
    ax.set_ylabel("ECDF - uniform CDF")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # beside the curves
    return save(fig, path)
