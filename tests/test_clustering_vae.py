"""ClusteringVAE: the 2-D toy, checkpoints, save/load, InferenceData, schedules, the conv layers against
flax's and bad input (the MNIST runs are in test_clustering_vae_mnist.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.primitives import Messenger

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
    # Where 20 epochs end depends on the seed (and so on the processor): over seeds 0-5, two versions of the
    # SVI loop, both methods, the ELBO per point was -5.37 +- 0.56 (range -6.6 to -4.6) and relaxed's minus
    # enum's at one seed -0.13 +- 0.44 (at most 0.67 apart). Bounds 3.5 sd out: a fit that trains reaches more
    # than -7.3 (after 1-3 epochs the ELBO is -9.6 to -9.0), and neither estimator trains to a worse objective.
    assert min(e_relaxed, e_enum) > -7.3, (e_relaxed, e_enum)
    assert abs(e_relaxed - e_enum) < 1.7, (e_relaxed, e_enum)


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


@pytest.mark.reproducibility
@pytest.mark.parametrize("init", ["random", "autoencoder"])
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, blobs, init):
    """The resumed run takes every parameter from its checkpoint (a pretrained start is not pretrained again)
    and ends bit-identical to the uninterrupted one: the same compiled program on the same state."""
    X, _ = blobs
    X = X[:600]
    model = ClusteringVAE(n_clusters=3, likelihood="normal", init=init, pretrain_epochs=3)
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


def test_beta_scales_only_the_z_sites():
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    model = ClusteringVAE(n_clusters=3, likelihood="normal", beta=8.0)

    def scales(fn, method, sites):
        # the sites' scales are Python values set while tracing: read them abstractly, nothing compiled
        out = {}

        def traced():
            tr = handlers.trace(handlers.seed(fn, 0)).get_trace(X, method=method)
            out.update({k: tr[k]["scale"] for k in sites})
            return 0

        jax.make_jaxpr(traced)()
        return out

    assert scales(model.model, "enum", ("z", "x")) == {"z": 8.0, "x": None}
    assert scales(model.guide, "relaxed", ("z", "log_y")) == {"z": 8.0, "log_y": None}


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
    with pytest.raises(ValueError, match="^X: augment=2 needs flattened 28 x 28 images"):
        ClusteringVAE(augment=2).fit(np.zeros((10, 100), np.float32))
    with pytest.raises(ValueError, match="^augment: a shift of at most 7 pixels for 8 x 8 images, got 8"):
        ClusteringVAE(augment=8, image_shape=(8, 8))
    with pytest.raises(ValueError, match="^augment"):
        ClusteringVAE(augment=-1)
    with pytest.raises(ValueError, match="^augment_rotation: the largest angle in degrees, at most 180, got 200"):
        ClusteringVAE(augment_rotation=200)
    with pytest.raises(ValueError, match="^augment_scale: the largest relative change of size, below 1, got 1"):
        ClusteringVAE(augment_scale=1)
    with pytest.raises(ValueError, match="^X: augment_rotation=10.0 needs flattened 28 x 28 images"):
        ClusteringVAE(augment_rotation=10).fit(np.zeros((10, 100), np.float32))
    with pytest.raises(ValueError, match=r"^pseudo_label_threshold: a confidence in \(0, 1\] .* got 1.5"):
        ClusteringVAE(augment=1, consistency=1.0, pseudo_label_threshold=1.5)
    with pytest.raises(ValueError, match=r"^pseudo_label_threshold: .*\(needs consistency > 0\), or 0 .* got 0.9"):
        ClusteringVAE(augment=1, pseudo_label_threshold=0.9)


def test_random_shift_moves_each_image_whole_by_at_most_the_shift():
    """Every row comes out as its own image moved by one whole-pixel (dy, dx) with |dy|, |dx| <= 2, zeros moved
    in (pure data movement: compared exactly); over 2,000 rows every one of the 25 shifts occurs, each about 1/25
    of the time (80 expected, sd 8.8: the limits are 4.5 sd)."""
    from probzoo.models.clustering_vae.objective import random_shift

    rng = np.random.default_rng(0)
    images = np.zeros((2000, 12, 12), np.float32)
    images[:, 2:10, 2:10] = rng.random((2000, 8, 8))  # a margin of 2 so that no pixel of the digit is lost
    moved = np.asarray(random_shift(jax.random.PRNGKey(0), images.reshape(2000, -1), 2, (12, 12))).reshape(images.shape)
    counts = {}
    for image, out in zip(images, moved, strict=True):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(image, (dy, dx), axis=(0, 1)), out)]
        assert len(found) == 1
        counts[found[0]] = counts.get(found[0], 0) + 1
    assert len(counts) == 25 and 40 <= min(counts.values()) and max(counts.values()) <= 120


def test_affine_warp_turns_scales_and_moves_about_the_centre():
    """The warp's geometry on images whose answer is known: the identity and whole-pixel shifts copy pixels
    (bilinear weights 1 and 0: exact), a quarter turn is numpy's rot90 (clockwise with rows drawn downwards; to
    float32 rounding of cos and sin),
    and scaling by 2 about the centre doubles a bar's length (its second moment from 2 to 8.5: times 4 and the
    half-covered pixels at its ends)."""
    from probzoo.models.clustering_vae.objective import affine_warp

    rng = np.random.default_rng(0)
    images = np.zeros((2, 9, 9), np.float32)
    images[:, 2:7, 2:7] = rng.random((2, 5, 5))

    def warp(angle, scale, shift):
        return np.asarray(affine_warp(jnp.asarray(images), jnp.full(2, angle), jnp.full(2, scale),
                                      jnp.tile(jnp.asarray(shift, jnp.float32), (2, 1))))

    np.testing.assert_array_equal(warp(0.0, 1.0, (0.0, 0.0)), images)
    np.testing.assert_array_equal(warp(0.0, 1.0, (1.0, -2.0)), np.roll(images, (1, -2), axis=(1, 2)))
    turned = warp(np.pi / 2, 1.0, (0.0, 0.0))
    np.testing.assert_allclose(turned, np.rot90(images, -1, axes=(1, 2)), atol=1e-5)  # clockwise as drawn
    bar = np.zeros((1, 21, 21), np.float32)
    bar[0, 10, 8:13] = 1.0  # 5 pixels long, centred
    long = np.asarray(affine_warp(jnp.asarray(bar), jnp.zeros(1), jnp.full(1, 2.0), jnp.zeros((1, 2))))[0]
    cols = np.arange(21) - 10.0
    spread = lambda img: np.sum(img.sum(0) * cols**2) / img.sum()  # noqa: E731
    # 5 pixels (second moment 2) become 9 whole ones and 2 halves at the ends: 85 / 10 = 8.5, dyadic numbers
    # that float32 holds exactly
    assert spread(bar[0]) == pytest.approx(2.0, abs=1e-6) and spread(long) == pytest.approx(8.5, abs=1e-5)
    # the centre stays where it was
    np.testing.assert_allclose([np.sum(long.sum(1) * cols), np.sum(long.sum(0) * cols)], 0.0, atol=1e-4)


def test_random_move_turns_and_scales_within_its_bounds():
    """Without rotation and scaling, random_move is random_shift (the same pixels from the same key). With
    them, a centred bar comes out turned by at most the angle and scaled by at most the factor, its centre
    moved by at most the shift, measured from its intensity moments over 500 draws (up to the measurement's
    own error); and the draws fill those
    ranges (each bound is approached within 10 % unless the uniform draws all miss that tenth, a chance
    below 0.9^500 ~ 1e-23)."""
    from probzoo.models.clustering_vae.objective import random_move, random_shift

    key = jax.random.PRNGKey(1)
    x = np.random.default_rng(0).random((20, 64)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(random_move(key, x, 2, 0.0, 0.0, (8, 8))),
                                  np.asarray(random_shift(key, x, 2, (8, 8))))
    bar = np.zeros((500, 25, 25), np.float32)
    bar[:, 12, 6:19] = 1.0  # 13 pixels long, through the centre
    moved = np.asarray(random_move(key, bar.reshape(500, -1), 2, 15.0, 0.1, (25, 25))).reshape(bar.shape)
    rows, cols = np.meshgrid(np.arange(25) - 12.0, np.arange(25) - 12.0, indexing="ij")
    mass = moved.sum((1, 2))
    r0, c0 = (moved * rows).sum((1, 2)) / mass, (moved * cols).sum((1, 2)) / mass
    rr = (moved * (rows - r0[:, None, None]) ** 2).sum((1, 2)) / mass
    cc = (moved * (cols - c0[:, None, None]) ** 2).sum((1, 2)) / mass
    rc = (moved * (rows - r0[:, None, None]) * (cols - c0[:, None, None])).sum((1, 2)) / mass
    angle = np.degrees(0.5 * np.arctan2(2 * rc, cc - rr))
    length = np.sqrt(12 * (0.5 * (rr + cc) + np.sqrt(0.25 * (cc - rr) ** 2 + rc**2)))  # a uniform bar's
    scale = length / 13.0
    # the moments of a resampled bar are off by a little (bilinear blur, the grid): measured over 2,000 draws
    # at most 0.15 degrees, 0.008 in scale and 0.05 pixels, so the bounds below allow a few times that
    assert np.all(np.abs(angle) <= 15.75) and np.abs(angle).max() > 13.5
    assert np.all(np.abs(scale - 1) <= 0.1 + 0.03) and np.abs(scale - 1).max() > 0.08
    assert np.all(np.abs(r0) <= 2.2) and np.all(np.abs(c0) <= 2.2) and min(np.abs(r0).max(), np.abs(c0).max()) > 1.8


def test_consistency_penalty_soft_and_pseudo_labelled():
    """Soft: KL(q(y | x) || q(y | x moved)) per row. With a threshold: -log q(argmax q(y | x) | x moved) on the
    rows whose q(y | x) reaches it, 0 on the others. Either way no gradient reaches the target's logits."""
    from probzoo.models.clustering_vae.objective import consistency_penalty

    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(6, 4)) * np.array([[3.0], [0.1], [3.0], [0.1], [3.0], [0.1]]), jnp.float32)
    moved = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    q = np.asarray(jax.nn.softmax(logits), np.float64)
    log_q_moved = np.asarray(jax.nn.log_softmax(moved), np.float64)
    np.testing.assert_allclose(np.asarray(consistency_penalty(logits, moved, None)),
                               np.sum(q * (np.log(q) - log_q_moved), -1), rtol=1e-5)
    confident = q.max(-1) >= 0.6
    assert confident.any() and not confident.all()
    expected = np.where(confident, -log_q_moved[np.arange(6), q.argmax(-1)], 0.0)
    np.testing.assert_allclose(np.asarray(consistency_penalty(logits, moved, 0.6)), expected, rtol=1e-5)
    for threshold in (None, 0.6):
        grad = jax.grad(lambda a, t=threshold: consistency_penalty(a, moved, t).sum())(logits)
        assert not np.any(np.asarray(grad))


