"""Strategies for bad input: every way an argument can be wrong that a user will meet.

``bad_arrays(shape)`` draws a corrupted version of a valid array of ``shape`` together with the name of
the corruption; the fuzz tests assert that each one raises ValueError/TypeError naming the argument.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

ARRAY_CORRUPTIONS = ("nan", "inf", "empty", "ndim_up", "ndim_down", "width", "object", "string", "complex")
SCALAR_CORRUPTIONS = ("zero", "negative", "nan", "inf", "string", "none")


@st.composite
def bad_arrays(draw, shape, corruptions=ARRAY_CORRUPTIONS, low=0.0, high=1.0):
    """(corruption, array): a valid float32 array of ``shape`` with one thing wrong."""
    kind = draw(st.sampled_from(corruptions))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    good = rng.uniform(low, high, size=shape).astype(np.float32)
    if kind in ("nan", "inf"):
        flat = good.reshape(-1).copy()
        flat[rng.integers(flat.size)] = np.nan if kind == "nan" else -np.inf if seed % 2 else np.inf
        return kind, flat.reshape(shape)
    if kind == "empty":
        return kind, good[:0]
    if kind == "ndim_up":
        return kind, good[..., None]
    if kind == "ndim_down":
        return kind, good.reshape(-1) if good.ndim > 1 else np.float32(good[0])
    if kind == "width":
        if good.ndim < 2:
            return kind, good[..., None]
        extra = draw(st.integers(1, 3))
        return kind, np.concatenate([good, good[:, :extra]], axis=1)
    if kind == "object":
        return kind, good.astype(object)
    if kind == "string":
        return kind, good.astype(str)
    return kind, good.astype(np.complex64)


def bad_scalar(kind: str):
    return {"zero": 0.0, "negative": -1.5, "nan": float("nan"), "inf": float("inf"), "string": "1.0",
            "none": None}[kind]
