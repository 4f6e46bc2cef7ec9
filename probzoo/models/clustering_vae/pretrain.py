"""Where the clustering VAE's training starts: VaDE-style pretraining (Jiang et al. 2017, "Variational Deep
Embedding"), with the clusters taken from the codes or from a t-SNE map of the data.

A VAE trained from random weights has to discover the clusters and the latent space together; started
that way it settles in clusterings barely better than k-means on the pixels (accuracy 0.5-0.67 on the
5,000 MNIST images). VaDE first trains the encoder and decoder as a plain autoencoder, fits a Gaussian
mixture to the codes and starts the VAE from both. Here, in the y -> z -> x model's own parameters:

1. ``autoencoder``: x -> h(x) -> z = mean of q(z | x, y = 0) -> decoder, trained by maximum likelihood
   (the VAE's own networks and likelihood, through the shared SVI loop with an empty guide);
2. clusters: a Gaussian mixture with K components and full covariances (scikit-learn's EM) on the codes
   (``init="autoencoder"``, VaDE) or on a 2-D t-SNE map of the data (``init="tsne"``; N2D, McConville et
   al. 2020, clusters a neighbour embedding of an autoencoder's codes: a mixture on a neighbour map follows
   the data's manifolds, one on the codes only their Gaussian blobs; the map of the pixels, after PCA,
   ended better here than the map of the codes: 0.789-0.799 against 0.777 on MNIST, seed 0). With labels, component k
   starts at the mean of class k's labelled points and labelled rows keep their class;
3. the prior p(z | y) starts at each cluster's mean and per-axis standard deviation of the codes, the
   classifier head of q(y | x) is fitted to the mixture's responsibilities, and the y input of
   q(z | x, y) (where the guide has one) starts at zero, so every branch starts at the autoencoder's code.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro.contrib.module import flax_module
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.mixture import GaussianMixture

from probzoo.infer.svi import run_svi

_HEAD_STEPS = 500  # full-batch Adam steps of the classifier head on the mixture's responsibilities
_HEAD_RATE = 1e-2
_PCA_DIMS = 50  # t-SNE's customary PCA step before the neighbour search
_VAR_FLOOR = 1e-4  # added to each cluster's per-axis variance, as scikit-learn's reg_covar


def autoencoder(X: Any, vae: Any) -> None:
    """x ~ p(x | z = g(x)): the clustering VAE's encoder (features and the mean of q(z | x, y = 0)) and
    decoder as a deterministic autoencoder; its parameter sites are the VAE's own."""
    X = jnp.asarray(X)
    N, P = X.shape
    K = vae.n_clusters
    encode = flax_module("encoder", vae._encoder_net(), input_shape=(1, P))
    encode_z = flax_module("encoder_z", vae._encoder_z_net(), jnp.ones((1, vae.hidden[-1])), jnp.ones((1, K)))
    decode = flax_module("decoder", vae._decoder_net(P), input_shape=(1, vae.latent_dim))
    with numpyro.plate("data", N) as idx:
        h, _ = encode(X[idx])
        z, _ = encode_z(h, jnp.zeros((h.shape[0], K), h.dtype))
        numpyro.sample("x", vae._likelihood(decode(z)), obs=X[idx])


def _no_guide(X: Any, vae: Any) -> None:
    """The autoencoder has no latent sample sites: its ELBO is the log-likelihood."""