@pytest.mark.parametrize("moves", [{}, {"augment_rotation": 20.0, "augment_scale": 0.1,
                                         "pseudo_label_threshold": 0.145}])
def test_augment_and_consistency_score_moved_images(moves):
    """With ``augment`` the classifier term is alpha * log q(y_i | x_i moved); with ``consistency`` each
    unlabelled row adds consistency * KL(q(y | x) || q(y | x moved)), or with ``pseudo_label_threshold`` c
    consistency * -log q(argmax q(y | x) | x moved) where max q(y | x) >= c (0 elsewhere). Each term draws its
    moves (shifts, or with ``augment_rotation`` / ``augment_scale`` affine warps) from the guide's random
    stream (one key a term a step); the terms are recomputed here from those keys."""
    from probzoo.models.clustering_vae.nets import _Encoder
    from probzoo.models.clustering_vae.objective import random_move

    X, t = pz.data.digits(seed=0)
    X, t = X[:200], t[:200]
    labels = np.where(np.arange(200) < 20, t, -1)
    labelled = np.flatnonzero(labels >= 0).astype(np.int32)
    model = ClusteringVAE(image_shape=(8, 8), augment=1, alpha=10.0, consistency=3.0, **moves)
    rotation, scale = moves.get("augment_rotation", 0.0), moves.get("augment_scale", 0.0)
    threshold = moves.get("pseudo_label_threshold")
    kw = {"labels": labels, "labelled": labelled, "method": "enum", "labelled_batch": 100}
    keys = []

    class KeepKeys(Messenger):  # records the keys the guide draws with numpyro.prng_key()
        def postprocess_message(self, msg):
            if msg["type"] == "prng_key":
                keys.append(msg["value"])

    @jax.jit  # the guide traced once into one program, not run op by op
    def terms(rng_key):
        seeded = handlers.seed(model.guide, rng_key)
        params = {k: v["value"] for k, v in handlers.trace(seeded).get_trace(X, **kw).items() if v["type"] == "param"}
        keys.clear()
        with handlers.substitute(data=params):
            trace = handlers.trace(handlers.seed(KeepKeys(model.guide), rng_key)).get_trace(X, **kw)
        assert len(keys) == 2  # the unlabelled rows' shifts, then the labelled rows'
        return (params, trace["consistency"]["fn"].log_prob(0.0), trace["classify"]["fn"].log_prob(0.0), keys[0],
                keys[1])

    params, consistency, classify, key_u, key_l = terms(jax.random.PRNGKey(3))
    apply = jax.jit(_Encoder(10, "mlp", model.hidden, (8, 8), model.channels).apply)
    encoder = {"params": params["encoder$params"]}
    _, logits = apply(encoder, random_move(key_l, X[labelled], 1, rotation, scale, (8, 8)))
    expected = -10.0 * np.asarray(jax.nn.log_softmax(logits))[np.arange(20), t[:20]]
    np.testing.assert_allclose(np.asarray(classify), expected, rtol=1e-5, atol=1e-4)
    _, plain = apply(encoder, X[labelled])
    assert not np.allclose(np.asarray(logits), np.asarray(plain))  # the shift changed what the classifier saw
    log_q = np.asarray(jax.nn.log_softmax(apply(encoder, X)[1]), np.float64)
    moved = random_move(key_u, X, 1, rotation, scale, (8, 8))
    log_q_moved = np.asarray(jax.nn.log_softmax(apply(encoder, moved)[1]), np.float64)
    if threshold is None:
        penalty, compared = np.sum(np.exp(log_q) * (log_q - log_q_moved), -1), np.ones(200, bool)
    else:
        confidence = np.exp(log_q.max(-1))
        penalty = np.where(confidence >= threshold, -log_q_moved[np.arange(200), log_q.argmax(-1)], 0.0)
        unlabelled = labels < 0
        assert (confidence[unlabelled] >= threshold).any() and (confidence[unlabelled] < threshold).any()
        compared = np.abs(confidence - threshold) > 1e-4  # a row at the threshold may fall either side in rounding
    # on the unlabelled rows only (masked to 0 on the labelled ones)
    np.testing.assert_allclose(np.asarray(consistency)[compared], (3.0 * penalty * (labels < 0))[compared],
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="^consistency: .* needs moved images: augment, augment_rotation or"):
        ClusteringVAE(consistency=1.0)


