"""Input to every model's constructor, fit and prediction methods, bad and good (property-based).

Bad input must raise ValueError or TypeError whose message names the offending argument: never a NaN
fit, a silently coerced array or a crash deep inside JAX. Good input in any form a user holds it in
(lists, tuples, float64, read-only, Fortran-ordered or strided arrays, pandas, JAX arrays, integers for
binary data, masked arrays with nothing masked) at any scale from 1e-6 to 1e6 must give exactly the
answer of the same numbers as a float32 array, and never a NaN; a masked array with a masked entry is
refused.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from fuzzing import (
    ARRAY_CORRUPTIONS,
    ARRAY_FORMS,
    SCALAR_CORRUPTIONS,
    as_form,
    bad_arrays,
    bad_scalar,
    masked_arrays,
    valid_arrays,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import probzoo as pz

FUZZ = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def raises_naming(arg: str, fn, *args, **kwargs) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    assert re.search(rf"(^|[\s,(]){re.escape(arg)}\b", str(info.value)), f"{arg!r} not named in: {info.value}"


# --- constructors: every hyper-parameter, every way to get it wrong --------------------------------------
CONSTRUCTOR_CASES = [
    (pz.MDN, "n_components", [0, -1, 2.5, "2", None]),
    (pz.MDN, "hidden", [(0,), (-3, 4), "64", (2.5,)]),
    (pz.MDN, "prior_scale", [bad_scalar(k) for k in SCALAR_CORRUPTIONS]),
    (pz.MDN, "min_scale", [bad_scalar(k) for k in SCALAR_CORRUPTIONS]),
    (pz.MDN, "activation", ["sigmoidal", 3]),
    (pz.UKR, "latent_dim", [0, -2, 1.5, "2"]),
    (pz.UKR, "bandwidth", [bad_scalar(k) for k in SCALAR_CORRUPTIONS]),
    (pz.UKR, "reg", [-0.1, float("nan"), float("inf"), "0.1"]),
    (pz.UKR, "init", ["spectral", 3.0]),
    (pz.ClusteringVAE, "n_clusters", [0, 1, -3, 2.0, "10"]),
    (pz.ClusteringVAE, "latent_dim", [0, -1, 1.5]),
    (pz.ClusteringVAE, "likelihood", ["poisson", 1]),
    (pz.ClusteringVAE, "encoder", ["resnet", 1]),  # None: the preset's
    (pz.ClusteringVAE, "augment_rotation", [-1.0, 200.0, float("nan"), "15"]),
    (pz.ClusteringVAE, "augment_scale", [-0.1, 1.0, float("inf"), "0.1"]),
    (pz.ClusteringVAE, "pseudo_label_threshold", [-0.5, 1.5, float("nan"), "0.95"]),
    (pz.ClusteringVAE, "temperature", [bad_scalar(k) for k in SCALAR_CORRUPTIONS]),
    (pz.ClusteringVAE, "beta", [-1.0, float("nan"), "8"]),
    (pz.ClusteringVAE, "alpha", [-1.0, float("inf"), "1"]),
    (pz.ClusteringVAE, "labelled_weight", [0.0, -2.0, float("nan"), "49"]),
    (pz.RBM, "n_hidden", [0, -4, 8.5, "64"]),
    (pz.RBM, "init_scale", [bad_scalar(k) for k in SCALAR_CORRUPTIONS]),
]


@pytest.mark.parametrize(
    "cls, arg, value",
    [(c, a, v) for c, a, vals in CONSTRUCTOR_CASES for v in vals],
    ids=lambda v: repr(v)[:20] if not isinstance(v, type) else v.__name__,
)
def test_constructors_reject_bad_hyperparameters(cls, arg, value):
    raises_naming(arg, cls, **{arg: value})


# --- fitted models, small, shared by the prediction-method cases ---------------------------------------
@pytest.fixture(scope="module")
def mdn_fit():
    x, y = pz.data.two_branch(n=300, seed=0)
    return pz.MDN(n_components=2, hidden=(8,)).fit(x, y, method="map", num_steps=30, seed=0)


@pytest.fixture(scope="module")
def ukr_fit():
    Y, _ = pz.data.saddle(n=64, grid=True, seed=0)
    return pz.UKR(latent_dim=2).fit(Y, method="map", num_steps=20, seed=0)


@pytest.fixture(scope="module")
def vae_fit():
    X, _ = pz.data.blobs(n=120, seed=0)
    return pz.ClusteringVAE(n_clusters=3, latent_dim=2, likelihood="normal", encoder="mlp", hidden=(16,)).fit(
        X, method="relaxed", epochs=1, batch_size=60, seed=0)


@pytest.fixture(scope="module")
def rbm_fit():
    V = (np.random.default_rng(0).random((64, 12)) > 0.5).astype(np.float32)
    return pz.RBM(n_hidden=4).fit(V, method="cd", epochs=1, batch_size=16, seed=0)


# --- fit: data arrays with one thing wrong --------------------------------------------------------------
# x of shape (n,) is one feature and (n, d) d features, both valid: those two corruptions are not errors here
MDN_X_CORRUPTIONS = tuple(c for c in ARRAY_CORRUPTIONS if c not in ("ndim_down", "width"))


@given(case=bad_arrays((40, 1), corruptions=MDN_X_CORRUPTIONS, low=0.1, high=1.0))
@FUZZ
def test_mdn_fit_rejects_bad_x(case):
    _, x = case
    y = np.zeros(40, np.float32)
    raises_naming("x", pz.MDN(hidden=(4,)).fit, x, y, num_steps=1)


@given(case=bad_arrays((40,), corruptions=("nan", "inf", "empty", "ndim_up", "object", "string", "complex")))
@FUZZ
def test_mdn_fit_rejects_bad_y(case):
    kind, y = case
    x = np.full((40, 1), 0.5, np.float32)
    raises_naming("y" if kind != "empty" else "y", pz.MDN(hidden=(4,)).fit, x, y, num_steps=1)


# any number of observed dimensions above latent_dim is valid at fit time
@given(case=bad_arrays((30, 3), corruptions=tuple(c for c in ARRAY_CORRUPTIONS if c != "width"), low=-1.0, high=1.0))
@FUZZ
def test_ukr_fit_rejects_bad_Y(case):
    _, Y = case
    raises_naming("Y", pz.UKR(latent_dim=2).fit, Y, num_steps=1)


# an unfitted model takes any number of columns: "width" is not an error at fit time
@given(case=bad_arrays((30, 2), corruptions=tuple(c for c in ARRAY_CORRUPTIONS if c != "width"), low=-1.0, high=1.0))
@FUZZ
def test_vae_fit_rejects_bad_X(case):
    kind, X = case
    model = pz.ClusteringVAE(n_clusters=3, likelihood="normal", encoder="mlp", hidden=(8,))
    raises_naming("X", model.fit, X, epochs=1, batch_size=10)


@given(case=bad_arrays((32, 6), corruptions=tuple(c for c in ARRAY_CORRUPTIONS if c != "width")))
@FUZZ
def test_rbm_fit_rejects_bad_V(case):
    _, V = case
    raises_naming("V", pz.RBM(n_hidden=3).fit, V, epochs=1, batch_size=8)


def test_mismatched_lengths_and_methods():
    x, y = pz.data.two_branch(n=50, seed=0)
    raises_naming("y", pz.MDN().fit, x, y[:-1])
    raises_naming("method", pz.MDN().fit, x, y, method="mle")
    Y, _ = pz.data.saddle(n=64)
    raises_naming("method", pz.UKR().fit, Y, method="gradient")
    raises_naming("latent_dim", pz.UKR(latent_dim=3).fit, Y)
    X, _ = pz.data.blobs(n=60)
    raises_naming("method", pz.ClusteringVAE(n_clusters=3, likelihood="normal").fit, X, method="gumbel")
    V = np.ones((16, 4), np.float32)
    raises_naming("method", pz.RBM(n_hidden=2).fit, V, method="pt")


@given(labels=st.one_of(
    st.lists(st.integers(3, 50), min_size=60, max_size=60),      # class index out of range
    st.lists(st.integers(-50, -2), min_size=60, max_size=60),    # below -1 (the unlabelled marker)
    st.lists(st.integers(-1, 2), min_size=1, max_size=59),       # wrong length
    st.lists(st.floats(0.1, 0.9), min_size=60, max_size=60),     # not integers
))
@FUZZ
def test_vae_rejects_bad_labels(labels):
    X, _ = pz.data.blobs(n=60, seed=0)
    model = pz.ClusteringVAE(n_clusters=3, likelihood="normal", encoder="mlp", hidden=(8,))
    raises_naming("labels", model.fit, X, labels=np.array(labels), epochs=1, batch_size=20)


def test_conv_encoder_needs_images():
    X, _ = pz.data.blobs(n=60)
    raises_naming("X", pz.ClusteringVAE(n_clusters=3, encoder="conv", likelihood="normal").fit, X, epochs=1)


@given(V=st.one_of(
    st.just(np.full((16, 6), 1.5, np.float32)),
    st.just(np.full((16, 6), -0.2, np.float32)),
))
@FUZZ
def test_rbm_rejects_values_outside_unit_interval(V):
    raises_naming("V", pz.RBM(n_hidden=3).fit, V, epochs=1, batch_size=8)


# --- prediction methods on fitted models ---------------------------------------------------------------
@given(case=bad_arrays((10, 1), corruptions=(*MDN_X_CORRUPTIONS, "width"), low=0.1, high=1.0))
@FUZZ
def test_mdn_prediction_methods(mdn_fit, case):
    _, x = case
    raises_naming("x", mdn_fit.predict, x)
    raises_naming("x", mdn_fit.sample, x, num_samples=3)
    raises_naming("x", mdn_fit.log_likelihood, x, np.zeros(10, np.float32))


def test_mdn_prediction_arguments(mdn_fit):
    x = np.full((5, 1), 0.5, np.float32)
    raises_naming("y", mdn_fit.log_likelihood, x, np.zeros(4, np.float32))
    raises_naming("num_samples", mdn_fit.sample, x, num_samples=0)
    raises_naming("y", mdn_fit.responsibilities, x, np.array([np.nan] * 5, np.float32))


@given(case=bad_arrays((7, 3), low=-1.0, high=1.0))
@FUZZ
def test_ukr_transform_rejects_bad_Y(ukr_fit, case):
    _, Y = case
    raises_naming("Y_new", ukr_fit.transform, Y)


@given(case=bad_arrays((7, 2), low=-1.0, high=1.0))
@FUZZ
def test_ukr_inverse_transform_rejects_bad_Z(ukr_fit, case):
    _, Z = case
    raises_naming("Z", ukr_fit.inverse_transform, Z)


@given(case=bad_arrays((9, 2), low=-3.0, high=3.0))
@FUZZ
def test_vae_prediction_methods(vae_fit, case):
    _, X = case
    for method in (vae_fit.predict, vae_fit.predict_proba, vae_fit.embed, vae_fit.reconstruct):
        raises_naming("X", method, X)


def test_vae_generate_arguments(vae_fit):
    raises_naming("cluster", vae_fit.generate, cluster=3, n=2)
    raises_naming("cluster", vae_fit.generate, cluster=-1, n=2)
    raises_naming("n", vae_fit.generate, cluster=0, n=0)


@given(case=bad_arrays((8, 12)))
@FUZZ
def test_rbm_scoring_methods(rbm_fit, case):
    _, V = case
    raises_naming("V", rbm_fit.free_energy, V)
    raises_naming("V", rbm_fit.pseudo_likelihood, V)


def test_rbm_likelihood_needs_binary(rbm_fit):
    V = np.full((4, 12), 0.5, np.float32)
    raises_naming("V", rbm_fit.log_likelihood, V, method="exact")
    raises_naming("method", rbm_fit.log_likelihood, (V > 0.4).astype(np.float32), method="magic")
    raises_naming("num_samples", rbm_fit.sample, num_chains=2, num_samples=0)


# --- good input in every form: the float32 answer, exactly ---------------------------------------------------
SURFACE = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _leaves(result) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(v) for v in result.values()]
    if isinstance(result, tuple):
        return [np.asarray(v) for v in result]
    return [np.asarray(result)]


def _differences(fns, arg_specs, draw_form) -> list[str]:
    """Every function, with each array argument in turn given in a drawn form (the others as float32): the
    calls whose answer differs from the float32 arrays' answer in any bit, or holds a NaN."""
    bases = [draw_form(spec) for spec in arg_specs]
    found = []
    for label, fn, positions in fns:
        for i in positions:
            form, _, value = bases[i]
            want = _leaves(fn(*[bases[j][1] for j in positions]))
            got = _leaves(fn(*[value if j == i else bases[j][1] for j in positions]))
            name = f"{label}, argument {i} as {form}"
            if len(got) != len(want) or not all(np.array_equal(g, w) for g, w in zip(got, want, strict=False)):
                found.append(f"{name}: another answer")
            elif any(np.isnan(w).any() for w in want):
                found.append(f"{name}: NaN in the answer")
    return found