def _codes(vae: Any, params: dict[str, Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features h(x) and codes z(x) (mean of q(z | x, y = 0)) of every row."""
    enc, enc_z = vae._encoder_net(), vae._encoder_z_net()

    @jax.jit
    def codes(x):
        h, _ = enc.apply({"params": params["encoder$params"]}, x)
        z, _ = enc_z.apply({"params": params["encoder_z$params"]}, h, jnp.zeros((x.shape[0], vae.n_clusters)))
        return h, z

    hs, zs = zip(*(codes(jnp.asarray(X[i:i + 1000])) for i in range(0, X.shape[0], 1000)), strict=True)
    return np.concatenate(hs), np.concatenate(zs)


def _mixture(z: np.ndarray, K: int, labels: np.ndarray | None, seed: int) -> GaussianMixture:
    """A K-component full-covariance Gaussian mixture on the points (codes or t-SNE map); with labels,
    component k starts at the mean of class k's labelled points."""
    z = z.astype(np.float64)
    if labels is not None and np.any(labels >= 0):
        known = labels >= 0
        means = np.stack([z[known & (labels == k)].mean(0) if np.any(known & (labels == k)) else z.mean(0)
                          for k in range(K)])
        return GaussianMixture(K, covariance_type="full", means_init=means, reg_covar=_VAR_FLOOR,
                               random_state=seed).fit(z)
    return GaussianMixture(K, covariance_type="full", n_init=5, reg_covar=_VAR_FLOOR, random_state=seed).fit(z)


def _fit_head(head: dict[str, Any], h: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """The Dense layer of q(y | x)'s logits fitted to soft targets by cross-entropy (features fixed)."""
    opt = optax.adam(_HEAD_RATE)
    h, targets = jnp.asarray(h), jnp.asarray(targets, jnp.float32)

    def loss(p):
        logits = h @ p["kernel"] + p["bias"]
        return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), -1))

    @jax.jit
    def run(p):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (p, opt.init(p)), None, length=_HEAD_STEPS)[0][0]

    return run(head)


def _tsne(X: np.ndarray, seed: int) -> np.ndarray:
    """A 2-D t-SNE map of the rows (after PCA to at most 50 dimensions, the usual first step)."""
    x = np.asarray(X, np.float64)
    if x.shape[1] > _PCA_DIMS:
        x = PCA(_PCA_DIMS, random_state=seed).fit_transform(x)
    # scikit-learn's perplexity (30) must stay below the number of rows; small data sets get a smaller one
    perplexity = min(30.0, max(1.0, (x.shape[0] - 1) / 3))
    return TSNE(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(x)


def _moments(z: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster means and per-axis standard deviations of the codes under responsibilities r (n, K)."""
    w = r / np.maximum(r.sum(0), 1e-12)
    means = w.T @ z
    var = np.einsum("nk,nkd->kd", w, (z[:, None, :] - means[None]) ** 2)
    return means, np.sqrt(var + _VAR_FLOOR)


def pretrained_params(vae: Any, X: np.ndarray, labels: np.ndarray | None, *, epochs: int, batch_size: int,
                      learning_rate: float, seed: int, progress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Starting values of the clustering VAE's parameters (autoencoder, clusters of its codes or of a t-SNE map
    of the data, classifier head) and a record of the step: ``(params, info)``."""
    if X.shape[0] < 2 * vae.n_clusters:
        raise ValueError(f"X: init={vae.init!r} fits a {vae.n_clusters}-component mixture to the rows and needs at "
                         f"least {2 * vae.n_clusters} of them, got {X.shape[0]}; use init='random'")
    t0 = time.perf_counter()
    run = run_svi(autoencoder, _no_guide, X, vae=vae, epochs=epochs, batch_size=batch_size, seed=seed,
                  learning_rate=learning_rate, progress=progress, desc="ClusteringVAE/pretrain")
    params = dict(run.params)
    h, z = _codes(vae, params, X)
    z = z.astype(np.float64)
    points = _tsne(X, seed) if vae.init == "tsne" else z
    r = _mixture(points, vae.n_clusters, labels, seed).predict_proba(points)
    if labels is not None:
        known = labels >= 0
        r[known] = np.eye(vae.n_clusters)[labels[known]]
    means, scales = _moments(z, r)
    encoder = dict(params["encoder$params"])
    encoder["Dense_0"] = _fit_head(encoder["Dense_0"], h, r)
    encoder_z = dict(params["encoder_z$params"])
    if "Dense_1" in encoder_z:  # the y input of q(z | x, y)
        encoder_z["Dense_1"] = {"kernel": jnp.zeros_like(encoder_z["Dense_1"]["kernel"])}
    init = {
        "encoder$params": encoder,
        "encoder_z$params": encoder_z,
        "decoder$params": params["decoder$params"],
        "prior_loc": jnp.asarray(means, jnp.float32),
        "prior_scale": jnp.asarray(scales, jnp.float32),
    }
    spe = run.steps_per_epoch or 1
    info = {"pretrain_loss": float(np.mean(run.losses[-spe:])) / X.shape[0],
            "pretrain_time": time.perf_counter() - t0}
    return init, info
