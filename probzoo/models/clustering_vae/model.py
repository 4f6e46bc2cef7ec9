"""Clustering VAE y -> z -> x (article 002): a mixture prior in a VAE's latent space.

Generative process::

    y ~ Categorical(1/K),   z | y ~ Normal(mu_y, sigma_y),   x | z ~ Bernoulli(sigmoid(f(z)))  (or Normal(f(z), s))

Variational posterior q(y, z | x) = q(y | x) q(z | x, y), both amortised by flax networks. Two ways
to train it (``fit(method=...)``):

- ``"relaxed"``: the article's estimator. y is replaced by a Concrete (Gumbel-softmax) relaxation at
  temperature ``temperature``, sampled and scored in log space (``ExpRelaxedOneHotCategorical``), so
  every term is a reparameterised Monte Carlo estimate (``Trace_ELBO``).
- ``"enum"``: y is summed out exactly: q(y | x) is a Categorical, ``config_enumerate`` marks it for
  parallel enumeration and ``TraceEnum_ELBO`` weighs each of the K branches by q(y | x).
- ``"score"``: y is sampled from the Categorical q(y | x) and the gradient through it is the
  score-function (REINFORCE) estimator of ``TraceGraph_ELBO``, which weighs grad log q(y_n | x_n) by the
  terms of the ELBO downstream of y_n only; unbiased like enum, but noisier, and it costs one branch
  instead of K.

``beta`` multiplies the z terms (log p(z | y) - log q(z | x, y)) through ``numpyro.handlers.scale``, as
the article does. ``balance`` adds weight to N KL(mean q(y | x) || p(y)), the marginal part of the ELBO's
y-KL, so that every cluster stays in use; ``anneal`` starts the relaxed method at a higher temperature.
``preset="clustering"`` (10 latent dimensions, q(z | x), training started from an autoencoder and the
clusters of a t-SNE map, :mod:`probzoo.models.clustering_vae.pretrain`) is the setting measured for cluster
accuracy. Labelled rows (``labels >= 0``) observe y, contribute log p(x, y) and the classifier
term ``alpha * log q(y | x)`` (Kingma et al.'s M2 objective) in their own plate, which sees every
labelled row each step when there are at most ``batch_size`` of them. For images, ``augment`` (and
``augment_rotation``, ``augment_scale``) scores that term on labelled images moved by a few pixels (turned
and scaled), and ``consistency`` asks q(y | x) of every unlabelled image to stay the same when it is moved (a
Pi-model-style term, or with ``pseudo_label_threshold`` FixMatch's hard pseudo-labels).
``preset="semi_supervised"`` (conv networks, 10 latent dimensions, all of these) is the setting measured
with 10 labels per class: 0.960 (median of 5 seeds) on the 4,900 unlabelled MNIST images with method
"relaxed", against 0.905 without moved images (docs/models/clustering_vae.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate
from numpyro.contrib.module import flax_module
from numpyro.distributions import constraints

from probzoo.distributions import ExpRelaxedOneHotCategorical
from probzoo.infer.svi import run_svi
from probzoo.models.base import ZooModel, runs_engines
from probzoo.models.clustering_vae.fit import ClusteringVAEFit
from probzoo.models.clustering_vae.nets import DISCRETE, METHODS, _Encoder, _EncoderZ, _leaky
from probzoo.models.clustering_vae.objective import (
    _labelled_rows,
    _optimiser,
    consistency_penalty,
    elbo_loss,
    random_move,
)
from probzoo.models.clustering_vae.pretrain import pretrained_params
from probzoo.nn import MLP, ConvDecoder
from probzoo.validation import (
    as_array,
    check_choice,
    check_int,
    check_labels,
    check_positive,
    check_seed,
    check_unit_interval,
)
from probzoo.zoo import register_model

# Defaults chosen together (an argument given explicitly overrides its preset's value):
# "article": article 002's model, a 2-D latent space (drawable) and q(z | x, y), trained from random weights;
# "clustering": measured on the 5,000 MNIST images and the 8x8 digits for cluster accuracy (docs/models/
# clustering_vae.md): 10 latent dimensions, VaDE's q(z | x), started from t-SNE clusters (pretrain.py), and no
# temperature annealing: with q(z | x) a hot relaxed y blends the prior's means and the clusters merge.
# "semi_supervised": measured on the 5,000 MNIST images with 10 labels per class (docs/models/clustering_vae.md,
# "Turned and scaled images and pseudo-labels"): the article's model and conv networks with 10 latent
# dimensions, every labelled image moved (shifted, turned and scaled) in the classifier term, and FixMatch-style
# consistency on the unlabelled ones; trained with method "relaxed".
_STILL = {"encoder": "mlp", "augment": 0, "consistency": 0.0, "augment_rotation": 0.0, "augment_scale": 0.0,
          "pseudo_label_threshold": 0.0}
PRESETS: dict[str, dict[str, Any]] = {
    "article": {"latent_dim": 2, "init": "random", "z_given_y": True, "anneal": 4.0, **_STILL},
    "clustering": {"latent_dim": 10, "init": "tsne", "z_given_y": False, "anneal": 1.0, **_STILL},
    "semi_supervised": {"latent_dim": 10, "init": "random", "z_given_y": True, "anneal": 4.0, "encoder": "conv",
                        "augment": 2, "consistency": 10.0, "augment_rotation": 15.0, "augment_scale": 0.1,
                        "pseudo_label_threshold": 0.95},
}


@register_model
class ClusteringVAE(ZooModel):
    """y ~ Cat(1/K), z | y ~ N(mu_y, sigma_y), x | z ~ Bernoulli(decoder(z)) (or Normal): clustering by q(y | x).

    Parameters
    ----------
    n_clusters: K, the number of clusters (values of y).
    latent_dim: dimension of z (preset "article": 2, so the latent space can be drawn; "clustering": 10).
    likelihood: "bernoulli" for data in [0, 1] (images), "normal" for real vectors (fixed ``decoder_scale``).
    encoder: "mlp" (dense networks, any data) or "conv" (the article's convolutional encoder/decoder;
        rows must be flattened ``image_shape`` images); preset "semi_supervised": "conv", the others "mlp".
    temperature: temperature of the relaxed q(y | x) and p(y) (method "relaxed"); training starts at
        ``anneal`` times this and decays geometrically to it over the first half of the steps.
    beta: weight on the z terms of the ELBO (the article's 8), through ``handlers.scale`` on the z sites.
    alpha: weight of the classifier term alpha * log q(y_i | x_i) per labelled row (semi-supervised).
    labelled_weight: weight of each labelled row's terms (its ELBO and the classifier term) relative to an
        unlabelled row's; None: (unlabelled rows) / (labelled rows), so that the labelled batch of a step
        weighs as much as its unlabelled batch, as the article's per-batch means do.
    hidden: widths of the MLP encoder (the decoder mirrors them); the last is the feature width.
    decoder_scale: standard deviation of the Normal likelihood.
    anneal: starting temperature factor (>= 1; 1 switches annealing off; preset "article": 4, "clustering": 1).
    kl_warmup: fraction of the steps over which beta rises linearly from 0 (0: off).
    balance: extra weight on N KL(mean_batch q(y | x) || p(y)), the marginal part of the ELBO's y-KL,
        which keeps every cluster in use (0: the plain ELBO).
    image_shape, channels: image size and the two convolution widths of the conv networks.
    init: where training starts: "random" (random weights, as the article), "autoencoder" (VaDE: an
        autoencoder pretrained on X, a Gaussian mixture on its codes) or "tsne" (the same autoencoder, the
        clusters of a Gaussian mixture on a t-SNE map of X); see :mod:`.pretrain`. With labels the
        mixture's component k starts at class k.
    pretrain_epochs: epochs of autoencoder pretraining (init "autoencoder" / "tsne").
    z_given_y: True: q(z | x, y), one Gaussian per cluster (the article); False: q(z | x) (VaDE's guide),
        with which q(y | x) can only follow the prior's clusters in z: the VAE cannot give each cluster
        its own copy of the data.
    augment: the largest shift, in pixels, of a labelled image in the classifier term: each step scores
        alpha * log q(y_i | x_i moved by up to ``augment`` pixels each way, the edge filled with 0), so that a few
        labels teach q(y | x) that a digit moved by a pixel or two is the same digit (0: off; rows must be
        flattened ``image_shape`` images with a zero background).
    consistency: weight of consistency * KL(q(y | x) || q(y | x moved)) per unlabelled row (moved as the
        labelled images are, q(y | x) held fixed in the gradient): the images the labels do not name learn to
        keep their class when moved (0: off; needs moved images).
    augment_rotation, augment_scale: besides the shift, turn each moved image by an angle uniform in
        +-``augment_rotation`` degrees and scale it by a factor uniform in 1 +- ``augment_scale`` about its centre
        (bilinear; the shift is then sub-pixel, uniform in +-``augment``); 0 and 0: whole-pixel shifts only.
    pseudo_label_threshold: 0 (off), or a confidence c: the consistency term's target becomes the hard label
        argmax q(y | x) of each unlabelled row where q(y | x) gives it at least c, scored -log q(label | x
        moved) (FixMatch's pseudo-labels); rows below c add nothing (needs ``consistency``).
    preset: "article" (latent_dim 2, init "random", z_given_y True, anneal 4), "clustering" (latent_dim
        10, init "tsne", z_given_y False, anneal 1: the defaults measured for cluster accuracy, with method
        "enum") or "semi_supervised" (the article's model with latent_dim 10 and the conv networks, augment 2,
        augment_rotation 15, augment_scale 0.1, consistency 10, pseudo_label_threshold 0.95: measured with 10
        labels per class, with method "relaxed"); the moves and the consistency term are off in the other
        two. Arguments given explicitly override the preset.
    """

    native_methods = methods = METHODS

    def engine_refusal(self, name: str, data: tuple[Any, ...], options: Mapping[str, Any]) -> str | None:
        return (f"{name}: the cluster y is discrete and the encoder and decoder are networks fitted with an "
                "amortised guide; use relaxed (Gumbel-softmax), enum (y summed out exactly) or score "
                "(score-function gradients)")

    fit_class = ClusteringVAEFit

    def __init__(
        self,
        n_clusters: int = 10,
        latent_dim: int | None = None,
        likelihood: str = "bernoulli",
        encoder: str | None = None,
        temperature: float = 0.5,
        beta: float = 8.0,
        alpha: float = 1000.0,
        hidden: tuple[int, ...] | list[int] = (512, 256),
        decoder_scale: float = 0.5,
        image_shape: tuple[int, int] | list[int] = (28, 28),
        channels: tuple[int, int] | list[int] = (32, 64),
        anneal: float | None = None,
        kl_warmup: float = 0.0,
        balance: float = 3.0,
        labelled_weight: float | None = None,
        init: str | None = None,
        pretrain_epochs: int = 50,
        z_given_y: bool | None = None,
        augment: int | None = None,
        consistency: float | None = None,
        augment_rotation: float | None = None,
        augment_scale: float | None = None,
        pseudo_label_threshold: float | None = None,
        preset: str = "article",
    ) -> None:
        self.preset = check_choice(preset, "preset", tuple(PRESETS))
        given = {"latent_dim": latent_dim, "init": init, "z_given_y": z_given_y, "anneal": anneal, "encoder": encoder,
                 "augment": augment, "consistency": consistency, "augment_rotation": augment_rotation,
                 "augment_scale": augment_scale, "pseudo_label_threshold": pseudo_label_threshold}
        chosen = {**PRESETS[self.preset], **{k: v for k, v in given.items() if v is not None}}
        (latent_dim, init, z_given_y, anneal, encoder, augment, consistency, augment_rotation, augment_scale,
         pseudo_label_threshold) = (chosen[k] for k in given)
        self.n_clusters = check_int(n_clusters, "n_clusters", minimum=2)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.likelihood = check_choice(likelihood, "likelihood", ("bernoulli", "normal"))
        self.encoder = check_choice(encoder, "encoder", ("mlp", "conv"))
        self.temperature = check_positive(temperature, "temperature")
        self.beta = check_positive(beta, "beta")
        self.alpha = check_positive(alpha, "alpha", allow_zero=True)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__") or len(hidden) == 0:
            raise TypeError(f"hidden: expected a non-empty sequence of layer widths, got {hidden!r}")
        self.hidden = tuple(check_int(h, "hidden", minimum=1) for h in hidden)
        self.decoder_scale = check_positive(decoder_scale, "decoder_scale")
        if not hasattr(image_shape, "__len__") or len(image_shape) != 2:
            raise TypeError(f"image_shape: expected (height, width), got {image_shape!r}")
        self.image_shape = tuple(check_int(s, "image_shape", minimum=4) for s in image_shape)
        if any(s % 4 for s in self.image_shape):
            raise ValueError(f"image_shape: height and width must be multiples of 4 for the conv networks, "
                             f"got {self.image_shape}")
        if not hasattr(channels, "__len__") or len(channels) != 2:
            raise TypeError(f"channels: expected two convolution widths, got {channels!r}")
        self.channels = tuple(check_int(c, "channels", minimum=1) for c in channels)
        self.anneal = check_positive(anneal, "anneal")
        if self.anneal < 1.0:
            raise ValueError(f"anneal: the starting temperature factor must be >= 1, got {anneal}")
        self.kl_warmup = check_positive(kl_warmup, "kl_warmup", allow_zero=True)
        if self.kl_warmup > 1.0:
            raise ValueError(f"kl_warmup: a fraction of the training steps in [0, 1], got {kl_warmup}")
        self.balance = check_positive(balance, "balance", allow_zero=True)
        self.labelled_weight = None if labelled_weight is None else check_positive(labelled_weight, "labelled_weight")
        self.init = check_choice(init, "init", ("random", "autoencoder", "tsne"))
        self.pretrain_epochs = check_int(pretrain_epochs, "pretrain_epochs", minimum=1)
        if not isinstance(z_given_y, (bool, np.bool_)):
            raise TypeError(f"z_given_y: expected True or False, got {z_given_y!r}")
        self.z_given_y = bool(z_given_y)
        self.augment = check_int(augment, "augment", minimum=0)
        if self.augment >= min(self.image_shape):
            raise ValueError(f"augment: a shift of at most {min(self.image_shape) - 1} pixels for "
                             f"{self.image_shape[0]} x {self.image_shape[1]} images, got {augment}")
        self.augment_rotation = check_positive(augment_rotation, "augment_rotation", allow_zero=True)
        if self.augment_rotation > 180:
            raise ValueError(f"augment_rotation: the largest angle in degrees, at most 180, got {augment_rotation}")
        self.augment_scale = check_positive(augment_scale, "augment_scale", allow_zero=True)
        if self.augment_scale >= 1:
            raise ValueError(f"augment_scale: the largest relative change of size, below 1, got {augment_scale}")
        self.consistency = check_positive(consistency, "consistency", allow_zero=True)
        if self.consistency > 0 and not self._moves:
            raise ValueError("consistency: compares q(y | x) with q(y | x moved) and needs moved images: "
                             "augment, augment_rotation or augment_scale > 0")
        if given["pseudo_label_threshold"] is None and self.consistency == 0:
            pseudo_label_threshold = 0.0  # the preset's threshold belongs to its consistency term, here off
        self.pseudo_label_threshold = check_positive(pseudo_label_threshold, "pseudo_label_threshold",
                                                     allow_zero=True)
        if self.pseudo_label_threshold > 1 or (self.pseudo_label_threshold > 0 and self.consistency == 0):
            raise ValueError("pseudo_label_threshold: a confidence in (0, 1] for the consistency term's hard "
                             f"targets (needs consistency > 0), or 0 (off), got {pseudo_label_threshold}")
        self._config = {
            "n_clusters": self.n_clusters, "latent_dim": self.latent_dim, "likelihood": self.likelihood,
            "encoder": self.encoder, "temperature": self.temperature, "beta": self.beta, "alpha": self.alpha,
            "hidden": list(self.hidden), "decoder_scale": self.decoder_scale,
            "image_shape": list(self.image_shape), "channels": list(self.channels),
            "anneal": self.anneal, "kl_warmup": self.kl_warmup, "balance": self.balance,
            "labelled_weight": self.labelled_weight, "init": self.init, "pretrain_epochs": self.pretrain_epochs,
            "z_given_y": self.z_given_y, "augment": self.augment,
            "consistency": self.consistency, "augment_rotation": self.augment_rotation,
            "augment_scale": self.augment_scale, "pseudo_label_threshold": self.pseudo_label_threshold,
            "preset": self.preset,
        }
        self._cache: dict[Any, Any] = {}

    @property
    def _moves(self) -> bool:
        """Whether training moves images (``augment``, ``augment_rotation`` or ``augment_scale``)."""
        return bool(self.augment or self.augment_rotation or self.augment_scale)

    def _moves_named(self) -> str:
        """The moving options in use, as the user would write them ("augment=2, augment_rotation=15.0")."""
        return ", ".join(f"{k}={getattr(self, k)}" for k in ("augment", "augment_rotation", "augment_scale")
                         if getattr(self, k))

    def _move(self, key: Any, X: jnp.ndarray) -> jnp.ndarray:
        """Each row of X (a flattened image) moved at random as the ``augment*`` options say."""
        return random_move(key, X, self.augment, self.augment_rotation, self.augment_scale, self.image_shape)

    # --- networks ------------------------------------------------------------------------------------
    def _encoder_net(self) -> nn.Module:
        return _Encoder(self.n_clusters, self.encoder, self.hidden, self.image_shape, self.channels)

    def _encoder_z_net(self) -> nn.Module:
        return _EncoderZ(self.latent_dim, self.hidden[-1], self.z_given_y)

    def _decoder_net(self, n_features: int) -> nn.Module:
        if self.encoder == "conv":
            return ConvDecoder(self.image_shape, self.channels, self.hidden[-1])
        return MLP(tuple(reversed(self.hidden)), n_features, _leaky)

    def _likelihood(self, out: jnp.ndarray) -> dist.Distribution:
        if self.likelihood == "bernoulli":
            # grey levels in [0, 1] scored by the Bernoulli log-likelihood (binary cross-entropy), as the
            # article does; NumPyro's support check would reject non-binary values, hence validate_args=False
            return dist.Bernoulli(logits=out, validate_args=False).to_event(1)
        return dist.Normal(out, self.decoder_scale).to_event(1)

    def _prior_params(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        K, D = self.n_clusters, self.latent_dim
        loc = numpyro.param("prior_loc", lambda key: jax.random.normal(key, (K, D)))
        scale = numpyro.param("prior_scale", jnp.ones((K, D)), constraint=constraints.positive)
        return loc, scale

    def _schedule(self, temperature: Any, schedule_steps: int | None) -> tuple[Any, Any]:
        """(temperature, beta) at the current step.

        The clock is the parameter ``clock``, which the optimiser advances by one each step (it gets no
        gradient), so the schedule is part of the SVI state and a resumed run follows it exactly. With
        ``schedule_steps`` the temperature decays geometrically from ``anneal * temperature`` to
        ``temperature`` and beta rises linearly from 0 to ``beta`` over ``kl_warmup * schedule_steps`` steps.
        """
        tau = self.temperature if temperature is None else temperature
        beta = self.beta
        if schedule_steps is None or (self.anneal == 1.0 and self.kl_warmup == 0.0):
            return tau, beta
        clock = jax.lax.stop_gradient(numpyro.param("clock", jnp.zeros(())))
        if self.anneal != 1.0:
            frac = jnp.clip(1.0 - clock / max(1.0, 0.5 * schedule_steps), 0.0, 1.0)
            tau = tau * self.anneal ** frac
        if self.kl_warmup > 0.0:
            beta = beta * jnp.clip((clock + 1.0) / max(1.0, self.kl_warmup * schedule_steps), 0.0, 1.0)
        return tau, beta

    # --- the generative model and the guide ----------------------------------------------------------
    def model(self, X: Any, labels: Any = None, labelled: Any = None, method: str = "relaxed",
              temperature: Any = None, labelled_batch: int = 100,
              schedule_steps: int | None = None, labelled_scale: float = 1.0) -> None:
        """p(y) p(z | y) p(x | z) over the rows of X; labelled rows (``labelled`` indexes them) observe y."""
        check_choice(method, "method", METHODS)
        K = self.n_clusters
        X = jnp.asarray(X)
        N, P = X.shape
        decode = flax_module("decoder", self._decoder_net(P), input_shape=(1, self.latent_dim))
        mu, sigma = self._prior_params()
        tau, beta = self._schedule(temperature, schedule_steps)

        def z_then_x(y: jnp.ndarray, x: jnp.ndarray, suffix: str) -> None:
            with handlers.scale(scale=beta):
                z = numpyro.sample("z" + suffix, dist.Normal(y @ mu, y @ sigma).to_event(1))
            numpyro.sample("x" + suffix, self._likelihood(decode(z)), obs=x)

        unlabelled = None if labels is None else jnp.asarray(labels) < 0
        with numpyro.plate("data", N) as idx:
            with handlers.mask(mask=True if unlabelled is None else unlabelled[idx]):
                if method in DISCRETE:
                    y = jax.nn.one_hot(numpyro.sample("y", dist.Categorical(logits=jnp.zeros(K))), K)
                else:
                    y = jnp.exp(numpyro.sample("log_y", ExpRelaxedOneHotCategorical(tau, logits=jnp.zeros(K))))
                z_then_x(y, X[idx], "")
        if labelled is not None and np.shape(labelled)[0] > 0:
            with _labelled_rows(labels, labelled, labelled_batch, labelled_scale) as (i, t):
                numpyro.sample("y_labelled", dist.Categorical(logits=jnp.zeros(K)), obs=t)
                z_then_x(jax.nn.one_hot(t, K), X[i], "_labelled")

    def guide(self, X: Any, labels: Any = None, labelled: Any = None, method: str = "relaxed",
              temperature: Any = None, labelled_batch: int = 100,
              schedule_steps: int | None = None, labelled_scale: float = 1.0) -> None:
        """q(y | x) q(z | x, y); on labelled rows q(z | x, y_i) and the classifier term alpha log q(y_i | x_i)
        (x_i moved with ``augment``); with ``balance`` the penalty balance * N * KL(mean_batch q(y | x) || p(y));
        with ``consistency`` the penalty consistency * KL(q(y | x) || q(y | x moved)) per unlabelled row."""
        check_choice(method, "method", METHODS)
        K = self.n_clusters
        X = jnp.asarray(X)
        N, P = X.shape
        encode = flax_module("encoder", self._encoder_net(), input_shape=(1, P))
        encode_z = flax_module("encoder_z", self._encoder_z_net(), jnp.ones((1, self.hidden[-1])), jnp.ones((1, K)))
        tau, beta = self._schedule(temperature, schedule_steps)

        def q_z(h: jnp.ndarray, y: jnp.ndarray, suffix: str) -> None:
            loc, scale = encode_z(h, y)
            with handlers.scale(scale=beta):
                numpyro.sample("z" + suffix, dist.Normal(loc, scale).to_event(1))

        unlabelled = None if labels is None else jnp.asarray(labels) < 0
        with numpyro.plate("data", N) as idx:
            h, logits = encode(X[idx])
            with handlers.mask(mask=True if unlabelled is None else unlabelled[idx]):
                if method in DISCRETE:
                    y = jax.nn.one_hot(numpyro.sample("y", dist.Categorical(logits=logits)), K)
                else:
                    y = jnp.exp(numpyro.sample("log_y", ExpRelaxedOneHotCategorical(tau, logits=logits)))
                q_z(h, y, "")
                if self.consistency > 0:
                    # + consistency * KL(q(y | x) || q(y | x moved)) (or, with pseudo_label_threshold, the hard
                    # label's -log q) as a penalty (a guide factor enters with a minus); q(y | x) is the target,
                    # held fixed, as in the Pi-model, VAT and FixMatch
                    _, moved = encode(self._move(numpyro.prng_key(), X[idx]))
                    penalty = consistency_penalty(logits, moved, self.pseudo_label_threshold or None)
                    numpyro.factor("consistency", self.consistency * penalty)
            if self.balance > 0:
                # KL(q_bar || p(y)) with q_bar the mean of q(y | x) over the unlabelled rows of the batch,
                # in log space; a guide factor enters the ELBO with a minus, so this adds a penalty
                w = jnp.ones(idx.shape[0]) if unlabelled is None else unlabelled[idx].astype(logits.dtype)
                n_w = jnp.maximum(w.sum(), 1.0)
                log_qbar = jax.nn.logsumexp(jax.nn.log_softmax(logits), axis=0, b=w[:, None]) - jnp.log(n_w)
                kl_bar = jnp.sum(jnp.exp(log_qbar) * (log_qbar + math.log(K)))
                n_unlabelled = N if unlabelled is None else jnp.sum(unlabelled)
        if self.balance > 0:
            numpyro.factor("balance", self.balance * n_unlabelled * kl_bar)
        if labelled is not None and np.shape(labelled)[0] > 0:
            with _labelled_rows(labels, labelled, labelled_batch, labelled_scale) as (i, t):
                h, logits = encode(X[i])
                if self._moves:  # the classifier term sees each labelled image moved, anew every step
                    _, logits = encode(self._move(numpyro.prng_key(), X[i]))
                # M2's classifier term: + alpha log q(y_i | x_i) in the ELBO (a guide factor enters with a minus)
                numpyro.factor("classify", -self.alpha * dist.Categorical(logits=logits).log_prob(t))
                q_z(h, jax.nn.one_hot(t, K), "_labelled")

    def _prediction_fns(self, P: int) -> dict[str, Callable]:
        """Jitted functions of (params, ...) for fits of this model on P features, compiled once per shape."""
        if ("fns", P) in self._cache:
            return self._cache[("fns", P)]
        enc, enc_z, dec = self._encoder_net(), self._encoder_z_net(), self._decoder_net(P)
        K, D = self.n_clusters, self.latent_dim

        def prior(params):
            return params["prior_loc"], params.get("prior_scale", jnp.ones((K, D)))

        def encode(params, x):
            return enc.apply({"params": params["encoder$params"]}, x)

        def q_z(params, h, y):  # (loc, scale) broadcast over y's leading dimensions (q(z | x) has none)
            loc, scale = enc_z.apply({"params": params["encoder_z$params"]}, h, y)
            shape = jnp.broadcast_shapes(loc.shape, (*y.shape[:-1], D))
            return jnp.broadcast_to(loc, shape), jnp.broadcast_to(scale, shape)

        def decode(params, z):
            return dec.apply({"params": params["decoder$params"]}, z)

        def mean(out):
            return jax.nn.sigmoid(out) if self.likelihood == "bernoulli" else out

        @jax.jit
        def summary(params, x):
            h, logits = encode(params, x)
            y_hat = jnp.argmax(logits, -1)
            loc, _ = q_z(params, h, jax.nn.one_hot(y_hat, K))
            return jax.nn.softmax(logits), loc, mean(decode(params, loc))

        @partial(jax.jit, static_argnums=(3,))
        def bounds(params, x, key, S):
            """Per row: the ELBO (beta = 1, y summed exactly) and the importance-sampled log p(x)."""
            mu, sigma = prior(params)
            h, logits = encode(params, x)
            log_q_y = jax.nn.log_softmax(logits)  # (n, K)
            loc, scale = q_z(params, h, jnp.eye(K)[:, None, :])  # (K, n, D)
            z = loc + scale * jax.random.normal(key, (S, *loc.shape))  # (S, K, n, D)
            log_q_z = dist.Normal(loc, scale).to_event(1).log_prob(z)
            log_p_z = dist.Normal(mu[:, None, :], sigma[:, None, :]).to_event(1).log_prob(z)
            log_p_x = self._likelihood(decode(params, z)).log_prob(x)
            w = log_p_x + log_p_z - log_q_z  # (S, K, n): log p(x, z | y) - log q(z | x, y)
            elbo_y = w.mean(0).T - math.log(K) - log_q_y  # (n, K)
            elbo = jnp.sum(jnp.exp(log_q_y) * elbo_y, -1)
            lpd = jax.scipy.special.logsumexp(w, axis=(0, 1)) - math.log(K) - math.log(S)
            return elbo, lpd

        @partial(jax.jit, static_argnums=(3,))
        def draws(params, x, key, S):
            """S draws of (y, z) from the guide per row, log p(x | z) and the mean of p(x | z)."""
            h, logits = encode(params, x)
            ky, kz = jax.random.split(key)
            y = jax.random.categorical(ky, logits, shape=(S, x.shape[0]))
            loc, scale = q_z(params, h, jax.nn.one_hot(y, K))
            z = loc + scale * jax.random.normal(kz, loc.shape)
            out = decode(params, z)
            return y, z, self._likelihood(out).log_prob(x), mean(out)

        @jax.jit
        def prior_draws(params, y, key):
            mu, sigma = prior(params)
            return mu[y] + sigma[y] * jax.random.normal(key, (y.shape[0], D))

        @jax.jit
        def decode_mean(params, z):
            return mean(decode(params, z))

        fns = {"summary": summary, "bounds": bounds, "draws": draws, "prior_draws": prior_draws,
               "decode_mean": decode_mean}
        self._cache[("fns", P)] = fns
        return fns

    # --- training --------------------------------------------------------------------------------------
    def check_fit(self, X: Any, *data: Any, method: str, **options: Any) -> None:
        super().check_fit(X, *data, method=method, **options)
        self._check_X(X)

    def _check_X(self, X: Any, name: str = "X", n_features: int | None = None) -> np.ndarray:
        X = as_array(X, name, ndim=2, min_rows=1)
        if self.encoder == "conv" or self._moves:
            h, w = self.image_shape
            if X.shape[1] != h * w:
                needs, other = (("the conv encoder", "use encoder='mlp'") if self.encoder == "conv"
                                else (self._moves_named(),
                                      "set them to 0" if "," in self._moves_named() else "set it to 0"))
                raise ValueError(f"{name}: {needs} needs flattened {h} x {w} images ({h * w} columns), "
                                 f"got {X.shape[1]} columns; {other} for other data, or give image_shape")
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"{name}: the fit was trained on {n_features} columns, got {X.shape[1]}")
        if self.likelihood == "bernoulli":
            check_unit_interval(X, name)
        return X

    @runs_engines
    def fit(
        self,
        X: Any,
        labels: Any = None,
        method: str = "enum",
        epochs: int = 100,
        batch_size: int = 100,
        seed: int = 0,
        progress: bool = False,
        learning_rate: float = 1e-3,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: str | Path | None = None,
        callback: Callable | None = None,
        num_draws: int = 4,
        n_reconstructions: int = 64,
        devices: Any = None,
    ) -> ClusteringVAEFit:
        """Train by minibatch SVI; ``labels`` (optional) has one int per row, -1 for unlabelled rows.

        ``method``: "relaxed" (Concrete relaxation of y, ``Trace_ELBO``), "enum" (y summed out,
        ``TraceEnum_ELBO``) or "score" (y sampled, score-function gradients, ``TraceGraph_ELBO``). The
        returned fit's ``idata`` holds ``num_draws`` guide draws of y and z per row with q(y | x)
        ("y_probs"), the pointwise log-likelihood, reconstructions of the first ``n_reconstructions`` rows
        as posterior predictive, and the loss trace (group "training"). ``devices`` (None, N or "all") splits
        each minibatch over that many devices (:mod:`probzoo.infer.devices`).
        """
        method = check_choice(method, "method", METHODS)
        X = self._check_X(X)
        N, P = X.shape
        seed = check_seed(seed)
        epochs = check_int(epochs, "epochs", minimum=1)
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=N)
        num_draws = check_int(num_draws, "num_draws", minimum=1)
        n_reconstructions = check_int(n_reconstructions, "n_reconstructions", minimum=0)
        if labels is not None:
            labels = check_labels(labels, "labels", n=N, n_classes=self.n_clusters)
            labelled = np.flatnonzero(labels >= 0).astype(np.int32)
            if labelled.size == N:
                raise ValueError("labels: every row is labelled; leave some at -1 (unlabelled) to cluster them")
        else:
            labelled = np.zeros((0,), np.int32)
        labelled_scale = 1.0
        if labelled.size:
            labelled_scale = (self.labelled_weight if self.labelled_weight is not None
                              else (N - labelled.size) / labelled.size)
        steps = epochs * (N // batch_size)
        guide = config_enumerate(self.guide) if method == "enum" else self.guide
        loss = elbo_loss(method)
        init_params, pretrain_info = None, {}
        if self.init != "random" and resume is None:  # a resumed run takes every parameter from its checkpoint
            init_params, pretrain_info = pretrained_params(
                self, X, labels, epochs=self.pretrain_epochs, batch_size=batch_size, learning_rate=learning_rate,
                seed=seed, progress=progress)
        run = run_svi(
            self.model, guide, X, labels, labelled if labelled.size else None,
            optim=_optimiser(learning_rate), loss=loss, epochs=epochs, batch_size=batch_size, seed=seed,
            progress=progress, callback=callback, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
            resume=resume, desc=f"ClusteringVAE/{method}", devices=devices, method=method,
            labelled_batch=batch_size,
            settings={"model": "ClusteringVAE", "config": self.get_config(), "method": method,
                      "learning_rate": learning_rate},
            schedule_steps=steps, labelled_scale=float(labelled_scale), init_params=init_params,
        )
        params = {k: v for k, v in run.params.items()}
        fit = ClusteringVAEFit(
            model=self, method=method, params=params, losses=run.losses,
            wall_time=run.wall_time + pretrain_info.get("pretrain_time", 0.0),
            compile_time=run.compile_time, seed=seed,
            info={"epochs": epochs, "batch_size": batch_size, "n_rows": N, "n_features": P,
                  "n_labelled": int(labelled.size), "labelled_scale": float(labelled_scale),
                  "steps": int(run.num_steps), "steps_per_epoch": run.steps_per_epoch,
                  "seconds_per_epoch": run.run_time / epochs,
                  "setup_time": run.setup_time, "loop_time": run.loop_time, **pretrain_info,
                  "khat_reason": "not applicable: the guide q(y, z | x) is amortised over every image's own "
                                 "latents, not a distribution over global parameters; the held-out ELBO "
                                 "(fit.evaluate) judges it"},
        )
        fit.idata = fit._inference_data(X, num_draws=num_draws, n_reconstructions=n_reconstructions, seed=seed)
        fit.info["clusters_used"] = int(np.unique(fit.predict(X)).size)
        return fit
