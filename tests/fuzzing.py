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


# --- valid input in every form a user has it in -------------------------------------------------------------
ARRAY_FORMS = ("float32", "float64", "list", "tuple", "read_only", "fortran", "strided", "unmasked", "pandas",
               "jax", "integer")


def as_form(form: str, base: np.ndarray):
    """``base`` (float32) in another form that holds exactly the same numbers."""
    if form == "float32":
        return base.copy()
    if form == "float64":
        return base.astype(np.float64)
    if form == "list":
        return base.tolist()
    if form == "tuple":
        return tuple(tuple(r) for r in base.tolist()) if base.ndim == 2 else tuple(base.tolist())
    if form == "read_only":
        out = base.copy()
        out.flags.writeable = False
        return out
    if form == "fortran":
        return np.asfortranarray(base)
    if form == "strided":  # a view with a step: not contiguous in memory
        return np.repeat(base, 2, axis=0)[::2]
    if form == "unmasked":
        return np.ma.masked_array(base, mask=np.zeros(base.shape, bool))
    if form == "pandas":
        import pandas as pd

        return pd.DataFrame(base) if base.ndim == 2 else pd.Series(base)
    if form == "jax":
        import jax.numpy as jnp

        return jnp.asarray(base)
    if form == "integer":  # only for integer-valued data (binary images, labels)
        assert np.all(base == np.round(base))
        return base.astype(np.int64 if base.min() < 0 else np.uint8)
    raise ValueError(form)


@st.composite
def valid_arrays(draw, shape, low=0.0, high=1.0, integer=False, forms=ARRAY_FORMS):
    """(form, base, same numbers in that form): base is float32 with shape ``shape``, scaled by a power of
    ten in [1e-6, 1e6] unless ``integer`` (then 0/1 entries)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if integer:
        base = (rng.random(shape) > 0.5).astype(np.float32)
    else:
        base = (rng.uniform(low, high, size=shape) * 10.0 ** draw(st.integers(-6, 6))).astype(np.float32)
        forms = tuple(f for f in forms if f != "integer")
    form = draw(st.sampled_from(forms))
    return form, base, as_form(form, base)


@st.composite
def masked_arrays(draw, shape, low=0.0, high=1.0):
    """A masked array with at least one masked entry (which probzoo must refuse, never use as data)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    base = rng.uniform(low, high, size=shape).astype(np.float32)
    mask = rng.random(shape) < draw(st.floats(0.0, 1.0))
    mask.reshape(-1)[rng.integers(mask.size)] = True
    return np.ma.masked_array(base, mask=mask)