MDN_ARGS = [dict(shape=(10, 1), low=0.1, high=1.0), dict(shape=(10,), low=-1.0, high=1.0)]


@given(data=st.data())
@SURFACE
def test_mdn_methods_give_the_float32_answer_for_every_form_and_scale(mdn_fit, data):
    f = mdn_fit
    fns = [("predict", f.predict, [0]), ("mean", f.mean, [0]), ("quantiles", f.quantiles, [0]),
           ("sample", lambda x: f.sample(x, num_samples=3, seed=1), [0]),
           ("log_likelihood", f.log_likelihood, [0, 1]), ("cdf", f.cdf, [0, 1]),
           ("responsibilities", f.responsibilities, [0, 1])]
    assert _differences(fns, MDN_ARGS, lambda spec: data.draw(valid_arrays(**spec))) == []


@given(data=st.data())
@SURFACE
def test_ukr_vae_rbm_methods_give_the_float32_answer_for_every_form_and_scale(ukr_fit, vae_fit, rbm_fit, data):
    draw = lambda spec: data.draw(valid_arrays(**spec))  # noqa: E731
    found = _differences([("transform", lambda Y: ukr_fit.transform(Y, num_iters=5), [0])],
                         [dict(shape=(7, 3), low=-1.0, high=1.0)], draw)
    found += _differences([("inverse_transform", ukr_fit.inverse_transform, [0])],
                          [dict(shape=(7, 2), low=-1.0, high=1.0)], draw)
    found += _differences([("predict_proba", vae_fit.predict_proba, [0]), ("embed", vae_fit.embed, [0]),
                           ("reconstruct", vae_fit.reconstruct, [0])], [dict(shape=(9, 2), low=-3.0, high=3.0)], draw)
    found += _differences([("free_energy", rbm_fit.free_energy, [0]), ("hidden_probs", rbm_fit.hidden_probs, [0]),
                           ("pseudo_likelihood", rbm_fit.pseudo_likelihood, [0]),
                           ("log_likelihood", lambda V: rbm_fit.log_likelihood(V, method="exact"), [0])],
                          [dict(shape=(8, 12), integer=True)], draw)
    assert found == []


