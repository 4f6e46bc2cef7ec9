"""The trained RBM (``RBMFit``): free energies, likelihoods (exact or AIS), pseudo-likelihood, reconstructions,
hidden features and samples by the block-Gibbs kernel or NumPyro's generic DiscreteGibbs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from probzoo.infer import arviz_io
from probzoo.infer.engines import vmapped_chains
from probzoo.infer.mcmc import run_mcmc
from probzoo.infer.posterior import mcmc_inference_data
from probzoo.infer.result import Fit
from probzoo.models.rbm.draws import bernoulli
from probzoo.models.rbm.energy import energy, free_energy, hidden_probs, visible_probs
from probzoo.models.rbm.gibbs import RBMGibbs
from probzoo.models.rbm.partition import (
    LogPartition,
    ais_log_partition,
    base_rate_log_likelihood,
    log_partition_exact,
    raise_log_likelihood,
)
from probzoo.models.rbm.pseudo_likelihood import pl_all_flips, pseudo_likelihood_terms
from probzoo.validation import (
    as_array,
    check_binary,
    check_choice,
    check_int,
    check_seed,
    check_unit_interval,
)

SAMPLERS = ("gibbs", "discrete-gibbs")  # fit.sample's methods: the block sampler and NumPyro's generic one


@dataclass(repr=False)  # Fit's short repr, not every array
class RBMFit(Fit):
    """A trained RBM. ``params`` = {"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,)};
    ``arrays["base_rate"]`` holds the training data's pixel means (the AIS base model) and
    ``arrays["epoch_pseudo_likelihood"]`` the article-scaled pseudo-likelihood of every epoch."""

    _log_z_cache: dict[Any, LogPartition] = field(default_factory=dict, repr=False, compare=False)

    @property
    def diagnostic_sites(self) -> list[str] | None:
        """Chains of samples: the free energy F(v), the sampler's potential (the raw v are binary pixels)."""
        return ["free_energy"] if self.is_mcmc else None

    # -- basic quantities
    @property
    def n_visible(self) -> int:
        return int(np.shape(self.params["W"])[0])

    @property
    def n_hidden(self) -> int:
        return int(np.shape(self.params["W"])[1])

    @property
    def _jparams(self) -> dict[str, jax.Array]:
        return {k: jnp.asarray(v, jnp.float32) for k, v in self.params.items()}

    def _visible(self, V: Any, name: str = "V", binary: bool = False) -> np.ndarray:
        V = as_array(V, name, ndim=2, width=self.n_visible)
        check_unit_interval(V, name)
        if binary:
            check_binary(V, name)
        return V

    def free_energy(self, V: Any) -> np.ndarray:
        """F(v) = -b.v - sum_j softplus(c_j + (v W)_j) for each row of ``V`` (values in [0, 1])."""
        V = self._visible(V)
        return np.asarray(jax.jit(free_energy)(self._jparams, jnp.asarray(V)))

    def energy(self, V: Any, H: Any) -> np.ndarray:
        """E(v, h) = -v W h - b.v - c.h for each row pair."""
        V = self._visible(V)
        H = as_array(H, "H", ndim=2, width=self.n_hidden)
        check_unit_interval(H, "H")
        if H.shape[0] != V.shape[0]:
            raise ValueError(f"H: expected {V.shape[0]} rows to match V, got {H.shape[0]}")
        return np.asarray(energy(self._jparams, jnp.asarray(V), jnp.asarray(H)))

    def hidden_probs(self, V: Any) -> np.ndarray:
        """p(h_j = 1 | v) per row: the RBM's features of ``V``."""
        return np.asarray(hidden_probs(self._jparams, jnp.asarray(self._visible(V))))

    transform = hidden_probs

    def visible_probs(self, H: Any) -> np.ndarray:
        """p(v_i = 1 | h) per row of hidden states ``H``."""
        H = as_array(H, "H", ndim=2, width=self.n_hidden)
        check_unit_interval(H, "H")
        return np.asarray(visible_probs(self._jparams, jnp.asarray(H)))

    def reconstruct(self, V: Any, k: int = 1, seed: int = 0) -> np.ndarray:
        """The article's reconstruction: k block-Gibbs sweeps from ``V``, returning p(v | h) of the last."""
        V = self._visible(V)
        k = check_int(k, "k", minimum=1)
        kernel = RBMGibbs(self._jparams)

        @jax.jit
        def run(v, key):
            state = kernel.state_at(key, v)
            state = jax.lax.fori_loop(0, k - 1, lambda _, s: kernel.sample(s), state)
            key_h = jax.random.split(state.rng_key)[1]
            h = bernoulli(key_h, jax.nn.sigmoid(state.hidden_input))
            return visible_probs(kernel.params, h)

        return np.asarray(run(jnp.asarray(V), jax.random.PRNGKey(check_seed(seed))))

    # -- scores
    def pseudo_likelihood(self, V: Any, scale: str = "n_vis", seed: int = 0, batch_size: int | None = None,
                          flips: str = "one") -> float:
        """Mean stochastic pseudo-log-likelihood: one random unit flipped per row, log sigmoid(F(v~) - F(v)).

        ``scale="n_vis"`` multiplies by the number of visible units (scikit-learn's ``score_samples``,
        the usual estimate of sum_i log p(v_i | v_-i)); ``scale="article"`` multiplies by the minibatch
        size instead, as article 003's printed cost does (``batch_size``, default the fit's, else 64).
        ``flips="all"`` averages over flipping every unit instead of one random unit: the estimator's
        expectation, i.e. the exact pseudo-likelihood (Besag), without the random-bit noise.
        """
        check_choice(scale, "scale", ("n_vis", "article"))
        check_choice(flips, "flips", ("one", "all"))
        V = self._visible(V)
        if flips == "all":
            terms = pl_all_flips(self._jparams, jnp.asarray(V))
        else:
            terms = pseudo_likelihood_terms(self._jparams, jnp.asarray(V), jax.random.PRNGKey(check_seed(seed)))
        mean = float(np.mean(np.asarray(terms, np.float64)))
        if scale == "n_vis":
            return self.n_visible * mean
        factor = batch_size if batch_size is not None else self.info.get("batch_size", 64)
        return check_int(factor, "batch_size", minimum=1) * mean

    def log_partition(self, method: str = "auto", num_runs: int = 100, num_betas: int = 14_500,
                      seed: int = 0) -> LogPartition:
        """``(log Z, standard error)``. ``"exact"`` enumerates the smaller layer (<= 24 units; se = 0);
        ``"ais"`` anneals from the base-rate model with ``num_runs`` runs over ``num_betas``
        temperatures; ``"auto"`` is exact when the smaller layer has at most 20 units, else AIS."""
        method = self._lz_method(method)
        key = (method,) if method == "exact" else (method, num_runs, num_betas, seed)
        if key not in self._log_z_cache:
            if method == "exact":
                self._log_z_cache[key] = LogPartition(log_partition_exact(self.params), 0.0)
            else:
                self._log_z_cache[key] = ais_log_partition(self.params, self.arrays.get("base_rate"),
                                                           num_runs=num_runs, num_betas=num_betas, seed=seed)
        return self._log_z_cache[key]

    def _lz_method(self, method: str) -> str:
        check_choice(method, "method", ("auto", "exact", "ais"))
        if method == "auto":
            return "exact" if min(self.n_visible, self.n_hidden) <= 20 else "ais"
        return method

    def log_likelihood(self, V: Any, method: str = "auto", **options: Any) -> np.ndarray:
        """log p(v) in nats, per row of the binary ``V``.

        ``"exact"``, ``"ais"``, ``"auto"``: -F(v) - log Z, log Z as in :meth:`log_partition` (``num_runs``,
        ``num_betas``, ``seed``). AIS's log Z is biased low (E log Z-hat <= log Z), so these over-estimate
        log p(v) on average. ``"raise"``: reverse AIS (:func:`probzoo.models.rbm.partition.raise_log_likelihood`,
        ``num_betas``, ``seed``), one run per row from v down to the base-rate model, which under-estimates
        it on average: AIS and RAISE bracket the true log-likelihood."""
        V = self._visible(V, binary=True)
        if method == "raise":
            if unknown := sorted(set(options) - {"num_betas", "seed"}):
                raise ValueError(f"{unknown[0]}: not an option of method='raise' (num_betas, seed); it makes one "
                                 "run per row")
            return raise_log_likelihood(self.params, V, self.arrays.get("base_rate"), **options)
        log_z = self.log_partition(method, **options).estimate
        return -self.free_energy(V).astype(np.float64) - log_z

    def base_rate_log_likelihood(self, V: Any) -> np.ndarray:
        """log p(v) per row under the independent-pixel model fitted to the training data."""
        V = self._visible(V, binary=True)
        if "base_rate" not in self.arrays:
            raise ValueError("V: this fit has no base rates (it was not trained on data)")
        return base_rate_log_likelihood(V, self.arrays["base_rate"])

    def evaluate(self, V: Any, *, method: str = "auto", num_runs: int = 100, num_betas: int = 14_500,
                 seed: int = 0, **extras: Any) -> dict[str, float]:
        """Held-out scores of binary ``V``: ``log_likelihood`` (mean nats per image, log Z exact or AIS) with
        ``log_likelihood_se`` (log Z's; 0 when exact); when log Z comes from AIS, ``log_likelihood_raise``
        and ``log_likelihood_raise_se`` (reverse AIS: AIS over-estimates, RAISE under-estimates, on average),
        ``lpd`` (the same: an RBM's predictive density is p(v)), ``pseudo_likelihood`` (n_vis scale),
        ``base_rate_log_likelihood`` and ``log_partition`` with its ``log_partition_se``. Other extras
        of a zoo data set (labels, image_shape, heldout) are ignored: the RBM is unsupervised."""
        V = self._visible(V, binary=True)
        lz = self.log_partition(method, num_runs=num_runs, num_betas=num_betas, seed=seed)
        ll = float(np.mean(self.log_likelihood(V, method, num_runs=num_runs, num_betas=num_betas, seed=seed)))
        out = {
            "log_likelihood": ll,
            "log_likelihood_se": lz.se,
            "lpd": ll,
            "pseudo_likelihood": self.pseudo_likelihood(V, seed=seed),
            "log_partition": lz.estimate,
            "log_partition_se": lz.se,
        }
        if self._lz_method(method) == "ais":  # the other side of the sandwich
            lower = self.log_likelihood(V, "raise", num_betas=num_betas, seed=seed)
            # each row's run implies a log Z (-F(v) - its estimate): their spread is the estimate's noise
            implied = -self.free_energy(V).astype(np.float64) - lower
            out["log_likelihood_raise"] = float(np.mean(lower))
            out["log_likelihood_raise_se"] = float(np.std(implied, ddof=1) / np.sqrt(len(lower))) \
                if len(lower) > 1 else float("nan")
        if "base_rate" in self.arrays:
            out["base_rate_log_likelihood"] = float(np.mean(self.base_rate_log_likelihood(V)))
        return out

    # -- sampling
    def sample(self, num_chains: int = 4, num_samples: int = 1_000, seed: int = 0, num_warmup: int = 100,
               thinning: int = 1, init: Any = None, progress: bool = False,
               chain_method: str | None = None, method: str = "gibbs", devices: Any = None) -> RBMFit:
        """Draw from the RBM with ``numpyro.infer.MCMC``.

        ``method``: "gibbs", the block sampler :class:`probzoo.infer.RBMGibbs` (all hidden units given v,
        then all visible units given h: one sweep per step), or "discrete-gibbs", NumPyro's generic
        ``DiscreteGibbs`` on :func:`rbm_model` (one single-site Gibbs update of every v and h coordinate per
        step, in random order; its chains run mapped over the chains' keys in one program, from uniform
        random states). Returns a copy of this fit (``method`` the sampler's, ``info["mcmc"] = True``) whose
        ``idata`` holds the draws (r_hat / ESS of ``free_energy``) and whose ``samples`` are
        ``{"v": (chains, draws, n_visible), "free_energy": (chains, draws)}``. ``init`` (gibbs only): the
        chains' first visible states, (num_chains, n_visible); by default independent pixels sigmoid(b).
        ``devices`` (None, N or "all", gibbs only) splits the chains over that many devices
        (:mod:`probzoo.infer.devices`): the same draws per chain whatever their number.
        """
        method = check_choice(method, "method", SAMPLERS)
        num_chains = check_int(num_chains, "num_chains", minimum=1)
        if method == "discrete-gibbs":
            if init is not None:
                raise ValueError("init: only method 'gibbs' takes initial states")
            if devices is not None:
                raise ValueError("devices: method 'discrete-gibbs' maps its chains in one program on one device; "
                                 "method 'gibbs' splits its chains over devices")
            if chain_method not in (None, "vectorized"):
                raise ValueError(f"chain_method: method 'discrete-gibbs' maps its chains in one program "
                                 f"(vectorized); got {chain_method!r}")
            return self._sample_discrete_gibbs(num_chains, check_int(num_samples, "num_samples", minimum=1),
                                               check_int(num_warmup, "num_warmup", minimum=0),
                                               check_int(thinning, "thinning", minimum=1), check_seed(seed))
        init_params = None
        if init is not None:
            init = as_array(init, "init", ndim=(1, 2), width=self.n_visible)
            check_unit_interval(init, "init")
            init = init.reshape(-1, self.n_visible)
            if init.shape[0] != num_chains:
                raise ValueError(f"init: expected {num_chains} rows (one per chain), got {init.shape[0]}")
            init_params = {"v": jnp.asarray(init if num_chains > 1 else init[0])}
        # the weights are an input of the compiled sampler, not constants in it: every RBM of these shapes (a fit
        # with another seed, another data set) samples with the same program
        run = run_mcmc(RBMGibbs(self.params), self._jparams, num_warmup=num_warmup, num_samples=num_samples,
                       num_chains=num_chains, thinning=thinning, seed=seed, progress=progress,
                       chain_method=chain_method, init_params=init_params, devices=devices, jit_model_args=True)
        idata = mcmc_inference_data(run.mcmc, attrs={"sampler": "RBMGibbs"})
        draws = {k: np.asarray(v) for k, v in run.samples(group_by_chain=True).items()}
        info = {**self.info, "mcmc": True, "sampler": "RBMGibbs", "num_chains": num_chains,
                "num_samples": num_samples, "num_warmup": num_warmup, "thinning": thinning,
                "chain_method": run.chain_method, "trained_with": self.method}
        return replace(self, method="gibbs", idata=idata, samples=draws, wall_time=run.wall_time,
                       compile_time=float("nan"), seed=seed, info=info, _log_z_cache=self._log_z_cache)

    def _sample_discrete_gibbs(self, num_chains: int, num_samples: int, num_warmup: int, thinning: int,
                               seed: int) -> RBMFit:
        from numpyro.infer.gibbs import DiscreteGibbs

        from probzoo.models.rbm.model import rbm_model  # model.py imports this module

        t0 = time.perf_counter()
        budget = {"num_warmup": num_warmup, "num_samples": num_samples * thinning, "num_chains": num_chains}
        samples, _ = vmapped_chains(DiscreteGibbs(rbm_model), (self.params,), {}, budget, seed)
        v = np.asarray(samples["v"][:, ::thinning, 0, :], np.float32)  # (chains, draws, n_visible)
        fe = np.asarray(jax.jit(free_energy)(self.params, jnp.asarray(v)))
        draws = {"v": v, "free_energy": fe}
        idata = arviz_io.from_samples(draws, chains=True, attrs={"sampler": "DiscreteGibbs"})
        info = {**self.info, "mcmc": True, "sampler": "DiscreteGibbs", "num_chains": num_chains,
                "num_samples": num_samples, "num_warmup": num_warmup, "thinning": thinning,
                "chain_method": "vectorized", "trained_with": self.method}
        return replace(self, method="discrete-gibbs", idata=idata, samples=draws,
                       wall_time=time.perf_counter() - t0, compile_time=float("nan"), seed=seed, info=info,
                       _log_z_cache=self._log_z_cache)
