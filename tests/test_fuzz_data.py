"""Bad input to probzoo.data and the metrics: each case raises ValueError/TypeError naming the argument."""

import numpy as np
import pytest
from fuzzing import bad_arrays
from hypothesis import given, settings
from hypothesis import strategies as st

import probzoo as pz

GENERATORS = [pz.data.heteroscedastic, pz.data.two_branch, pz.data.blobs, pz.data.saddle]


@pytest.mark.parametrize("fn", GENERATORS, ids=lambda f: f.__name__)
@given(n=st.one_of(st.integers(-10**6, 0), st.floats(allow_nan=True), st.text(max_size=3), st.just(True)))
@settings(max_examples=25, deadline=None)
def test_generators_reject_bad_n(fn, n):
    with pytest.raises((ValueError, TypeError), match=r"^n: "):
        fn(n=n)


@pytest.mark.parametrize("fn", GENERATORS, ids=lambda f: f.__name__)
@given(seed=st.one_of(st.integers(-10**6, -1), st.floats(), st.text(max_size=3), st.none()))
@settings(max_examples=25, deadline=None)
def test_generators_reject_bad_seed(fn, seed):
    with pytest.raises((ValueError, TypeError), match=r"^seed: "):
        fn(seed=seed)


@pytest.mark.parametrize("fn", [pz.data.heteroscedastic_logpdf, pz.data.two_branch_logpdf],
                         ids=lambda f: f.__name__)
@given(case=bad_arrays((20,), corruptions=("nan", "inf", "empty", "ndim_up", "object", "string", "complex"),
                       low=0.1, high=1.0))
@settings(max_examples=30, deadline=None)
def test_true_logpdfs_reject_bad_y(fn, case):
    kind, y = case
    x = np.full((20, 1), 0.5, np.float32)
    with pytest.raises((ValueError, TypeError), match=r"^(y|x, y): "):
        fn(x, y)


def test_other_data_arguments():
    with pytest.raises(ValueError, match="^spread: "):
        pz.data.blobs(spread=0.0)
    with pytest.raises(ValueError, match="^n_clusters: "):
        pz.data.blobs(n_clusters=0)
    with pytest.raises(ValueError, match="^split: "):
        pz.data.mnist(split="validation")
    with pytest.raises(ValueError, match="^n: must be <= 5000"):
        pz.data.mnist(n=5001)
    with pytest.raises(FileNotFoundError, match="^path: "):
        pz.data.mnist(path="/nonexistent/folder")


@given(case=bad_arrays((12,), corruptions=("nan", "inf", "empty", "ndim_up", "object", "string", "complex")))
@settings(max_examples=30, deadline=None)
def test_metrics_reject_bad_labels(case):
    kind, pred = case
    true = np.arange(12) % 3
    with pytest.raises((ValueError, TypeError), match=r"^(pred|true, pred): "):
        pz.metrics.cluster_accuracy(true, pred)