# --- the conv networks: patch-and-matmul layers against flax's convolutions --------------------------------


@pytest.mark.parametrize("kind, c, features", [("down", 3, 5), ("down", 7, 1), ("up", 8, 5), ("up", 32, 1)])
def test_patch_conv_equals_flax_convolution(kind, c, features):
    """PatchConv (both of its matmul forms: ("down", 7, 1) and ("up", 32, 1) sum shifted products) against
    nn.Conv(4x4, stride 2, padding 1) / nn.ConvTranspose(4x4, stride 2, padding 2) with the same parameters:
    outputs and gradients (parameters and input) agree to float32 rounding."""
    import flax.linen as nn
    import jax.numpy as jnp

    from probzoo.nn import PatchConv

    if kind == "down":
        ref = nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
        x = jax.random.normal(jax.random.PRNGKey(0), (3, 8, 6, c))
    else:
        ref = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
        x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 5, c))
    layer = PatchConv(features, kind)
    # the same parameter shapes, read abstractly (nothing is compiled for it)
    shapes = jax.tree.map(jnp.shape, jax.eval_shape(layer.init, jax.random.PRNGKey(1), x))
    assert shapes == jax.tree.map(jnp.shape, jax.eval_shape(ref.init, jax.random.PRNGKey(1), x))

    @jax.jit  # one program for both layers, their outputs and gradients (eagerly, every operation compiles)
    def outputs_and_grads(x):
        params = layer.init(jax.random.PRNGKey(1), x)
        params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
        out, want = layer.apply(params, x), ref.apply(params, x)
        w = jax.random.normal(jax.random.PRNGKey(3), want.shape)

        def grads(f):
            return jax.grad(lambda p, x: jnp.sum(w * jnp.tanh(f(p, x))), argnums=(0, 1))(params, x)

        return out, want, grads(layer.apply), grads(ref.apply)

    out, want, grads_patch, grads_ref = outputs_and_grads(x)
    assert out.shape == want.shape == ((3, 4, 3, features) if kind == "down" else (3, 14, 10, features))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(grads_patch), jax.tree.leaves(grads_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="^x: a stride-2 convolution needs even"):
        PatchConv(4, "down").init(jax.random.PRNGKey(0), jnp.ones((1, 7, 6, 1)))
    with pytest.raises(ValueError, match="^kind"):
        PatchConv(4, "sideways").init(jax.random.PRNGKey(0), x)


