"""Numerical hardening: extreme scales and saturating parameters keep every number finite."""

import numpy as np
import pytest

import probzoo as pz
from probzoo.distributions import RelaxedOneHotCategorical


def _all_finite(*arrays):
    return all(np.all(np.isfinite(np.asarray(a))) for a in arrays)


def test_mdn_extreme_input_and_output_scales():
    """x up to 1e4 and y with variance 1e-6: the network sees standardised inputs, answers come back in units."""
    x, y = pz.data.heteroscedastic(n=2_000, seed=0)
    x_big = x * 1e4                       # x in [1e3, 1e4]
    y_small = (y - x[:, 0]) * 1e-3        # sd of y up to 1e-3: variance up to 1e-6
    model = pz.MDN(n_components=2, hidden=(16, 16), min_scale=1e-7)  # the floor must sit below y's spread
    fit = model.fit(x_big, y_small, method="map", num_steps=400, seed=0)
    assert _all_finite(fit.losses)
    pred = fit.predict(x_big[:50])
    ll = fit.log_likelihood(x_big, y_small)
    assert _all_finite(pred["weights"], pred["means"], pred["stds"], ll)
    assert pred["stds"].min() > 0 and np.isfinite(fit.sample(x_big[:5], num_samples=10, seed=0)).all()


def test_mdn_collapsing_component_stays_finite():
    """Half the targets are one exact value: a component collapses onto it, bounded by the scale floor."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, size=(1_000, 1)).astype(np.float32)
    y = np.where(rng.random(1_000) < 0.5, 0.25, rng.normal(0.0, 1.0, 1_000)).astype(np.float32)
    model = pz.MDN(n_components=2, hidden=(16,), min_scale=1e-3)
    fit = model.fit(x, y, method="map", num_steps=600, seed=0)
    pred = fit.predict(x)
    assert _all_finite(fit.losses, pred["stds"], fit.log_likelihood(x, y))
    assert pred["stds"].min() >= 1e-3 * 0.999


def test_ukr_latents_far_apart():
    """Latents at scale 1e3: the log-space kernel keeps loss, gradients and reconstructions finite."""
    Y, _ = pz.data.saddle(n=100, grid=True, seed=0)
    init = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32) * 1e3
    fit = pz.UKR(latent_dim=2, init=init).fit(Y, method="map", num_steps=50, seed=0)
    assert _all_finite(fit.losses, fit.latents, fit.reconstruct(), fit.reconstruction_error())


def test_relaxed_categorical_at_temperature_001():
    d = RelaxedOneHotCategorical(0.01, logits=np.array([0.0, 1.0, -2.0, 30.0], np.float32))
    import jax

    # as inside a model: NumPyro scores a sample with its log-space intermediates, exact even where a
    # coordinate of the simplex point underflows to 0 at this temperature
    def draw_and_score(key):
        s, intermediates = d.sample_with_intermediates(key, (500,))
        return s, d.log_prob(s, intermediates)

    assert _all_finite(*jax.jit(draw_and_score)(jax.random.PRNGKey(0)))
    X, _ = pz.data.blobs(n=300, seed=0)
    fit = pz.ClusteringVAE(n_clusters=3, likelihood="normal", encoder="mlp", hidden=(32,), temperature=0.01).fit(
        X, method="relaxed", epochs=3, batch_size=50, seed=0)
    assert _all_finite(fit.losses, fit.predict_proba(X), fit.embed(X))


def test_rbm_with_saturating_weights():
    """|vW + c| in the hundreds: softplus and log-sigmoid in stable form, no inf - inf."""
    rng = np.random.default_rng(0)
    n_vis, n_hid = 16, 8
    params = {"W": rng.normal(0, 60.0, (n_vis, n_hid)).astype(np.float32),
              "b": rng.normal(0, 40.0, n_vis).astype(np.float32),
              "c": rng.normal(0, 40.0, n_hid).astype(np.float32)}
    fit = pz.RBM(n_hidden=n_hid).from_params(params)
    V = (rng.random((32, n_vis)) > 0.5).astype(np.float32)
    fe = fit.free_energy(V)
    assert _all_finite(fe) and np.abs(fe).max() > 100
    assert _all_finite(fit.pseudo_likelihood(V), fit.log_likelihood(V, method="exact"))
    assert np.isfinite(fit.log_partition(method="exact").estimate)
    draws = fit.sample(num_chains=2, num_samples=50, seed=0)
    assert _all_finite(np.asarray(draws.idata.posterior["free_energy"]))


@pytest.mark.parametrize("scale", [1e-4, 1e4])
def test_ukr_any_data_scale(scale):
    Y, _ = pz.data.saddle(n=100, grid=True, seed=0)
    fit = pz.UKR(latent_dim=2).fit(Y * scale, method="map", num_steps=100, seed=0)
    assert _all_finite(fit.losses, fit.reconstruct())
