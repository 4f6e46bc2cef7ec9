import numpy as np
import pytest

from probzoo.validation import (
    as_array,
    check_binary,
    check_choice,
    check_int,
    check_labels,
    check_positive,
    check_same_length,
    check_unit_interval,
)


@pytest.mark.parametrize(
    "value, kwargs, exc, match",
    [
        (np.array([1.0, np.nan]), {}, ValueError, "x: contains 1 NaN"),
        (np.array([[np.inf]]), {}, ValueError, "x: contains 1 NaN or infinite"),
        (np.zeros((3, 2)), {"ndim": 1}, ValueError, "x: expected 1 dimensions, got 2"),
        (np.zeros((3, 2)), {"ndim": 2, "width": 3}, ValueError, "x: expected 3 columns, got 2"),
        (np.zeros((0, 2)), {"ndim": 2}, ValueError, "x: needs at least 1 rows, got 0"),
        (np.zeros((2, 2)), {"ndim": 2, "min_rows": 3}, ValueError, "x: needs at least 3 rows"),
        (np.array(["a", "b"]), {}, TypeError, "x: expected real numbers"),
        (np.array([1 + 2j]), {}, TypeError, "x: expected real numbers"),
        (np.array([object()]), {}, TypeError, "x: expected real numbers"),
        ("abc", {}, TypeError, "x: expected a numeric array, got a string"),
        (None, {}, TypeError, "x: expected an array, got None"),
    ],
)
def test_as_array_errors_name_the_argument(value, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        as_array(value, "x", **kwargs)


def test_as_array_accepts_and_casts():
    out = as_array([[1, 2], [3, 4]], "x", ndim=2, width=2)
    assert out.dtype == np.float32 and out.shape == (2, 2)


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="x, y: mismatched lengths"):
        check_same_length(x=np.zeros(3), y=np.zeros(4))
    assert check_same_length(x=np.zeros(3), y=np.zeros(3)) == 3


def test_scalar_checks():
    with pytest.raises(ValueError, match="bandwidth: must be finite and > 0"):
        check_positive(0.0, "bandwidth")
    with pytest.raises(ValueError, match="bandwidth"):
        check_positive(float("nan"), "bandwidth")
    with pytest.raises(TypeError, match="bandwidth: expected a real number"):
        check_positive("1", "bandwidth")
    with pytest.raises(ValueError, match="n_components: must be >= 1"):
        check_int(0, "n_components", minimum=1)
    with pytest.raises(TypeError, match="n_components: expected an integer"):
        check_int(2.0, "n_components")
    with pytest.raises(TypeError, match="n_components"):
        check_int(True, "n_components")
    with pytest.raises(ValueError, match="method: unknown value 'mle'; expected one of map, nuts"):
        check_choice("mle", "method", ("map", "nuts"))


def test_labels():
    assert check_labels([0, -1, 2], "labels", n=3, n_classes=3).tolist() == [0, -1, 2]
    with pytest.raises(ValueError, match="labels: label 3 out of range"):
        check_labels([0, 3, 1], "labels", n=3, n_classes=3)
    with pytest.raises(ValueError, match="labels: expected 4 labels"):
        check_labels([0, 1, 1], "labels", n=4, n_classes=3)
    with pytest.raises(ValueError, match="labels: expected integer class labels"):
        check_labels([0.5, 1, 1], "labels", n=3, n_classes=3)


def test_binary_and_unit_interval():
    with pytest.raises(ValueError, match="V: must be binary"):
        check_binary(np.array([0.0, 0.5]), "V")
    with pytest.raises(ValueError, match=r"V: values must lie in \[0, 1\]"):
        check_unit_interval(np.array([0.0, 1.5]), "V")