def test_conv_networks_are_the_article_layers_and_map_leading_dims():
    """ConvEncoder / ConvDecoder equal the same stack built from flax's nn.Conv / nn.ConvTranspose with their
    parameters, and treat leading dimensions (the enumerated y's (K, B, ...)) as a batch."""
    import flax.linen as nn

    from probzoo.nn import ConvDecoder, ConvEncoder

    def leaky(h):
        return nn.leaky_relu(h, 0.2)

    @jax.jit  # both networks and their references as one program (eagerly, every operation compiles)
    def networks_and_references(key):
        x = jax.random.uniform(key, (2, 3, 784))
        enc = ConvEncoder(channels=(4, 6), out=16)
        pe = enc.init(key, x)["params"]
        feats = enc.apply({"params": pe}, x)
        h = x.reshape((6, 28, 28, 1))
        for name, c in (("Conv_0", 4), ("Conv_1", 6)):
            conv = nn.Conv(c, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
            h = leaky(conv.apply({"params": pe[name]}, h))
        want_feats = leaky(nn.Dense(16).apply({"params": pe["Dense_0"]}, h.reshape((6, -1)))).reshape((2, 3, 16))

        z = jax.random.normal(key, (10, 3, 2))
        dec = ConvDecoder(channels=(4, 6), hidden=16)
        pd = dec.init(key, z)["params"]
        logits = dec.apply({"params": pd}, z)
        h = leaky(nn.Dense(16).apply({"params": pd["Dense_0"]}, z.reshape((30, 2))))
        h = leaky(nn.Dense(7 * 7 * 6).apply({"params": pd["Dense_1"]}, h)).reshape((30, 7, 7, 6))
        for name, c in (("ConvTranspose_0", 4), ("ConvTranspose_1", 1)):
            h = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2))).apply({"params": pd[name]}, h)
            h = leaky(h) if name.endswith("0") else h
        return feats, want_feats, logits, h.reshape((10, 3, 784))

    feats, want_feats, logits, want_logits = networks_and_references(jax.random.PRNGKey(0))
    assert feats.shape == (2, 3, 16)
    np.testing.assert_allclose(feats, want_feats, rtol=1e-5, atol=1e-5)
    assert logits.shape == (10, 3, 784)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-5)




