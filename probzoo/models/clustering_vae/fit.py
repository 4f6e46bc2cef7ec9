"""ClusteringVAEFit: cluster assignments, q(y | x), latent codes, reconstructions and scores of a fitted VAE."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from probzoo import metrics
from probzoo.infer import arviz_io
from probzoo.infer.result import Fit
from probzoo.validation import (
    as_array,
    check_int,
    check_seed,
)


class ClusteringVAEFit(Fit):
    """A trained clustering VAE: cluster probabilities, embeddings, reconstructions, generation, scores."""

    # --- the networks at the fitted parameters ----------------------------------------------------------
    def _fns(self) -> dict[str, Callable]:
        """The model's compiled prediction functions (shared by every fit of this model) bound to our params."""
        P = int(self.info["n_features"])
        fns = self.model._prediction_fns(P)
        if getattr(self, "_device_params", None) is None:
            self._device_params = jax.tree.map(jnp.asarray, self.params)
        return {name: partial(fn, self._device_params) for name, fn in fns.items()}

    def _rows(self, X: Any, name: str = "X") -> np.ndarray:
        return self.model._check_X(X, name, n_features=int(self.info["n_features"]))

    def _summary(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = self._rows(X)
        fn = self._fns()["summary"]
        parts = [fn(jnp.asarray(c)) for c in _chunks(X, 1000)]
        return tuple(np.concatenate([np.asarray(p[i]) for p in parts])[: X.shape[0]] for i in range(3))

    # --- public methods ---------------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """q(y | x): (n, K) cluster probabilities."""
        return self._summary(X)[0]

    def predict(self, X: Any) -> np.ndarray:
        """The most probable cluster under q(y | x), (n,) ints."""
        return np.argmax(self.predict_proba(X), axis=-1).astype(np.int32)

    def embed(self, X: Any) -> np.ndarray:
        """(n, latent_dim): the mean of q(z | x, y) at the most probable cluster y."""
        return self._summary(X)[1]

    def reconstruct(self, X: Any) -> np.ndarray:
        """(n, n_features): the mean of p(x | z) at z = embed(X)."""
        return self._summary(X)[2]

    def sample_latent(self, cluster: int, n: int = 100, seed: int = 0) -> np.ndarray:
        """(n, latent_dim) draws of z ~ p(z | y = cluster)."""
        cluster = check_int(cluster, "cluster", minimum=0, maximum=self.model.n_clusters - 1)
        n = check_int(n, "n", minimum=1)
        y = jnp.full((n,), cluster, jnp.int32)
        return np.asarray(self._fns()["prior_draws"](y, jax.random.PRNGKey(check_seed(seed))))

    def generate(self, cluster: int, n: int = 10, seed: int = 0) -> np.ndarray:
        """(n, n_features): the mean of p(x | z) for z ~ p(z | y = cluster) (the article's per-cluster samples)."""
        z = self.sample_latent(cluster, n, seed)
        return np.asarray(self._fns()["decode_mean"](jnp.asarray(z)))

    def elbo(self, X: Any, num_samples: int = 10, seed: int = 0) -> np.ndarray:
        """Per-row ELBO with beta = 1 (a lower bound on log p(x)), y summed exactly, z by ``num_samples``."""
        return self._bounds(X, num_samples, seed)[0]

    def log_likelihood(self, X: Any, num_samples: int = 10, seed: int = 0) -> np.ndarray:
        """Per-row importance-sampled log p(x) (``num_samples`` z per cluster from q(z | x, y); a lower bound
        that tightens as ``num_samples`` grows)."""
        return self._bounds(X, num_samples, seed)[1]

    def _bounds(self, X: Any, num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        X = self._rows(X)
        S = check_int(num_samples, "num_samples", minimum=1)
        key = jax.random.PRNGKey(check_seed(seed))
        fn = self._fns()["bounds"]
        chunk = max(8, 20_000 // (S * self.model.n_clusters))
        parts = [fn(jnp.asarray(c), jax.random.fold_in(key, i), S) for i, c in enumerate(_chunks(X, chunk))]
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts])[: X.shape[0]] for j in range(2))

    def evaluate(self, X: Any, labels_true: Any = None, num_samples: int = 10, seed: int = 0) -> dict[str, float]:
        """Held-out scores: "elbo" and "lpd" (mean per row, nats), and with true labels "accuracy"
        (Hungarian matching of clusters to classes), "nmi" and "clusters_used"."""
        X = self._rows(X)
        elbo, lpd = self._bounds(X, num_samples, seed)
        out = {"elbo": float(np.mean(elbo)), "lpd": float(np.mean(lpd))}
        pred = self.predict(X)
        out["clusters_used"] = float(np.unique(pred).size)
        if labels_true is not None:
            t = as_array(labels_true, "labels_true", ndim=1, dtype=np.int64)
            if t.shape[0] != X.shape[0]:
                raise ValueError(f"labels_true: expected {X.shape[0]} labels (one per row), got {t.shape[0]}")
            out["accuracy"] = metrics.cluster_accuracy(t, pred)
            out["nmi"] = metrics.nmi(t, pred)
        return out

    def _inference_data(self, X: np.ndarray, num_draws: int, n_reconstructions: int, seed: int) -> Any:
        fns = self._fns()
        key = jax.random.PRNGKey(seed + 1)
        ys, zs, lls, recs = [], [], [], []
        n_rec = min(n_reconstructions, X.shape[0])
        for i, c in enumerate(_chunks(X, 500)):
            y, z, ll, rec = fns["draws"](jnp.asarray(c), jax.random.fold_in(key, i), num_draws)
            ys.append(np.asarray(y)), zs.append(np.asarray(z)), lls.append(np.asarray(ll))
            if i * 500 < n_rec:
                recs.append(np.asarray(rec))
        n = X.shape[0]
        y = np.concatenate(ys, axis=1)[:, :n]
        z = np.concatenate(zs, axis=1)[:, :n]
        ll = np.concatenate(lls, axis=1)[:, :n]
        probs = self.predict_proba(X)
        posterior = {"y": y.astype(np.int32), "z": z,
                     "y_probs": np.broadcast_to(probs, (num_draws, *probs.shape))}
        dims = {"y": ["point"], "z": ["point", "latent"], "y_probs": ["point", "cluster"]}
        pp = obs = None
        if n_rec:
            pp = {"x": np.concatenate(recs, axis=1)[:, :n_rec]}
            obs = {"x": X[:n_rec]}
            dims["x"] = ["shown", "feature"]
        idata = arviz_io.from_samples(
            posterior, log_likelihood={"x_loglik": ll}, posterior_predictive=pp, observed_data=obs,
            dims={**dims, "x_loglik": ["point"]},
            attrs={"inference": "svi", "note": arviz_io.SVI_NOTE, "model": "ClusteringVAE", "method": self.method,
                   "posterior_predictive": "mean of p(x | z), z from the guide (reconstructions)"},
        )
        return arviz_io.add_group(idata, "training", {"loss": (["step"], np.asarray(self.losses))})


def _chunks(X: np.ndarray, chunk: int) -> list[np.ndarray]:
    """Rows of X in chunks of ``chunk`` (the last padded by repeating its last row) so that one compiled
    function serves them all; callers cut the concatenated result back to len(X)."""
    n = X.shape[0]
    chunk = max(1, min(chunk, n))
    out = []
    for start in range(0, n, chunk):
        part = X[start:start + chunk]
        if part.shape[0] < chunk:
            part = np.concatenate([part, np.repeat(part[-1:], chunk - part.shape[0], axis=0)])
        out.append(part)
    return out
