"""ClusteringVAE: the 2-D toy, small MNIST runs (unsupervised and with labels), the enumerated ELBO against
an independent computation, checkpoints, save/load, InferenceData and bad input."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate
from numpyro.infer import TraceEnum_ELBO

import probzoo as pz
from probzoo.models.clustering_vae import ClusteringVAE
from probzoo.zoo import get_entry


@pytest.fixture(scope="module")
def blobs():
    return pz.data.blobs(n=1500, seed=0)


@pytest.fixture(scope="module")
def blob_fits(blobs):
    X, _ = blobs
    model = ClusteringVAE(n_clusters=3, likelihood="normal")
    return {m: model.fit(X, method=m, epochs=20, seed=0) for m in ("relaxed", "enum")}


@pytest.fixture(scope="module")
def mnist_small():
    return pz.data.mnist(n=2000, seed=0)


@pytest.mark.parametrize("method", ["relaxed", "enum"])
def test_blobs_are_clustered(blobs, blob_fits, method):
    X, t = blobs
    fit = blob_fits[method]
    scores = fit.evaluate(X, t, num_samples=4)
    assert scores["accuracy"] >= 0.97, scores
    assert scores["clusters_used"] == 3
    assert np.isfinite(scores["elbo"]) and scores["lpd"] >= scores["elbo"] - 0.05
    proba = fit.predict_proba(X)
    assert proba.shape == (1500, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(fit.predict(X), proba.argmax(1))
    # generation from p(z | y), p(x | z) lands in the blob that q(y | x) calls y
    pred = fit.predict(X)
    centres = np.stack([X[pred == k].mean(0) for k in range(3)])
    hits = []
    for k in range(3):
        gen = fit.generate(k, n=300, seed=1)
        assert np.argmin(((gen.mean(0) - centres) ** 2).sum(1)) == k
        hits.append(np.mean(((gen[:, None] - centres) ** 2).sum(-1).argmin(1) == k))
    assert np.mean(hits) >= 0.6, hits


def test_relaxed_and_enum_reach_comparable_elbos(blobs, blob_fits, tmp_path):
    X, t = blobs
    scores, figs = get_entry("clustering_vae").report(blob_fits["relaxed"], (X,), {"labels_true": t}, tmp_path)
    assert scores["accuracy"] >= 0.97 and {f.name for f in figs} >= {"clusters.png", "generated.png", "latent.png"}
    e_relaxed = blob_fits["relaxed"].evaluate(X, num_samples=8)["elbo"]
    e_enum = blob_fits["enum"].evaluate(X, num_samples=8)["elbo"]
    assert abs(e_relaxed - e_enum) < 0.5, (e_relaxed, e_enum)


def test_fit_outputs_inference_data_and_round_trips(tmp_path, blobs, blob_fits):
    X, _ = blobs
    fit = blob_fits["enum"]
    idata = fit.idata
    assert {"posterior", "log_likelihood", "posterior_predictive", "observed_data", "training"} <= set(idata.groups())
    post = idata.posterior
    assert post["y_probs"].shape == (1, 4, 1500, 3) and post["z"].shape == (1, 4, 1500, 2)
    np.testing.assert_allclose(post["y_probs"].values[0, 0], fit.predict_proba(X), atol=1e-6)
    assert idata.training["loss"].shape == (len(fit.losses),) == (20 * 15,)
    assert idata.posterior_predictive["x"].shape == (1, 4, 64, 2)
    assert idata.log_likelihood["x_loglik"].shape == (1, 4, 1500)
    path = fit.save(tmp_path / "fit")
    again = pz.load(path)
    assert type(again).__name__ == "ClusteringVAEFit" and again.method == "enum"
    np.testing.assert_array_equal(again.predict_proba(X[:50]), fit.predict_proba(X[:50]))
    np.testing.assert_array_equal(again.generate(1, 5, seed=3), fit.generate(1, 5, seed=3))
    np.testing.assert_array_equal(again.idata.training["loss"].values, fit.losses)


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, blobs):
    X, _ = blobs
    X = X[:600]
    model = ClusteringVAE(n_clusters=3, likelihood="normal")
    full = model.fit(X, method="relaxed", epochs=6, batch_size=50, seed=4)

    class Stop(Exception):
        pass

    def interrupt(step, losses, state):
        if step >= 48:
            raise Stop

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        model.fit(X, method="relaxed", epochs=6, batch_size=50, seed=4, checkpoint=ckpt, checkpoint_every=12,
                  callback=interrupt)
    resumed = model.fit(X, method="relaxed", epochs=6, batch_size=50, seed=4, resume=ckpt)
    np.testing.assert_array_equal(resumed.losses, full.losses)
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(full.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_enumerated_elbo_equals_the_sum_over_clusters(mnist_small):
    """TraceEnum_ELBO on model/guide (beta = 1) against the per-row bound computed independently in
    ``fit.elbo`` (explicit sum over y weighted by q(y | x), z by Monte Carlo): same value."""
    X = mnist_small[0][:16]
    model = ClusteringVAE(beta=1.0, balance=0.0)
    fit = model.fit(X, method="enum", epochs=2, batch_size=8, seed=0, num_draws=1, n_reconstructions=0)
    params = fit.params
    elbo = TraceEnum_ELBO(num_particles=200, max_plate_nesting=1)
    loss = elbo.loss(jax.random.PRNGKey(0), params, handlers.substitute(model.model, data=params),
                     config_enumerate(model.guide), X, method="enum")
    per_row = fit.elbo(X, num_samples=200, seed=1)
    assert abs(-float(loss) - per_row.sum()) < 2e-3 * abs(per_row.sum()), (float(loss), per_row.sum())


def test_beta_scales_only_the_z_sites():
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    model = ClusteringVAE(n_clusters=3, likelihood="normal", beta=8.0)
    seeded = handlers.seed(model.model, 0)
    tr = handlers.trace(handlers.substitute(seeded, substitute_fn=lambda msg: None)).get_trace(X, method="enum")
    assert tr["z"]["scale"] == 8.0 and tr["x"]["scale"] is None
    gtr = handlers.trace(handlers.seed(model.guide, 0)).get_trace(X, method="relaxed")
    assert gtr["z"]["scale"] == 8.0 and gtr["log_y"]["scale"] is None


def test_schedules_follow_the_optimiser_clock():
    model = ClusteringVAE(temperature=0.5, anneal=4.0, beta=8.0, kl_warmup=0.2)

    def at(step):
        with handlers.substitute(data={"clock": np.float32(step)}):
            tau, beta = model._schedule(None, 1000)
        return float(tau), float(beta)

    assert at(0) == pytest.approx((2.0, 8.0 / 200))
    tau_mid, beta_mid = at(250)
    assert tau_mid == pytest.approx(0.5 * 4.0 ** 0.5) and beta_mid == pytest.approx(8.0)
    assert at(100)[1] == pytest.approx(8.0 * 101 / 200)
    assert at(500) == pytest.approx((0.5, 8.0)) and at(900) == pytest.approx((0.5, 8.0))
    # without a schedule (direct calls, Predictive) the final values apply
    assert model._schedule(None, None) == (0.5, 8.0)


def test_small_mnist_unsupervised_uses_the_clusters(mnist_small, tmp_path):
    X, t = mnist_small
    fit = ClusteringVAE().fit(X, method="enum", epochs=5, seed=0, n_reconstructions=8)
    scores = fit.evaluate(X, t, num_samples=4)
    # a small budget (100 steps): well above chance (about 0.11 here) and no collapse onto a few clusters;
    # the full-budget runs (docs/clustering_vae.md) use all 10 clusters
    assert scores["clusters_used"] >= 5, scores
    assert scores["accuracy"] >= 0.27 and scores["nmi"] >= 0.15, scores
    assert fit.reconstruct(X[:4]).shape == (4, 784) and fit.embed(X[:4]).shape == (4, 2)
    g = fit.generate(0, n=6, seed=2)
    assert g.shape == (6, 784) and g.min() >= 0 and g.max() <= 1
    # the zoo entry's report: scores and the article's figures
    entry = get_entry("clustering_vae")
    scores, figs = entry.report(fit, (X[:500],), {"labels_true": t[:500]}, tmp_path)
    assert {"accuracy", "nmi", "elbo", "lpd", "seconds_per_epoch"} <= set(scores)
    names = {f.name for f in figs}
    assert {"reconstructions.png", "generated.png", "latent.png", "prior.png", "loss.png"} <= names
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figs)


def test_small_mnist_semi_supervised_anchors_clusters_to_labels(mnist_small):
    X, t = mnist_small
    labels = np.full(len(X), -1, np.int32)
    rng = np.random.default_rng(0)
    for c in range(10):
        labels[rng.choice(np.flatnonzero(t == c), 10, replace=False)] = c
    fit = ClusteringVAE().fit(X, labels=labels, method="enum", epochs=6, seed=0, n_reconstructions=0)
    unl = labels < 0
    pred = fit.predict(X[unl])
    # cluster k *is* class k (no matching needed) once labels anchor the clusters
    assert np.mean(pred == t[unl]) >= 0.5, np.mean(pred == t[unl])
    assert fit.info["n_labelled"] == 100


def test_bad_input_errors(blobs):
    X, _ = blobs
    conv = ClusteringVAE(encoder="conv")
    with pytest.raises(ValueError, match="^X: the conv encoder needs flattened 28 x 28 images"):
        conv.fit(np.zeros((10, 100), np.float32))
    with pytest.raises(ValueError, match="^temperature"):
        ClusteringVAE(temperature=0.0)
    with pytest.raises(ValueError, match="^temperature"):
        ClusteringVAE(temperature=-1.0)
    with pytest.raises(ValueError, match="^method"):
        ClusteringVAE(n_clusters=3, likelihood="normal").fit(X, method="gumbel")
    model = ClusteringVAE(n_clusters=3, likelihood="normal")
    with pytest.raises(ValueError, match="^labels: label 3 out of range"):
        model.fit(X, labels=np.full(len(X), 3))
    with pytest.raises(ValueError, match="^labels: expected 1500 labels"):
        model.fit(X, labels=np.zeros(10, int))
    with pytest.raises(ValueError, match="^labels: every row is labelled"):
        model.fit(X, labels=np.zeros(len(X), int))
    with pytest.raises(ValueError, match=r"^X: values must lie in \[0, 1\]"):
        ClusteringVAE().fit(X)
    with pytest.raises(ValueError, match="^X: contains"):
        model.fit(np.full((10, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="^likelihood"):
        ClusteringVAE(likelihood="poisson")
    with pytest.raises(ValueError, match="^encoder"):
        ClusteringVAE(encoder="resnet")
    with pytest.raises(ValueError, match="^n_clusters"):
        ClusteringVAE(n_clusters=1)