def test_relaxed_enum_and_score_estimate_the_same_elbo_on_a_fixed_network(blobs):
    """On one fixed network, enum (y summed out) and score (y sampled) are unbiased estimates of the same
    ELBO: their means over 200 independent estimates agree within 4 combined standard errors. The relaxed
    ELBO is a different bound: its y-term is the KL between two Concrete distributions, which does not
    depend on the temperature and, by data processing, is at least the discrete KL(q(y | x) || p(y)). Put
    the discrete KL in its place and the rest (reconstruction and z terms) tends to the exact ELBO's as
    the temperature falls: the gap shrinks with the temperature, from more than half a nat per row at 1
    (1.16 here, standard error about 0.05)."""
    import jax.numpy as jnp
    from numpyro.contrib.funsor import config_enumerate
    from numpyro.infer.util import get_importance_trace

    from probzoo.models.clustering_vae import elbo_loss

    X = blobs[0][:300]
    model = ClusteringVAE(n_clusters=3, likelihood="normal")
    params = model.fit(X, method="relaxed", epochs=3, seed=0).params
    keys = jax.random.split(jax.random.PRNGKey(1), 200)

    def estimates(fn, temperature=1.0):  # mean and standard error of fn(key, temperature) / N over the keys
        # the temperature is an input of the program, not a constant: one compilation serves every temperature
        v = jax.jit(jax.vmap(fn, in_axes=(0, None)))(keys, jnp.float32(temperature))
        v = np.asarray(v, np.float64) / len(X)
        return v.mean(), v.std(ddof=1) / np.sqrt(len(v))

    def elbo(method, temperature=1.0):
        guide = config_enumerate(model.guide) if method == "enum" else model.guide
        loss = elbo_loss(method)
        return estimates(lambda k, tau: -loss.loss(k, params, model.model, guide, X, method=method,
                                                   temperature=tau), temperature)

    def traces(key, **kw):
        return get_importance_trace(handlers.seed(model.model, key), handlers.seed(model.guide, key), (X,), kw,
                                    params)

    def concrete_kl(k, tau):
        model_trace, guide_trace = traces(k, method="relaxed", temperature=tau)
        return jnp.sum(guide_trace["log_y"]["log_prob"] - model_trace["log_y"]["log_prob"])

    (enum, se_enum), (score, se_score) = elbo("enum"), elbo("score")
    assert abs(enum - score) < 4 * np.hypot(se_enum, se_score), (enum, se_enum, score, se_score)

    logits = jax.jit(lambda k: traces(k, method="score")[1]["y"]["fn"].logits)(0)
    log_q = jax.nn.log_softmax(logits)
    kl_discrete = float(jnp.sum(jnp.exp(log_q) * (log_q + jnp.log(3.0)))) / len(X)
    gaps, kls = {}, {}
    for tau in (1.0, 0.1, 0.02):
        relaxed, se_relaxed = elbo("relaxed", tau)
        kls[tau], se_kl = estimates(concrete_kl, tau)
        gaps[tau] = (relaxed + kls[tau]) - (enum + kl_discrete)
        se_gap = np.sqrt(se_relaxed**2 + se_kl**2 + se_enum**2)
        assert kls[tau] > kl_discrete + 4 * se_kl, (tau, kls[tau], kl_discrete)
    assert kls[1.0] == pytest.approx(kls[0.02], rel=1e-3)  # the same Gumbel draws, whatever the temperature
    assert gaps[1.0] > 0.6 and 0 < gaps[0.1] < gaps[1.0] / 3, gaps
    assert abs(gaps[0.02]) < gaps[0.1] / 2 + 4 * se_gap, gaps


