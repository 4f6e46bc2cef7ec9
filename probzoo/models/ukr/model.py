"""Unsupervised kernel regression (UKR) as a NumPyro model: MAP or NUTS over the latents.

Generative model (N points y_i in R^D, latents x_i in R^M, M < D):

    x_i ~ Normal(0, 1 / sqrt(reg))                    (the articles' weight decay, reg * ||X||^2 / 2)
    y_i ~ Normal(f(x_i; X), s),   f(x; X) = sum_j softmax_j(-||x - x_j||^2 / 2h) y_j   (Nadaraya-Watson)

With ``loo=True`` (the default, Klanke & Ritter) training point i is left out of its own sum, which
removes the degenerate optimum of the plain map (spread the latents apart and every point reconstructs
itself). The noise scale is learned (``noise=None``: s^2 ~ InverseGamma(1, 1e-3 v), v the data's mean
per-coordinate variance, a weak prior) or fixed. Method "nuts" samples the latents with NUTS; a learned
s is updated within Gibbs from its exact conjugate conditional (``numpyro.infer.HMCGibbs``), which mixes
better than moving s and the latents jointly (their coupling makes a funnel).

The articles minimise R(X) + weight decay by gradient descent. Their code's update,
``X -= lr * (grad_X sum_i ||y_i - f(x_i)||^2 / 2 + reg X)``, is gradient descent on this model's negative
log joint with ``loo=False``, ``noise=1.0``: -log p(Y, X) = sum_i ||y_i - f(x_i)||^2 / 2 + reg ||X||^2 / 2 + const.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.distributions.transforms import PowerTransform
from numpyro.infer import NUTS, HMCGibbs
from numpyro.infer.autoguide import AutoDelta
from numpyro.infer.initialization import init_to_value
from numpyro.optim import _NumPyroOptim, optax_to_numpyro

from probzoo.infer import arviz_io
from probzoo.infer import engines as _engines
from probzoo.infer.devices import DataParallel
from probzoo.infer.diagnostics import record_gradients
from probzoo.infer.mcmc import run_mcmc
from probzoo.infer.posterior import svi_inference_data
from probzoo.infer.programs import compiled_init
from probzoo.infer.svi import run_svi
from probzoo.models.base import BoundModel, ZooModel, runs_engines
from probzoo.models.ukr.fit import UKRFit
from probzoo.models.ukr.kernel import auto_block_size, latent_grid, nadaraya_watson
from probzoo.validation import as_array, check_bool, check_choice, check_int, check_positive, check_seed
from probzoo.zoo import register_model

METHODS = ("map", "nuts")
_INIT_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # candidate PCA scalings, in units of sqrt(bandwidth)


def _pca(Y: np.ndarray, m: int) -> np.ndarray:
    """Scores of the centred data on its top-m principal axes, each scaled to unit standard deviation."""
    Yc = Y.astype(np.float64) - Y.mean(axis=0)
    _, sv, vt = np.linalg.svd(Yc, full_matrices=False)
    scores = Yc @ vt[:m].T
    sd = scores.std(axis=0)
    return scores / np.where(sd > 0, sd, 1.0)


@register_model
class UKR(ZooModel):
    """Unsupervised kernel regression: a smooth map f from M-dimensional latents onto the data.

    ``UKR(latent_dim=2, bandwidth=1.0, reg=0.1, loo=True, init="pca")``. ``bandwidth`` is h in the
    Gaussian kernel exp(-||x - x'||^2 / 2h) (the articles' sigma^2); ``reg`` the prior precision of the
    latents (the articles' weight decay lamda); ``noise`` fixes the observation scale s (``None``: learned).
    ``init``: "pca" (principal components, scaled by leave-one-out cross-validation as in Klanke &
    Ritter when ``loo``), "random" (Normal(0, 0.1 sqrt(h)) with the fit's seed) or an (N, M) array.
    ``block_size`` rows of the kernel matrix are evaluated at a time (``None``: chosen from N).
    """

    fit_class = UKRFit
    native_methods = METHODS
    # every generic engine but HMC-ECS, whose subsampled data plate would hold the latents x_n themselves
    methods = METHODS + tuple(m for m in _engines.generic_names() if m not in METHODS and m != "hmcecs")

    def __init__(
        self,
        latent_dim: int = 2,
        bandwidth: float = 1.0,
        reg: float = 0.1,
        loo: bool = True,
        init: str | np.ndarray = "pca",
        noise: float | None = None,
        block_size: int | None = None,
    ) -> None:
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.bandwidth = check_positive(bandwidth, "bandwidth")
        self.reg = check_positive(reg, "reg")
        self.loo = check_bool(loo, "loo")
        if isinstance(init, str):
            check_choice(init, "init", ("pca", "random"))
            self.init = init
        else:
            self.init = as_array(init, "init", ndim=2, width=self.latent_dim, min_rows=2)
        self.noise = None if noise is None else check_positive(noise, "noise")
        self.block_size = None if block_size is None else check_int(block_size, "block_size", minimum=1)
        self._config = {
            "latent_dim": self.latent_dim, "bandwidth": self.bandwidth, "reg": self.reg, "loo": self.loo,
            "init": self.init if isinstance(self.init, str) else self.init.tolist(),
            "noise": self.noise, "block_size": self.block_size,
        }

    # --- the NumPyro model ----------------------------------------------------------------------
    def grid_map(self, history: Any, Y: Any, side: int = 20) -> np.ndarray:
        """f over a regular side x side grid spanning each snapshot of 2-D latents in ``history`` (frames,
        N, 2), with the snapshot's own latents and data ``Y``: (frames, side, side, D), for the wireframe
        figures (one compiled program over every frame)."""
        history, Y = np.asarray(history, np.float32), np.asarray(Y, np.float32)
        grids = np.stack([latent_grid(X, side) for X in history])
        fmap = jax.jit(jax.vmap(lambda G, X: nadaraya_watson(G, X, jnp.asarray(Y), self.bandwidth)))
        F = np.asarray(fmap(jnp.asarray(grids), jnp.asarray(history)))
        return F.reshape(len(history), side, side, Y.shape[1])

    def map_fn(self, n: int, parallel: Any = None) -> Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]:
        """``f(X, Y)``: the (leave-one-out when ``loo``) reconstruction of all N training points (its rows split
        over ``parallel``'s devices when given)."""
        block = self.block_size if self.block_size is not None else auto_block_size(n)
        self_index = jnp.arange(n) if self.loo else None
        return lambda X, Y: nadaraya_watson(X, X, Y, self.bandwidth, self_index=self_index, block_size=block,
                                            parallel=parallel)

    def model(self, Y: jnp.ndarray, predictive: bool = False, parallel: Any = None) -> None:
        """x_i ~ Normal(0, 1/sqrt(reg)); y_i ~ Normal(f(x_i; X), s), f the (leave-one-out) Nadaraya-Watson map.

        ``predictive=True`` leaves y unobserved (the posterior predictive); Y still defines the map.
        ``parallel`` (a :class:`probzoo.infer.devices.DataParallel`) splits the rows of the kernel sum over
        its devices.
        """
        Y = jnp.asarray(Y)
        n, d = Y.shape
        s = self._noise(Y)
        with numpyro.plate("data", n):
            x = numpyro.sample("x", self._latent_prior())
            f = self.map_fn(n, parallel)(x, Y)
            numpyro.sample("y", dist.Normal(f, s).to_event(1), obs=None if predictive else Y)

    def rows_model(self, Y: jnp.ndarray, parallel: Any = None) -> None:
        """The same joint density as :meth:`model`, its likelihood in a plate of its own, ``"rows"``:

            x_i ~ Normal(0, 1/sqrt(reg)) for every i;   y_r ~ Normal(f(x_r; X), s) for the rows r of "rows"

        Whole, it is the model; the stochastic MAP (``fit(..., batch_size=B)``) subsamples "rows", so each
        step scores B rows (scaled by N / B) while every kernel sum still runs over all N latents.
        """
        Y = jnp.asarray(Y)
        n, d = Y.shape
        s = self._noise(Y)
        with numpyro.plate("data", n):
            x = numpyro.sample("x", self._latent_prior())
        block = self.block_size if self.block_size is not None else auto_block_size(n)
        with numpyro.plate("rows", n) as rows:
            f = nadaraya_watson(x[rows], x, Y, self.bandwidth, self_index=rows if self.loo else None,
                                block_size=block, parallel=parallel)
            numpyro.sample("y", dist.Normal(f, s).to_event(1), obs=Y[rows])

    def _noise(self, Y: jnp.ndarray) -> Any:
        if self.noise is not None:
            return self.noise
        a, b = self.noise_prior(Y)
        return numpyro.sample("s", dist.TransformedDistribution(dist.InverseGamma(a, b), PowerTransform(0.5)))

    def noise_prior(self, Y: jnp.ndarray) -> tuple[float, jnp.ndarray]:
        """(a, b) of the noise prior s^2 ~ InverseGamma(a, b): a = 1, b = 1e-3 x the mean variance of Y's columns."""
        return 1.0, 1e-3 * jnp.mean(jnp.var(jnp.asarray(Y), axis=0))

    def noise_conditional(self, Y: jnp.ndarray) -> Callable[..., dict[str, jnp.ndarray]]:
        """The Gibbs update of s for ``numpyro.infer.HMCGibbs``: an exact draw from the conjugate conditional
        s^2 | X, Y ~ InverseGamma(a + ND/2, b + E/2), E = sum_i ||y_i - f(x_i)||^2."""
        Y = jnp.asarray(Y)
        n, d = Y.shape
        a, b = self.noise_prior(Y)
        fmap = self.map_fn(n)

        def gibbs_fn(rng_key: jax.Array, gibbs_sites: dict, hmc_sites: dict) -> dict[str, jnp.ndarray]:
            E = jnp.sum(jnp.square(Y - fmap(hmc_sites["x"], Y)))
            return {"s": jnp.sqrt(dist.InverseGamma(a + 0.5 * n * d, b + 0.5 * E).sample(rng_key))}

        return gibbs_fn

    def _latent_prior(self) -> dist.Distribution:
        return dist.Normal(0.0, 1.0 / math.sqrt(self.reg)).expand([self.latent_dim]).to_event(1)

    @property
    def guide(self) -> AutoDelta:
        """A fresh AutoDelta over the latents (and s): the MAP guide."""
        return AutoDelta(self.model)

    def check_fit(self, Y: Any, *, method: str, **options: Any) -> None:
        super().check_fit(Y, method=method, **options)
        self._check_data(Y)

    # --- data and initialisation ----------------------------------------------------------------
    def _check_data(self, Y: Any, name: str = "Y") -> np.ndarray:
        Y = as_array(Y, name, ndim=2, min_rows=3)
        if Y.shape[1] <= self.latent_dim:
            raise ValueError(f"latent_dim: must be smaller than the data dimension D = {Y.shape[1]}, "
                             f"got {self.latent_dim}")
        if not isinstance(self.init, str) and self.init.shape[0] != Y.shape[0]:
            raise ValueError(f"init: has {self.init.shape[0]} rows but {name} has {Y.shape[0]}")
        return Y

    def initial_latents(self, Y: np.ndarray, seed: int = 0, devices: Any = None) -> np.ndarray:
        """The starting latents (N, M) for ``Y``: see ``init`` in the class docstring (the kernel sums of the
        PCA scaling's cross-validation split over ``devices``)."""
        Y = self._check_data(Y)
        if not isinstance(self.init, str):
            return self.init.astype(np.float32)
        root_h = math.sqrt(self.bandwidth)
        if self.init == "random":
            rng = np.random.default_rng(check_seed(seed))
            return (0.1 * root_h * rng.standard_normal((len(Y), self.latent_dim))).astype(np.float32)
        base = _pca(Y, self.latent_dim)
        if not self.loo:
            return (root_h * base).astype(np.float32)
        fmap = jax.jit(self.map_fn(len(Y), DataParallel.of(devices)))
        Yj = jnp.asarray(Y)
        errors = [float(jnp.mean(jnp.sum((Yj - fmap(jnp.asarray(c * root_h * base, jnp.float32), Yj)) ** 2, -1)))
                  for c in _INIT_SCALES]
        return (_INIT_SCALES[int(np.argmin(errors))] * root_h * base).astype(np.float32)

    # --- fitting ----------------------------------------------------------------------------------
    @runs_engines
    def fit(
        self,
        Y: Any,
        method: str = "map",
        seed: int = 0,
        progress: bool = False,
        num_steps: int = 1000,
        batch_size: int | None = None,
        learning_rate: float = 0.05,
        optim: Any = None,
        chunk_size: int | None = None,
        history_every: int | None = None,
        callback: Callable | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike | None = None,
        num_warmup: int = 500,
        num_samples: int = 500,
        num_chains: int = 2,
        map_steps: int = 1000,
        chain_method: str | None = None,
        max_tree_depth: int = 8,
        dense_mass: bool = False,
        devices: Any = None,
    ) -> UKRFit:
        """Fit the latents to ``Y`` (N, D).

        ``method="map"``: AutoDelta over the latents (and s), ``num_steps`` of Adam at ``learning_rate``
        (or any optax/numpyro ``optim``) through ``probzoo.infer.run_svi``, which also takes
        ``chunk_size``, ``callback``, ``checkpoint``, ``checkpoint_every`` and ``resume``.
        ``history_every`` keeps the latents every so many steps in ``fit.arrays["history"]``.
        ``batch_size`` (map only) makes the MAP stochastic: each step's likelihood scores a random subset of
        that many rows, scaled by N / batch_size (without replacement within a pass over the data), while
        every kernel sum still runs over all N latents (:meth:`rows_model`): about N / batch_size times
        cheaper a step, for data too large for full steps; its learning rate decays along a cosine to 1 %.
        ``devices`` (None, N or "all") splits the rows of the kernel sum over that many devices
        (:mod:`probzoo.infer.devices`).
        ``method="nuts"``: ``num_chains`` chains of NUTS over the latents (``max_tree_depth``,
        ``dense_mass``), a learned s drawn within Gibbs from its conjugate conditional
        (``noise_conditional``), each chain started from the MAP latents (``map_steps`` Adam steps)
        turned by a random rotation/reflection, which leaves the posterior density unchanged. Raw latents
        are identified only up to rotation/reflection, so convergence is diagnosed on invariant
        quantities (``fit.diagnostics()``). ``chain_method=None``: parallel with a device per chain, else
        sequential (a Gibbs kernel cannot vectorise chains) or, with a fixed noise, vectorised; ``devices``
        splits the chains over the devices instead.
        Any other engine of ``pz.engines()`` (``meanfield``, ``laplace``, ``lowrank``, ``fullrank``, ``flow``,
        ``hmc``, ``sa``, ``barker``) runs on the same model from the same starting latents, with that
        engine's budget and options; the fit's point is the draw of highest density (MCMC) or the mean of
        the guide's draws (variational).
        """
        check_choice(method, "method", METHODS)
        seed = check_seed(seed)
        Y = self._check_data(Y)
        X0 = self.initial_latents(Y, seed, devices=devices if method == "map" else None)
        if method == "map":
            return self._fit_map(Y, X0, seed, progress, num_steps, learning_rate, optim, chunk_size,
                                 history_every, callback, checkpoint, checkpoint_every, resume, batch_size, devices)
        if batch_size is not None:
            raise ValueError("batch_size: the stochastic variant is of method 'map'; NUTS scores every row")
        map_steps = check_int(map_steps, "map_steps", minimum=0)
        check_int(max_tree_depth, "max_tree_depth", minimum=1, maximum=15)
        return self._fit_nuts(Y, X0, seed, progress, num_warmup, num_samples, num_chains, map_steps,
                              learning_rate, chain_method, max_tree_depth, bool(dense_mass), devices)

    def _init_values(self, Y: np.ndarray, X0: np.ndarray, parallel: Any = None) -> dict[str, jnp.ndarray]:
        values = {"x": jnp.asarray(X0, jnp.float32)}
        if self.noise is None:
            Yj = jnp.asarray(Y)
            resid = jnp.mean(jnp.square(Yj - jax.jit(self.map_fn(len(Y), parallel))(values["x"], Yj)))
            values["s"] = jnp.sqrt(jnp.maximum(resid, 1e-6 * jnp.var(Yj)))
        return values

    def _run_map(self, Y, X0, seed, progress, num_steps, learning_rate, optim, chunk_size=None,
                 history_every=None, callback=None, checkpoint=None, checkpoint_every=None, resume=None,
                 batch_size=None, devices=None):
        """MAP by SVI with an AutoDelta guide; returns (SVIRun, guide, latents every history_every steps)."""
        num_steps = check_int(num_steps, "num_steps", minimum=1)
        parallel = DataParallel.of(devices)
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=len(Y))
        learning_rate = check_positive(learning_rate, "learning_rate")
        if optim is None:
            # a stochastic MAP converges only as its steps shrink: its rate decays along a cosine to 1 %
            rate = learning_rate if batch_size is None else optax.cosine_decay_schedule(learning_rate, num_steps,
                                                                                        alpha=0.01)
            optim = optax_to_numpyro(optax.adam(rate))
        elif isinstance(optim, optax.GradientTransformation):
            optim = optax_to_numpyro(optim)
        elif not isinstance(optim, _NumPyroOptim):
            raise TypeError(f"optim: expected an optax GradientTransformation or a numpyro optimiser, "
                            f"got {type(optim).__name__}")
        # the kernel sums split over the devices by the model itself (the loop only replicates the state);
        # with batch_size the loop subsamples the likelihood's own plate "rows"
        model = partial(self.model if batch_size is None else self.rows_model, parallel=parallel)
        guide = AutoDelta(model, init_loc_fn=init_to_value(values=self._init_values(Y, X0, parallel)))
        history: list[np.ndarray] = []
        if history_every is not None:
            history_every = check_int(history_every, "history_every", minimum=1)
            chunk_size = history_every
            history.append(np.asarray(X0))

        def on_chunk(step: int, losses: np.ndarray, state: Any) -> Any:
            if history_every is not None:
                history.append(np.asarray(optim.get_params(state.optim_state)["x_auto_loc"]))
            if callback is not None:
                return callback(step, losses, state)
            return None

        run = run_svi(model, guide, Y, optim=optim, num_steps=num_steps, seed=seed, progress=progress,
                      chunk_size=chunk_size, callback=on_chunk, checkpoint=checkpoint,
                      checkpoint_every=checkpoint_every, resume=resume, desc="UKR map", batch_size=batch_size,
                      plate="rows", devices=parallel, split_rows=False,
                      settings={"model": "UKR", "config": self.get_config(), "learning_rate": learning_rate})
        return run, guide, history

    def _fit_map(self, Y, X0, seed, progress, num_steps, learning_rate, optim, chunk_size, history_every,
                 callback, checkpoint, checkpoint_every, resume, batch_size=None, devices=None) -> UKRFit:
        run, guide, history = self._run_map(Y, X0, seed, progress, num_steps, learning_rate, optim, chunk_size,
                                            history_every, callback, checkpoint, checkpoint_every, resume,
                                            batch_size, devices)
        params = {k: np.asarray(v) for k, v in run.params.items()}
        idata, _ = svi_inference_data(self.model, guide, params, (Y,), observed={"y": Y},
                                      predictive_args=(Y, True), num_samples=1, seed=seed,
                                      dims={"x": ["point", "latent_dim"], "y": ["point", "dim"]})
        arrays = {"Y": Y, "init": X0}
        if history:
            arrays["history"] = np.stack(history)
        info = {"mcmc": False, "num_steps": run.num_steps, "n": len(Y),
                "block_size": self.block_size or auto_block_size(len(Y)),
                "final_loss": float(run.losses[-1]), "setup_time": run.setup_time, "loop_time": run.loop_time}
        fit = UKRFit(model=self, method="map", params=params, idata=idata, losses=run.losses, arrays=arrays,
                     wall_time=run.wall_time, compile_time=run.compile_time, seed=seed, info=info)
        fit.info["reconstruction_error"] = fit.reconstruction_error()
        return fit

    def _fit_nuts(self, Y, X0, seed, progress, num_warmup, num_samples, num_chains, map_steps, learning_rate,
                  chain_method, max_tree_depth, dense_mass, devices=None) -> UKRFit:
        num_chains = check_int(num_chains, "num_chains", minimum=1)
        start = {"x": np.asarray(X0)}
        if map_steps > 0:
            pre, _, _ = self._run_map(Y, X0, seed, False, map_steps, learning_rate, None)
            start = {k.removesuffix("_auto_loc"): np.asarray(v) for k, v in pre.params.items()}
        rng = np.random.default_rng(seed)
        turns = [_random_orthogonal(rng, self.latent_dim) for _ in range(num_chains)]
        init = {"x": jnp.asarray(np.stack([start["x"] @ Q.astype(np.float32) for Q in turns]))}
        nuts = NUTS(self.model, max_tree_depth=max_tree_depth, dense_mass=dense_mass)
        if self.noise is None:
            # the Gibbs kernel starts its NUTS block in one compiled program too (run_mcmc does for NUTS alone)
            kernel = HMCGibbs(compiled_init(nuts), gibbs_fn=self.noise_conditional(Y), gibbs_sites=["s"])
            s0 = start["s"] if "s" in start else self._init_values(Y, start["x"])["s"]
            init["s"] = jnp.full((num_chains,), s0, jnp.float32)  # Gibbs sites take constrained values
            fields = ("hmc_state.diverging", "hmc_state.num_steps")
            if chain_method is None and devices is None:  # a Gibbs kernel runs one chain per call: no "vectorized"
                chain_method = "parallel" if jax.local_device_count() >= num_chains else "sequential"
        else:
            kernel, fields = nuts, ("diverging", "num_steps")
        if num_chains == 1:
            init = {k: v[0] for k, v in init.items()}
        run = run_mcmc(kernel, Y, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                       seed=seed, progress=progress, chain_method=chain_method, init_params=init,
                       extra_fields=fields, devices=devices)
        draws = {k: np.asarray(v) for k, v in run.mcmc.get_samples(group_by_chain=True).items()}
        extra = run.mcmc.get_extra_fields(group_by_chain=True)
        info = {"mcmc": True, "n": len(Y), "sampler": type(kernel).__name__, "num_chains": num_chains,
                "num_warmup": num_warmup, "num_samples": num_samples, "chain_method": run.chain_method,
                "max_tree_depth": max_tree_depth, "map_steps": map_steps,
                "divergences": int(np.sum(np.asarray(extra[fields[0]]))),
                "mean_leapfrog_steps": float(np.mean(np.asarray(extra[fields[1]])))}
        stats = {"diverging": np.asarray(extra[fields[0]]), "n_steps": np.asarray(extra[fields[1]])}
        fit = self._fit_from_draws(Y, X0, "nuts", draws, info=info, seed=seed, wall_time=run.wall_time,
                                   compile_time=float("nan"), sample_stats=stats)
        record_gradients(fit.idata, run.warmup_steps)
        return fit

    def _fit_from_draws(self, Y: np.ndarray, X0: np.ndarray, method: str, draws: dict[str, np.ndarray], *,
                        info: dict[str, Any], seed: int, wall_time: float, compile_time: float,
                        losses: np.ndarray | None = None, params: dict[str, Any] | None = None,
                        sample_stats: dict[str, np.ndarray] | None = None) -> UKRFit:
        """A UKRFit from draws of the latents (and s) shaped (chain, draw, ...): the invariant quantities per
        draw, the InferenceData, and the point the fit's maps use. MCMC: the draw of highest density (raw
        latents are identified only up to rotation/reflection, so their mean over chains is no chart); a
        variational fit (one unimodal approximation): the mean of its draws."""
        per_draw = _per_draw(self, Y, draws, jax.random.PRNGKey(seed + 1))
        posterior = {**draws, **_invariants(per_draw, draws, seed)}
        mcmc = bool(info.get("mcmc"))
        note = "raw latents are identified only up to rotation/reflection; diagnose invariants"
        idata = arviz_io.from_samples(
            posterior, log_likelihood={"y": per_draw["log_lik"]}, posterior_predictive={"y": per_draw["y_rep"]},
            observed_data={"y": Y}, sample_stats=sample_stats or None, chains=True,
            dims={"x": ["point", "latent_dim"], "y": ["point", "dim"], "pair_dist": ["pair"]},
            attrs={"inference": "mcmc" if mcmc else "svi", "method": method, "sampler": info.get("sampler", method),
                   "note": note if mcmc else arviz_io.SVI_NOTE})
        if mcmc:
            c, d = np.unravel_index(int(np.argmax(per_draw["log_joint"])), per_draw["log_joint"].shape)
            point = {k: v[c, d] for k, v in draws.items()}
            info["point"] = ("the posterior draw with the highest density (raw latents are identified only up "
                             "to rotation/reflection, so their posterior mean is not a chart)")
        else:
            point = {k: v.mean(axis=(0, 1)) for k, v in draws.items()}
            info["point"] = "the mean of the guide's draws"
        fit = UKRFit(model=self, method=method, params={**(params or {}), **point}, idata=idata,
                     samples={k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()},
                     losses=np.zeros((0,), np.float32) if losses is None else np.asarray(losses),
                     arrays={"Y": Y, "init": np.asarray(X0)}, wall_time=wall_time, compile_time=compile_time,
                     seed=seed, info={"n": len(Y), **info})
        fit.info["reconstruction_error"] = fit.reconstruction_error()
        return fit

    # every other engine of the registry, on the same model
    def bind(self, Y: Any, seed: int = 0) -> BoundModel:
        Y = self._check_data(Y)

        @functools.cache  # every chain turns the same starting latents: computed once per seed
        def init(s: int) -> dict[str, Any]:
            return self._init_values(Y, self.initial_latents(Y, s))

        def chain_init(s: int, chain: int) -> dict[str, Any]:
            # as the native NUTS: chain c starts at the starting latents turned by its own random rotation or
            # reflection, which leaves the posterior density unchanged (chain 0 at the latents themselves)
            values = init(s)
            if chain > 0:
                turn = _random_orthogonal(np.random.default_rng([s, chain]), self.latent_dim).astype(np.float32)
                values = {**values, "x": jnp.asarray(values["x"]) @ turn}
            return values

        return BoundModel(name="UKR", model=self.model, args=(Y,), plate="data", init=init, chain_init=chain_init,
                          build=partial(self._engine_fit, Y), quantities=partial(self._invariant_quantities, Y))

    def _invariant_quantities(self, Y: np.ndarray, draws: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Per draw (chain, draw): the quantities that no rotation or reflection of the latents changes (those a
        fit's r_hat and ESS are read on, and that simulation-based calibration ranks): the reconstruction error,
        the rms latent norm, the distances of 10 fixed latent pairs, and s when it is learned."""
        draws = {k: np.asarray(v) for k, v in draws.items() if k in ("x", "s")}
        return _invariants(_per_draw(self, Y, draws, jax.random.PRNGKey(0)), draws, seed=0)

    def engine_defaults(self, name: str) -> dict[str, Any]:
        # 200 guide draws (each costs an N x N kernel sum to score); MCMC chains as the native NUTS's
        defaults = {"num_draws": 200, "num_chains": 2, "num_warmup": 500, "num_samples": 500}
        if name == "flow":
            # the flow's joint map over s and every x_i can shrink s until a residual / s overflows: on the
            # saddle (N = 100) the engine's 3e-3 reaches an infinite loss within 100 steps, 1e-3 trains
            defaults["learning_rate"] = 1e-3
        return defaults

    def _engine_fit(self, Y: np.ndarray, *, model: Any, method: str, params: dict[str, Any], losses: np.ndarray,
                    samples: dict[str, Any], wall_time: float, compile_time: float, seed: int,
                    info: dict[str, Any], sample_stats: dict[str, np.ndarray]) -> UKRFit:
        chains = int(info.get("num_chains", 1))
        draws = {k: np.asarray(v).reshape((chains, -1) + np.shape(v)[1:]) for k, v in samples.items()
                 if k in ("x", "s")}
        params = {k: v for k, v in params.items() if k not in draws} if not info.get("mcmc") else {}
        return self._fit_from_draws(Y, model.init_values(seed)["x"], method, draws, info=dict(info), seed=seed,
                                    wall_time=wall_time, compile_time=compile_time, losses=losses,
                                    params={"guide": params} if params else None, sample_stats=sample_stats)


def _random_orthogonal(rng: np.random.Generator, m: int) -> np.ndarray:
    """A uniformly (Haar) distributed orthogonal m x m matrix: a rotation or a reflection with equal odds.

    The Q of a Gaussian matrix's QR alone is not uniform (LAPACK's Householder convention makes every 2 x 2
    Q a reflection); multiplying its columns by the signs of R's diagonal makes it so (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((m, m)))
    return q * np.sign(np.diag(r))


def _invariants(per_draw: dict[str, np.ndarray], draws: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """The rotation/reflection-invariant quantities of draws (chain, draw, ...), from their ``_per_draw`` values."""
    out = {"recon_error": per_draw["recon_error"], "latent_rms": per_draw["latent_rms"],
           "pair_dist": _pair_distances(np.asarray(draws["x"]), seed)}
    if "s" in draws:
        out["s"] = np.asarray(draws["s"])
    return out


def _pair_distances(x: np.ndarray, seed: int, count: int = 10) -> np.ndarray:
    """||x_i - x_j|| for ``count`` fixed random pairs (i, j), per draw: (chains, draws, count)."""
    n = x.shape[2]
    perm = np.random.default_rng(seed).permutation(n)
    pairs = perm[: 2 * min(count, n // 2)].reshape(-1, 2)
    return np.linalg.norm(x[:, :, pairs[:, 0]] - x[:, :, pairs[:, 1]], axis=-1)


def _per_draw(model: UKR, Y: np.ndarray, draws: dict[str, np.ndarray], key: jax.Array) -> dict[str, np.ndarray]:
    """Per posterior draw (chains, draws): the reconstruction error E/N, the rms latent norm, the log joint
    density, the pointwise log-likelihood and a posterior-predictive draw of y. One draw at a time
    (O(N^2) memory, not O(draws N^2))."""
    x = jnp.asarray(draws["x"])
    chains, n_draws, n, m = x.shape
    s = jnp.asarray(draws["s"]) if "s" in draws else jnp.full((chains, n_draws), model.noise, jnp.float32)
    Yj = jnp.asarray(Y)
    fmap = model.map_fn(n)
    a, b = model.noise_prior(Yj)
    s_prior = dist.TransformedDistribution(dist.InverseGamma(a, b), PowerTransform(0.5))

    def one(args):
        X, s_, k = args
        f = fmap(X, Yj)
        log_lik = jnp.sum(dist.Normal(f, s_).log_prob(Yj), -1)
        log_joint = jnp.sum(log_lik) + jnp.sum(model._latent_prior().log_prob(X))
        if "s" in draws:
            log_joint = log_joint + s_prior.log_prob(s_)
        return {"recon_error": jnp.mean(jnp.sum(jnp.square(Yj - f), -1)),
                "latent_rms": jnp.sqrt(jnp.mean(jnp.sum(X**2, -1))), "log_joint": log_joint,
                "log_lik": log_lik, "y_rep": f + s_ * jax.random.normal(k, f.shape)}

    flat = (x.reshape(chains * n_draws, n, m), s.reshape(-1), jax.random.split(key, chains * n_draws))
    out = jax.jit(lambda args: jax.lax.map(one, args, batch_size=8))(flat)
    return {k: np.asarray(v).reshape((chains, n_draws) + v.shape[1:]) for k, v in out.items()}