@given(data=st.data())
@SURFACE
def test_masked_entries_are_refused_by_every_method(mdn_fit, ukr_fit, vae_fit, rbm_fit, data):
    x = np.full((10, 1), 0.5, np.float32)
    raises_naming("x", mdn_fit.predict, data.draw(masked_arrays((10, 1), 0.1, 1.0)))
    raises_naming("y", mdn_fit.log_likelihood, x, data.draw(masked_arrays((10,), -1.0, 1.0)))
    raises_naming("Y_new", ukr_fit.transform, data.draw(masked_arrays((7, 3), -1.0, 1.0)))
    raises_naming("Z", ukr_fit.inverse_transform, data.draw(masked_arrays((7, 2), -1.0, 1.0)))
    raises_naming("X", vae_fit.predict, data.draw(masked_arrays((9, 2), -3.0, 3.0)))
    raises_naming("V", rbm_fit.free_energy, data.draw(masked_arrays((8, 12))))


@pytest.fixture(scope="module")
def float32_losses():
    x, y = pz.data.two_branch(n=64, seed=0)
    return pz.MDN(n_components=2, hidden=(8,)).fit(x, y, num_steps=8, batch_size=32, seed=0).losses


@given(data=st.data())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mdn_fit_is_the_same_for_every_form_of_its_data(float32_losses, data):
    x, y = pz.data.two_branch(n=64, seed=0)
    form_x = data.draw(st.sampled_from([f for f in ARRAY_FORMS if f != "integer"]))
    form_y = data.draw(st.sampled_from([f for f in ARRAY_FORMS if f != "integer"]))
    x_form, y_form = as_form(form_x, x), as_form(form_y, y)
    got = pz.MDN(n_components=2, hidden=(8,)).fit(x_form, y_form, num_steps=8, batch_size=32, seed=0).losses
    np.testing.assert_array_equal(got, float32_losses, err_msg=f"x as {form_x}, y as {form_y}")