def test_score_function_gradients_train_the_clustering_vae(blobs):
    """method="score": y sampled from q(y | x), REINFORCE gradients through it (TraceGraph_ELBO); noisier
    than enum, but the ELBO rises over training and the fit is a ClusteringVAEFit like the others'."""
    X, t = blobs
    fit = ClusteringVAE(n_clusters=3, likelihood="normal").fit(X, method="score", epochs=10, seed=0)
    per_epoch = fit.losses.reshape(10, -1).mean(1)
    # 2 nats per row (the loss is the full-data ELBO); from about 20, seeds 0 and 1 fall by 7 and 10
    assert per_epoch[-1] < per_epoch[0] - 2.0 * len(X), per_epoch
    scores = fit.evaluate(X, t, num_samples=4)
    assert np.isfinite(scores["elbo"]) and scores["elbo"] > -per_epoch[0] / len(X) + 2.0
    assert fit.method == "score" and {"posterior", "log_likelihood", "observed_data"} <= set(fit.idata.groups())


def test_presets_and_explicit_arguments():
    article, clustering = ClusteringVAE(), ClusteringVAE(preset="clustering")
    assert (article.latent_dim, article.init, article.z_given_y, article.anneal) == (2, "random", True, 4.0)
    assert (clustering.latent_dim, clustering.init, clustering.z_given_y, clustering.anneal) == (10, "tsne", False, 1.0)
    mixed = ClusteringVAE(preset="clustering", latent_dim=3, z_given_y=True)
    assert (mixed.latent_dim, mixed.init, mixed.z_given_y) == (3, "tsne", True)
    assert ClusteringVAE(**mixed.get_config()).get_config() == mixed.get_config()
    semi = ClusteringVAE(preset="semi_supervised")
    assert {k: semi.get_config()[k] for k in ("latent_dim", "encoder", "init", "z_given_y", "anneal", "augment",
                                              "augment_rotation", "augment_scale", "consistency",
                                              "pseudo_label_threshold")} == {
        "latent_dim": 10, "encoder": "conv", "init": "random", "z_given_y": True, "anneal": 4.0, "augment": 2,
        "augment_rotation": 15.0, "augment_scale": 0.1, "consistency": 10.0, "pseudo_label_threshold": 0.95}
    assert (article.encoder, article.augment, article.consistency, article.pseudo_label_threshold) == ("mlp", 0, 0, 0)
    # a saved configuration (every value explicit) rebuilds the same model, and explicit values beat the preset
    assert ClusteringVAE(**semi.get_config()).get_config() == semi.get_config()
    still = ClusteringVAE(preset="semi_supervised", encoder="mlp", augment=0, augment_rotation=0, augment_scale=0,
                          consistency=0)
    assert not still._moves and still.encoder == "mlp" and still.pseudo_label_threshold == 0  # with consistency
    assert ClusteringVAE(**still.get_config()).get_config() == still.get_config()
    with pytest.raises(ValueError, match="preset"):
        ClusteringVAE(preset="mnist")
    with pytest.raises(ValueError, match="init"):
        ClusteringVAE(init="kmeans")
    with pytest.raises(TypeError, match="z_given_y"):
        ClusteringVAE(z_given_y="no")
    with pytest.raises(ValueError, match="pretrain_epochs"):
        ClusteringVAE(pretrain_epochs=0)
    X = pz.data.blobs(n=60, seed=0)[0]
    with pytest.raises(ValueError, match="X: init='tsne'.*at least 20"):
        ClusteringVAE(n_clusters=10, likelihood="normal", preset="clustering").fit(X[:12], batch_size=4)
    small = ClusteringVAE(n_clusters=3, likelihood="normal", preset="clustering", pretrain_epochs=1)
    assert small.fit(X, epochs=1, batch_size=20).info["clusters_used"] >= 1  # t-SNE's perplexity fits 60 rows


