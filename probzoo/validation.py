"""Input validation shared by every public entry point.

Each check raises ``ValueError`` (bad value) or ``TypeError`` (bad type) with a message that starts
with the offending argument's name, so a user sees at once which argument to fix. Nothing is coerced
silently: an array is only cast to float32 when its dtype is real (bool, integer or float).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_array",
    "check_binary",
    "check_bool",
    "check_choice",
    "check_int",
    "check_labels",
    "check_positive",
    "check_probability",
    "check_same_length",
    "check_seed",
    "check_unit_interval",
]


def _dtype_ok(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "biuf"


def as_array(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    width: int | None = None,
    min_rows: int = 1,
    dtype: Any = np.float32,
    finite: bool = True,
) -> np.ndarray:
    """Return ``x`` as a numpy array of ``dtype`` after checking it.

    Raises TypeError for non-numeric data (object, string, complex) and ValueError for the wrong
    number of dimensions, the wrong width (size of the last axis), fewer than ``min_rows`` rows,
    or NaN/inf entries.
    """
    if x is None:
        raise TypeError(f"{name}: expected an array, got None")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name}: expected a numeric array, got a string")
    if isinstance(x, np.ma.MaskedArray):
        # np.asarray would silently drop the mask and use the masked-out values as data
        n_masked = int(np.ma.count_masked(x))
        if n_masked:
            raise ValueError(f"{name}: is a masked array with {n_masked} masked value(s); probzoo neither drops "
                             "nor fills them: remove those rows or fill the values first")
        x = np.ma.getdata(x)
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name}: could not be read as an array ({err})") from None
    if not _dtype_ok(arr):
        raise TypeError(f"{name}: expected real numbers (bool, int or float), got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name}: expected {want} dimensions, got {arr.ndim} (shape {arr.shape})")
    if arr.ndim == 0:
        if min_rows > 0 and ndim is not None and 0 not in ((ndim,) if isinstance(ndim, int) else ndim):
            raise ValueError(f"{name}: expected an array, got a scalar")
    else:
        if arr.shape[0] < min_rows:
            raise ValueError(f"{name}: needs at least {min_rows} rows, got {arr.shape[0]} (shape {arr.shape})")
        if arr.size == 0 and min_rows > 0:
            raise ValueError(f"{name}: is empty (shape {arr.shape})")
        if width is not None and arr.ndim >= 2 and arr.shape[-1] != width:
            raise ValueError(f"{name}: expected {width} columns, got {arr.shape[-1]} (shape {arr.shape})")
    if dtype is not None:
        if np.dtype(dtype).kind in "iu" and arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError(f"{name}: expected integers, got non-integer values")
        arr = arr.astype(dtype, copy=False)
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    return arr


def check_bool(value: Any, name: str) -> bool:
    """True or False (numpy's bools too); a string such as "False" is refused, not read as truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_same_length(**arrays: np.ndarray) -> int:
    """Check that every array has the same number of rows; return that number."""
    lengths = {k: int(np.shape(v)[0]) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"{', '.join(lengths)}: mismatched lengths ({desc} rows)")
    return next(iter(lengths.values()))


def _is_real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if not _is_real_number(value):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be finite and {bound}, got {value}")
    return value


def check_probability(value: Any, name: str) -> float:
    """A real number in [0, 1]."""
    if not _is_real_number(value):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must lie in [0, 1], got {value}")
    return value


# every integer a user passes ends up in a JAX int32 (a loop bound, a shape, an index); larger ones would
# overflow there with a message naming no argument, so they are refused here
INT_MAX = 2**31 - 1
# seeds become 32-bit PRNG keys and numpy Generators
SEED_MAX = 2**32 - 1


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = INT_MAX) -> int:
    """An integer (not a bool, not a float) within the given bounds (at most ``INT_MAX`` unless told)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {value}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int:
    """An integer seed in [0, 2**32 - 1]."""
    return check_int(seed, name, minimum=0, maximum=SEED_MAX)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """One of a fixed set of names."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {', '.join(choices)}; got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(choices)}")
    return value


def check_labels(labels: Any, name: str, *, n: int, n_classes: int, allow_unlabelled: bool = True) -> np.ndarray:
    """An int array of length ``n`` with values in [0, n_classes) (and -1 for unlabelled rows)."""
    arr = as_array(labels, name, ndim=1, dtype=None, min_rows=0)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: expected integer class labels, got non-integer values")
    elif arr.dtype.kind == "b":
        raise TypeError(f"{name}: expected integer class labels, got booleans")
    arr = arr.astype(np.int32)
    if arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per row), got {arr.shape[0]}")
    low = -1 if allow_unlabelled else 0
    bad = (arr < low) | (arr >= n_classes)
    if np.any(bad):
        first = int(arr[np.argmax(bad)])
        allowed = f"-1 (unlabelled) or 0..{n_classes - 1}" if allow_unlabelled else f"0..{n_classes - 1}"
        raise ValueError(f"{name}: label {first} out of range; expected {allowed}")
    return arr


def check_unit_interval(x: np.ndarray, name: str) -> np.ndarray:
    """Every entry in [0, 1]."""
    if np.any((x < 0) | (x > 1)):
        lo, hi = float(np.min(x)), float(np.max(x))
        raise ValueError(f"{name}: values must lie in [0, 1], got range [{lo:g}, {hi:g}]")
    return x


def check_binary(x: np.ndarray, name: str) -> np.ndarray:
    """Every entry exactly 0 or 1."""
    if np.any((x != 0) & (x != 1)):
        n_bad = int(np.count_nonzero((x != 0) & (x != 1)))
        raise ValueError(
            f"{name}: must be binary (0/1) here, got {n_bad} non-binary value(s); "
            "binarise first, e.g. (V > 0.5).astype('float32')"
        )
    return x
