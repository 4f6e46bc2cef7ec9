"""Input to probzoo.data and the metrics: bad input raises ValueError/TypeError naming the argument; good input
in any form (lists, pandas, float64, JAX, read-only, strided, ...) gives exactly the float32 array's answer."""

import numpy as np
import pytest
from fuzzing import ARRAY_FORMS, as_form, bad_arrays, masked_arrays, valid_arrays
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


LABEL_FORMS = [f for f in ARRAY_FORMS if f not in ("fortran",)]


@given(seed=st.integers(0, 2**16), forms=st.tuples(st.sampled_from(LABEL_FORMS), st.sampled_from(LABEL_FORMS)),
       n_pred=st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_metrics_give_the_same_answer_for_every_form_of_labels(seed, forms, n_pred):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 4, 30).astype(np.float32)
    pred = rng.integers(0, n_pred, 30).astype(np.float32)
    t, p = as_form(forms[0], true), as_form(forms[1], pred)
    for fn in (pz.metrics.cluster_accuracy, pz.metrics.nmi, pz.metrics.confusion):
        want = fn(true.astype(int), pred.astype(int))
        np.testing.assert_array_equal(fn(t, p), want, err_msg=f"{fn.__name__} {forms}")


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_densities_give_the_same_answer_for_every_form_and_scale(data):
    form, base, value = data.draw(valid_arrays((5, 8), low=-3.0, high=0.0))
    np.testing.assert_array_equal(pz.metrics.mean_log_predictive_density(value),
                                  pz.metrics.mean_log_predictive_density(base), err_msg=form)
    x = np.linspace(0.1, 1.0, 8, dtype=np.float32)[:, None]
    form, y, y_form = data.draw(valid_arrays((8,), low=-1.0, high=1.0))
    for fn in (pz.data.heteroscedastic_logpdf, pz.data.two_branch_logpdf):
        want = fn(x, y)
        np.testing.assert_array_equal(fn(x, y_form), want, err_msg=f"{fn.__name__} y as {form}")
        assert not np.isnan(want).any()
    with pytest.raises(ValueError, match="^log_lik_draws: is a masked array"):
        pz.metrics.mean_log_predictive_density(data.draw(masked_arrays((5, 8), -3.0, 0.0)))