@pytest.mark.parametrize("z_given_y", [True, False])
def test_pretraining_starts_the_vae_at_the_mixture_of_its_codes(blobs, z_given_y):
    """init="autoencoder": the prior starts at the moments of the autoencoder's codes under the mixture's
    responsibilities, q(y | x) at the mixture's clusters, every branch of q(z | x, y) at the code; with
    labels, cluster k is class k."""
    from probzoo.models.clustering_vae import pretrain

    X, t = blobs
    vae = ClusteringVAE(n_clusters=3, likelihood="normal", init="autoencoder", z_given_y=z_given_y)
    init, info = pretrain.pretrained_params(vae, X, None, epochs=5, batch_size=100, learning_rate=1e-3, seed=0)
    assert info["pretrain_time"] > 0 and np.isfinite(info["pretrain_loss"])
    h, z = pretrain._codes(vae, init, X)
    z = z.astype(np.float64)
    r = pretrain._mixture(z, 3, None, 0).predict_proba(z)
    means, scales = pretrain._moments(z, r)
    np.testing.assert_allclose(init["prior_loc"], means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(init["prior_scale"], scales, rtol=1e-5, atol=1e-5)
    enc, enc_z = vae._encoder_net(), vae._encoder_z_net()
    _, logits = enc.apply({"params": init["encoder$params"]}, X)
    assert np.mean(np.asarray(logits).argmax(1) == r.argmax(1)) > 0.99
    from probzoo import metrics
    assert metrics.cluster_accuracy(t, r.argmax(1)) > 0.95  # the blobs are separated in the codes already
    locs = [np.asarray(enc_z.apply({"params": init["encoder_z$params"]}, h, np.eye(3)[k][None].repeat(len(X), 0))[0])
            for k in range(3)]
    for loc in locs:
        np.testing.assert_array_equal(loc, locs[0])
        np.testing.assert_allclose(loc, z, rtol=1e-5, atol=1e-5)
    labels = np.full(len(t), -1)
    labels[:30] = t[:30]
    init, _ = pretrain.pretrained_params(vae, X, labels, epochs=5, batch_size=100, learning_rate=1e-3, seed=0)
    _, logits = enc.apply({"params": init["encoder$params"]}, X)
    assert np.mean(np.asarray(logits).argmax(1) == t) > 0.95  # no matching: cluster k is class k
