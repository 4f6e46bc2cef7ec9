"""UKRFit: a fitted UKR's latents (or draws of them), reconstructions, projections of new points and scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from probzoo.infer.result import Fit
from probzoo.models.ukr.kernel import auto_block_size, nadaraya_watson
from probzoo.models.ukr.projection import _log_marginal, _log_mean_exp, _transform
from probzoo.validation import as_array, check_int


def trustworthiness(Z_true: np.ndarray, Z: np.ndarray, n_neighbors: int = 10) -> float:
    """sklearn.manifold.trustworthiness of the embedding ``Z`` w.r.t. the reference coordinates ``Z_true``."""
    from sklearn.manifold import trustworthiness as _tw

    n = len(Z)
    k = int(min(n_neighbors, max(1, n // 2 - 1)))
    return float(_tw(np.asarray(Z_true, np.float64), np.asarray(Z, np.float64), n_neighbors=k))




class UKRFit(Fit):
    """A fitted UKR: latents, the map f, reconstructions, new-point latents and held-out scores."""

    # --- the point estimate ---------------------------------------------------------------------
    @property
    def latents(self) -> np.ndarray:
        """The latents X (N, M): the MAP point, or for NUTS the posterior draw of highest density."""
        return np.asarray(self.params["x_auto_loc" if "x_auto_loc" in self.params else "x"])

    @property
    def noise(self) -> float:
        """The observation scale s (fixed, or learned: MAP / highest-density draw)."""
        if self.model.noise is not None:
            return float(self.model.noise)
        return float(self.params["s_auto_loc" if "s_auto_loc" in self.params else "s"])

    @property
    def data(self) -> np.ndarray:
        return np.asarray(self.arrays["Y"])

    def _f(self) -> Callable[[jnp.ndarray], jnp.ndarray]:
        X, Y, h = jnp.asarray(self.latents), jnp.asarray(self.data), self.model.bandwidth
        return lambda Z: nadaraya_watson(Z, X, Y, h, block_size=auto_block_size(len(self.data)))

    # --- maps -----------------------------------------------------------------------------------
    def reconstruct(self, loo: bool | None = None) -> np.ndarray:
        """f(x_i; X) for the training points (N, D); leave-one-out when ``loo`` (default: the model's)."""
        loo = self.model.loo if loo is None else bool(loo)
        X, Y = jnp.asarray(self.latents), jnp.asarray(self.data)
        n = len(Y)
        f = nadaraya_watson(X, X, Y, self.model.bandwidth, self_index=jnp.arange(n) if loo else None,
                            block_size=auto_block_size(n))
        return np.asarray(f)

    def reconstruction_error(self, loo: bool | None = None) -> float:
        """R(X) = mean_i ||y_i - f(x_i; X)||^2 on the training data (leave-one-out when the model is)."""
        return float(np.mean(np.sum((self.data - self.reconstruct(loo)) ** 2, axis=-1)))

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """f(Z; X) (n, D): the data-space points of latents ``Z`` (n, M)."""
        Z = as_array(Z, "Z", ndim=2, width=self.model.latent_dim)
        return np.asarray(self._f()(jnp.asarray(Z)))

    def transform(self, Y_new: Any, prior: bool = True, num_iters: int = 50) -> np.ndarray:
        """Latents (n, M) of new points: argmin_x ||y - f(x)||^2 (+ s^2 reg ||x||^2 with ``prior``), started
        from the training latent whose image f(x_j) is nearest to y; Levenberg-Marquardt, vmapped and jit.

        With ``prior`` (the default) this is the mode of p(x | y) under the model. The prior term moves
        interior points by well under 1% of their distance to the origin, but it stops points just beyond
        the edge of the data from drifting off to infinity, where f is flat (the kernel weights collapse
        onto the nearest training latent). ``prior=False`` is the plain least-squares projection.
        """
        Y_new = as_array(Y_new, "Y_new", ndim=2, width=self.data.shape[1])
        num_iters = check_int(num_iters, "num_iters", minimum=0)
        X, Y = jnp.asarray(self.latents), jnp.asarray(self.data)
        return np.asarray(_transform(jnp.asarray(Y_new), X, Y, self._f()(X), self.model.bandwidth,
                                     self._penalty(self.noise) if prior else 0.0, num_iters))

    def _penalty(self, s: float) -> float:
        return float(s) ** 2 * self.model.reg

    # --- scores -----------------------------------------------------------------------------------
    def evaluate(self, Y_heldout: Any, Z_true: Any = None, num_draws: int = 1024) -> dict[str, float]:
        """Held-out scores: ``reconstruction_error`` mean ||y - f(transform(y))||^2, ``lpd`` (mean log p(y)
        under the model, the latent integrated by importance sampling around its Laplace approximation at
        transform(y); for NUTS averaged over up to 20 posterior draws) and, when the true latents
        ``Z_true`` are given, ``trustworthiness`` (k = 10) of transform(Y_heldout) w.r.t. them."""
        Y_heldout = as_array(Y_heldout, "Y_heldout", ndim=2, width=self.data.shape[1])
        num_draws = check_int(num_draws, "num_draws", minimum=1)
        Z = self.transform(Y_heldout)
        out = {"reconstruction_error": float(np.mean(np.sum((Y_heldout - self.inverse_transform(Z)) ** 2, -1)))}
        out["lpd"] = self._lpd(Y_heldout, num_draws)
        if Z_true is not None:
            Z_true = as_array(Z_true, "Z_true", ndim=2)
            if len(Z_true) != len(Y_heldout):
                raise ValueError(f"Z_true: has {len(Z_true)} rows but Y_heldout has {len(Y_heldout)}")
            out["trustworthiness"] = trustworthiness(Z_true, Z)
        return out

    def _lpd(self, Y_new: np.ndarray, num_draws: int) -> float:
        Yn, Y, h, reg = jnp.asarray(Y_new), jnp.asarray(self.data), self.model.bandwidth, self.model.reg
        key = jax.random.PRNGKey(self.seed)
        if self.is_mcmc:
            xs = self.samples["x"]
            ss = self.samples.get("s", np.full(len(xs), self.noise))
            pick = np.linspace(0, len(xs) - 1, min(20, len(xs))).astype(int)
            points = [(jnp.asarray(xs[i]), float(ss[i])) for i in pick]
        else:
            points = [(jnp.asarray(self.latents), self.noise)]
        per_draw = []
        for X, s in points:
            images = nadaraya_watson(X, X, Y, h, block_size=auto_block_size(len(Y)))
            x_hat = _transform(Yn, X, Y, images, h, self._penalty(s), 50)
            per_draw.append(np.asarray(_log_marginal(Yn, x_hat, X, Y, h, reg, s, key, num_draws)))
        lp = np.stack(per_draw)  # (draws, n)
        return float(np.mean(_log_mean_exp(lp)))

    @property
    def diagnostic_sites(self) -> list[str]:
        """The rotation/reflection-invariant quantities that r_hat/ESS are read on."""
        return ["recon_error", "pair_dist", "latent_rms"] + (["s"] if self.model.noise is None else [])
