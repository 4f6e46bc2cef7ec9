"""Restricted Boltzmann machine (article 003): CD-k / PCD training through the block-Gibbs kernel,
pseudo-likelihood, exact and AIS partition functions.

Generative model (binary v in {0,1}^m, h in {0,1}^n):

    p(v, h) = exp(-E(v, h)) / Z,   E(v, h) = -v W h - b.v - c.h,
    p(v)    = exp(-F(v)) / Z,      F(v) = -b.v - sum_j softplus(c_j + (v W)_j)   (the potential).

Training follows the article: the log-likelihood gradient is E_data[-dE/dtheta] - E_model[-dE/dtheta];
the model expectation is replaced by k sweeps of :class:`probzoo.infer.RBMGibbs` started at the
minibatch (CD-k) or by persistent chains that the kernel advances between updates (PCD, Tieleman 2008).
Each epoch is one compiled ``lax.scan``, a chunk of the shared training loop. ``log Z`` comes from
enumerating the smaller layer (up to 24 units) or from annealed importance sampling from the base-rate
model (Salakhutdinov & Murray 2008), so the model is scored in nats per image.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from scipy.special import logsumexp

from probzoo.core import Family
from probzoo.infer import arviz_io
from probzoo.infer.checkpoint import data_digest
from probzoo.infer.engines import vmapped_chains
from probzoo.infer.gibbs import (
    RBMGibbs,
    RBMGibbsState,
    check_rbm_params,
    energy,
    free_energy,
    hidden_probs,
    visible_probs,
)
from probzoo.infer.loop import run_loop
from probzoo.infer.mcmc import run_mcmc
from probzoo.infer.posterior import mcmc_inference_data
from probzoo.infer.result import Fit
from probzoo.models.base import ZooModel, register_own_engines, runs_engines
from probzoo.validation import (
    as_array,
    check_binary,
    check_choice,
    check_int,
    check_positive,
    check_seed,
    check_unit_interval,
)
from probzoo.zoo import register_model

__all__ = [
    "RBM",
    "LogPartition",
    "RBMFit",
    "RBMTrainState",
    "ais_log_partition",
    "base_rate_log_likelihood",
    "log_partition_exact",
    "pseudo_likelihood_terms",
    "rbm_guide",
    "rbm_model",
]

MAX_ENUM_UNITS = 24
SAMPLERS = ("gibbs", "discrete-gibbs")  # fit.sample's methods: the block sampler and NumPyro's generic one
# Salakhutdinov & Murray (2008): 500 temperatures on [0, 0.5], 4,000 on [0.5, 0.9], 10,000 on [0.9, 1].
_AIS_SEGMENTS = ((0.0, 0.5, 500), (0.5, 0.9, 4_000), (0.9, 1.0, 10_000))


# --- the RBM as a plain NumPyro model ------------------------------------------------------------------
def rbm_model(params: dict[str, Any], V: Any = None) -> None:
    """p(v, h) ∝ exp(-E(v, h)): v and h as Bernoulli(1/2) sites in plates, times the factor exp(-E).

    (The Bernoulli(1/2) sites only add the constant -(m + n) log 2.) With ``V`` the visible units are
    observed, one row per ``data`` plate entry. NumPyro's generic discrete samplers run on this model.
    """
    W = params["W"]
    n = 1 if V is None else V.shape[0]
    with numpyro.plate("data", n, dim=-2):
        with numpyro.plate("visible", W.shape[0], dim=-1):
            v = numpyro.sample("v", dist.Bernoulli(0.5), obs=V)
        with numpyro.plate("hidden", W.shape[1], dim=-1):
            h = numpyro.sample("h", dist.Bernoulli(0.5))
        numpyro.factor("energy", -energy(params, v.astype(jnp.float32), h.astype(jnp.float32))[..., None])


def rbm_guide(params: dict[str, Any], V: Any = None) -> None:
    """q(h | v) = p(h | v) = prod_j Bernoulli(sigmoid(c_j + (v W)_j)): the exact posterior of the hidden
    units given observed ``V`` (so ``Predictive(rbm_guide)`` draws hidden features)."""
    if V is None:
        raise ValueError("V: the guide q(h | v) needs observed visible units")
    with numpyro.plate("data", V.shape[0], dim=-2), numpyro.plate("hidden", params["W"].shape[1], dim=-1):
        numpyro.sample("h", dist.Bernoulli(hidden_probs(params, jnp.asarray(V, jnp.float32))))


# --- scores ---------------------------------------------------------------------------------------------
@jax.jit
def pseudo_likelihood_terms(params: dict[str, Any], V: jax.Array, key: jax.Array) -> jax.Array:
    """log sigmoid(F(v~) - F(v)) per row, v~ = v with one random unit i flipped (v_i -> 1 - v_i).

    n_visible times this is the stochastic pseudo-log-likelihood of scikit-learn's ``score_samples``.
    The flipped row's hidden input is c + v W + (1 - 2 v_i) W_i, so no second matrix product is needed.
    """
    x = V @ params["W"] + params["c"]
    return _pl_from_input(params, V, x, key)


def _pl_from_input(params: dict[str, Any], V: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
    n, m = V.shape
    i = jax.random.randint(key, (n,), 0, m)
    vi = jnp.take_along_axis(V, i[:, None], axis=1)[:, 0]
    delta = 1.0 - 2.0 * vi  # v~_i - v_i
    f = free_energy(params, V, x)
    x_flip = x + delta[:, None] * params["W"][i]
    f_flip = -(V @ params["b"] + delta * params["b"][i]) - jnp.sum(jax.nn.softplus(x_flip), axis=-1)
    return jax.nn.log_sigmoid(f_flip - f)


@jax.jit
def _pl_all_flips(params: dict[str, Any], V: jax.Array) -> jax.Array:
    # mean over i of log sigmoid(F(v^(i)) - F(v)) per row, v^(i) = v with unit i flipped; rows in chunks
    W, b = params["W"], params["b"]

    def rows(v):
        x = v @ W + params["c"]
        f = free_energy(params, v, x)
        delta = 1.0 - 2.0 * v  # (r, m)
        x_flip = x[:, None, :] + delta[:, :, None] * W[None]  # (r, m, n)
        f_flip = -((v @ b)[:, None] + delta * b) - jnp.sum(jax.nn.softplus(x_flip), axis=-1)
        return jnp.mean(jax.nn.log_sigmoid(f_flip - f[:, None]), axis=1)

    chunk = 64
    n = V.shape[0]
    pad = (-n) % chunk
    Vp = jnp.concatenate([V, jnp.zeros((pad, V.shape[1]), V.dtype)]).reshape(-1, chunk, V.shape[1])
    return jax.lax.map(rows, Vp).reshape(-1)[:n]


def base_rate(V: np.ndarray) -> np.ndarray:
    """Per-pixel probability of the independent-pixel model, (sum v + 1) / (N + 2) (Laplace smoothing)."""
    V = np.asarray(V, np.float64)
    return ((V.sum(axis=0) + 1.0) / (V.shape[0] + 2.0)).astype(np.float32)


def base_rate_log_likelihood(V: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """log p(v) per row under independent Bernoulli(rate) pixels (the baseline an RBM must beat)."""
    V = np.asarray(V, np.float64)
    p = np.asarray(rate, np.float64)
    return V @ np.log(p) + (1.0 - V) @ np.log1p(-p)


class LogPartition(NamedTuple):
    """log Z and its standard error (0 for exact enumeration)."""

    estimate: float
    se: float


@jax.jit
def _enum_chunk_lse(W: jax.Array, b: jax.Array, c: jax.Array, low_bits: jax.Array, chunk: jax.Array):
    # states of the enumerated layer: the chunk number gives the high bits, low_bits the rest
    n = c.shape[0]
    n_low = low_bits.shape[1]
    high = (chunk >> jnp.arange(n - n_low)) & 1
    states = jnp.concatenate([low_bits, jnp.broadcast_to(high, (low_bits.shape[0], n - n_low))],
                             axis=1).astype(jnp.float32)
    # sum over the other layer in closed form: log sum_v exp(-E(v, h)) = c.h + sum_i softplus(b_i + (W h)_i)
    terms = states @ c + jnp.sum(jax.nn.softplus(states @ W.T + b), axis=-1)
    return jax.scipy.special.logsumexp(terms)


def log_partition_exact(params: dict[str, Any], chunk_bits: int = 12) -> float:
    """log Z by enumerating every state of the smaller layer (at most 24 units), in chunks of 2^chunk_bits
    states, summing the other layer out in closed form. Float32 chunks, float64 total."""
    p = check_rbm_params(params)
    W, b, c = p["W"], p["b"], p["c"]
    if W.shape[0] < W.shape[1]:  # enumerate the visible layer instead: the formula is symmetric
        W, b, c = W.T, c, b
    n = int(c.shape[0])
    if n > MAX_ENUM_UNITS:
        raise ValueError(
            f"params: exact log Z enumerates 2^{n} states; only layers of at most {MAX_ENUM_UNITS} units "
            "are supported (use method='ais')"
        )
    n_low = min(n, check_int(chunk_bits, "chunk_bits", minimum=1, maximum=20))
    low = ((np.arange(2**n_low)[:, None] >> np.arange(n_low)) & 1).astype(np.int32)
    low = jnp.asarray(low)
    parts = [float(_enum_chunk_lse(W, b, c, low, jnp.int32(k))) for k in range(2 ** (n - n_low))]
    return float(logsumexp(np.asarray(parts, np.float64)))


def ais_schedule(num_betas: int) -> np.ndarray:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, spaced as Salakhutdinov & Murray (2008):
    ~3% of them on [0, 0.5], ~28% on [0.5, 0.9] and ~69% on [0.9, 1] (14,500 in the paper)."""
    num_betas = check_int(num_betas, "num_betas", minimum=3)
    total = sum(s[2] for s in _AIS_SEGMENTS)
    counts = [max(1, round(num_betas * s[2] / total)) for s in _AIS_SEGMENTS]
    counts[-1] = max(1, num_betas - sum(counts[:-1]))
    pieces = [np.linspace(lo, hi, k, endpoint=False) for (lo, hi, _), k in zip(_AIS_SEGMENTS, counts, strict=True)]
    return np.concatenate(pieces + [np.ones(1)]).astype(np.float32)


@jax.jit
def _ais_log_weights(params: dict[str, Any], base_bias: jax.Array, betas: jax.Array, key: jax.Array,
                     v0: jax.Array) -> jax.Array:
    W, b, c = params["W"], params["b"], params["c"]

    def log_pstar(v, x, beta):
        # unnormalised log p_beta(v) of the RBM with W' = beta W, b' = (1 - beta) b_A + beta b, c' = beta c
        return (1.0 - beta) * (v @ base_bias) + beta * (v @ b) + jnp.sum(jax.nn.softplus(beta * x), axis=-1)

    def level(carry, inp):
        v, x, logw = carry
        beta_prev, beta, k = inp
        logw = logw + log_pstar(v, x, beta) - log_pstar(v, x, beta_prev)
        # one block-Gibbs sweep that leaves p_beta invariant
        k_h, k_v = jax.random.split(k)
        h = jax.random.bernoulli(k_h, jax.nn.sigmoid(beta * x)).astype(jnp.float32)
        v = jax.random.bernoulli(k_v, jax.nn.sigmoid((1.0 - beta) * base_bias + beta * (h @ W.T + b)))
        v = v.astype(jnp.float32)
        return (v, v @ W + c, logw), None

    keys = jax.random.split(key, betas.shape[0] - 1)
    init = (v0, v0 @ W + c, jnp.zeros(v0.shape[0], jnp.float32))
    (_, _, logw), _ = jax.lax.scan(level, init, (betas[:-1], betas[1:], keys))
    return logw


def ais_log_partition(params: dict[str, Any], base_rate_probs: np.ndarray | None = None, num_runs: int = 100,
                      num_betas: int = 14_500, seed: int = 0) -> LogPartition:
    """log Z by annealed importance sampling from the base-rate model (Salakhutdinov & Murray 2008).

    The path p_beta(v) ∝ exp((1 - beta) b_A.v) exp(beta b.v) prod_j (1 + exp(beta (c_j + (v W)_j)))
    runs from independent pixels with log-odds b_A (log Z_A = sum_i softplus(b_A_i) + n log 2) to the
    RBM. ``num_runs`` independent runs give weights w; the estimate is log Z_A + log mean w and its
    standard error std(w) / (sqrt(num_runs) mean w) (delta method).
    """
    p = check_rbm_params(params)
    num_runs = check_int(num_runs, "num_runs", minimum=2)
    seed = check_seed(seed)
    m, n = p["W"].shape
    if base_rate_probs is None:
        rate = np.full(m, 0.5, np.float32)
    else:
        rate = np.clip(as_array(base_rate_probs, "base_rate_probs", ndim=1), 1e-6, 1 - 1e-6)
        if rate.shape != (m,):
            raise ValueError(f"base_rate_probs: expected {m} probabilities, got shape {rate.shape}")
    base_bias = jnp.asarray(np.log(rate) - np.log1p(-rate), jnp.float32)
    betas = jnp.asarray(ais_schedule(num_betas))
    k0, k1 = jax.random.split(jax.random.PRNGKey(seed))
    v0 = jax.random.bernoulli(k0, jax.nn.sigmoid(base_bias), (num_runs, m)).astype(jnp.float32)
    logw = np.asarray(_ais_log_weights(p, base_bias, betas, k1, v0), np.float64)
    if not np.all(np.isfinite(logw)):
        raise FloatingPointError("ais: non-finite importance weights; the RBM's parameters may be extreme")
    log_za = float(np.sum(np.logaddexp(0.0, np.asarray(base_bias, np.float64))) + n * math.log(2.0))
    w = np.exp(logw - logw.max())
    estimate = log_za + float(logw.max() + np.log(w.mean()))
    se = float(w.std(ddof=1) / (math.sqrt(num_runs) * w.mean()))
    return LogPartition(estimate, se)


# --- training ----------------------------------------------------------------------------------------------
class RBMTrainState(NamedTuple):
    """What one training step updates: parameters, the optimiser's state and (PCD) the persistent chains."""

    params: dict[str, jax.Array]
    opt_state: Any
    chains: RBMGibbsState | None


def _optimizer(learning_rate: float, momentum: float, weight_decay: float) -> optax.GradientTransformation:
    """SGD on the negative log-likelihood gradient, with momentum and L2 weight decay on W (not biases)."""
    parts = []
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay, mask={"W": True, "b": False, "c": False}))
    parts.append(optax.sgd(learning_rate, momentum=momentum if momentum > 0 else None))
    return optax.chain(*parts)


def _make_chunk(tx: optax.GradientTransformation, method: str, k: int, batch_size: int, n_data: int,
                key_data: jax.Array) -> Callable:
    """One epoch of CD / PCD updates as a chunk of the shared training loop (which lays its chunks out in
    whole epochs): ``chunk(state, V, first, n)`` runs the epoch that starts at step ``first`` and returns the
    losses, -n_visible x each minibatch's mean log sigmoid(F(v~) - F(v)), the pseudo-likelihood's scale."""
    spe = n_data // batch_size

    def step(st: RBMTrainState, v0: jax.Array, key: jax.Array):
        key_gibbs, key_pl = jax.random.split(key)
        kernel = RBMGibbs(st.params)
        positive = kernel.state_at(key_gibbs, v0)
        # negative phase: k block-Gibbs sweeps of the kernel, from the data (CD) or the persistent chains
        chains = positive if method == "cd" else kernel.refresh(st.chains)
        chains = jax.lax.fori_loop(0, k, lambda _, s: kernel.sample(s), chains)
        ph_pos = jax.nn.sigmoid(positive.hidden_input)
        ph_neg = jax.nn.sigmoid(chains.hidden_input)
        v_neg = chains.z["v"]
        n_neg = v_neg.shape[0]
        # gradient of the negative log-likelihood: E_model[-dE] - E_data[-dE]
        grads = {
            "W": v_neg.T @ ph_neg / n_neg - v0.T @ ph_pos / batch_size,
            "b": jnp.mean(v_neg, axis=0) - jnp.mean(v0, axis=0),
            "c": jnp.mean(ph_neg, axis=0) - jnp.mean(ph_pos, axis=0),
        }
        updates, opt_state = tx.update(grads, st.opt_state, st.params)
        params = optax.apply_updates(st.params, updates)
        # the batch's mean log sigmoid(F(v~) - F(v)), at the parameters its gradient was taken at
        pl = jnp.mean(_pl_from_input(st.params, v0, positive.hidden_input, key_pl))
        return RBMTrainState(params, opt_state, chains if method == "pcd" else None), pl

    def chunk(st: RBMTrainState, V: jax.Array, first: jax.Array, n: jax.Array):
        key_perm, key_steps = jax.random.split(jax.random.fold_in(key_data, first // spe))
        batches = jax.random.permutation(key_perm, n_data)[: spe * batch_size].reshape(spe, batch_size)
        keys = jax.random.split(key_steps, spe)
        st, pl = jax.lax.scan(lambda s, inp: step(s, V[inp[0]], inp[1]), st, (batches, keys))
        return st, (-V.shape[1] * pl).astype(jnp.float32)

    return chunk


# --- the model and its fit -----------------------------------------------------------------------------------
@dataclass(repr=False)  # Fit's short repr, not every array
class RBMFit(Fit):
    """A trained RBM. ``params`` = {"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,)};
    ``arrays["base_rate"]`` holds the training data's pixel means (the AIS base model) and
    ``arrays["epoch_pseudo_likelihood"]`` the article-scaled pseudo-likelihood of every epoch."""

    _log_z_cache: dict[Any, LogPartition] = field(default_factory=dict, repr=False, compare=False)

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
            h = jax.random.bernoulli(key_h, jax.nn.sigmoid(state.hidden_input)).astype(jnp.float32)
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
            terms = _pl_all_flips(self._jparams, jnp.asarray(V))
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

    def log_likelihood(self, V: Any, method: str = "auto", **log_partition_options: Any) -> np.ndarray:
        """log p(v) = -F(v) - log Z in nats, per row of the binary ``V`` (log Z as in :meth:`log_partition`)."""
        V = self._visible(V, binary=True)
        log_z = self.log_partition(method, **log_partition_options).estimate
        return -self.free_energy(V).astype(np.float64) - log_z

    def base_rate_log_likelihood(self, V: Any) -> np.ndarray:
        """log p(v) per row under the independent-pixel model fitted to the training data."""
        V = self._visible(V, binary=True)
        if "base_rate" not in self.arrays:
            raise ValueError("V: this fit has no base rates (it was not trained on data)")
        return base_rate_log_likelihood(V, self.arrays["base_rate"])

    def evaluate(self, V: Any, *, method: str = "auto", num_runs: int = 100, num_betas: int = 14_500,
                 seed: int = 0, **extras: Any) -> dict[str, float]:
        """Held-out scores of binary ``V``: ``log_likelihood`` (mean nats per image, log Z exact or AIS),
        ``lpd`` (the same: an RBM's predictive density is p(v)), ``pseudo_likelihood`` (n_vis scale),
        ``base_rate_log_likelihood`` and ``log_partition`` with its ``log_partition_se``. Other extras
        of a zoo data set (labels, image_shape, heldout) are ignored: the RBM is unsupervised."""
        V = self._visible(V, binary=True)
        lz = self.log_partition(method, num_runs=num_runs, num_betas=num_betas, seed=seed)
        ll = float(np.mean(self.log_likelihood(V, method, num_runs=num_runs, num_betas=num_betas, seed=seed)))
        out = {
            "log_likelihood": ll,
            "lpd": ll,
            "pseudo_likelihood": self.pseudo_likelihood(V, seed=seed),
            "log_partition": lz.estimate,
            "log_partition_se": lz.se,
        }
        if "base_rate" in self.arrays:
            out["base_rate_log_likelihood"] = float(np.mean(self.base_rate_log_likelihood(V)))
        return out

    # -- sampling
    def sample(self, num_chains: int = 4, num_samples: int = 1_000, seed: int = 0, num_warmup: int = 100,
               thinning: int = 1, init: Any = None, progress: bool = False,
               chain_method: str | None = None, method: str = "gibbs") -> RBMFit:
        """Draw from the RBM with ``numpyro.infer.MCMC``.

        ``method``: "gibbs", the block sampler :class:`probzoo.infer.RBMGibbs` (all hidden units given v,
        then all visible units given h: one sweep per step), or "discrete-gibbs", NumPyro's generic
        ``DiscreteGibbs`` on :func:`rbm_model` (one single-site Gibbs update of every v and h coordinate per
        step, in random order; its chains run mapped over the chains' keys in one program, from uniform
        random states). Returns a copy of this fit (``method`` the sampler's, ``info["mcmc"] = True``) whose
        ``idata`` holds the draws (r_hat / ESS of ``free_energy``) and whose ``samples`` are
        ``{"v": (chains, draws, n_visible), "free_energy": (chains, draws)}``. ``init`` (gibbs only): the
        chains' first visible states, (num_chains, n_visible); by default independent pixels sigmoid(b).
        """
        method = check_choice(method, "method", SAMPLERS)
        num_chains = check_int(num_chains, "num_chains", minimum=1)
        if method == "discrete-gibbs":
            if init is not None:
                raise ValueError("init: only method 'gibbs' takes initial states")
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
        run = run_mcmc(RBMGibbs(self.params), num_warmup=num_warmup, num_samples=num_samples,
                       num_chains=num_chains, thinning=thinning, seed=seed, progress=progress,
                       chain_method=chain_method, init_params=init_params)
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


@register_model
class RBM(ZooModel):
    """Bernoulli-Bernoulli restricted Boltzmann machine with ``n_hidden`` hidden units.

    p(v, h) ∝ exp(v W h + b.v + c.h); the free energy F(v) = -b.v - sum_j softplus(c_j + (v W)_j) is the
    potential of p(v). ``fit(V, method="cd" | "pcd")`` trains it on rows of ``V`` in [0, 1] (grey levels
    are used as probabilities in the positive phase, as the article does). W starts Xavier-uniform
    (times ``init_scale``) and c at zero, as in the article; b starts at the training data's pixel
    log-odds (``visible_bias="base_rate"``, Hinton's recommendation, much better likelihoods for short
    runs) or at zero (``visible_bias="zeros"``, the article's choice).
    """

    fit_class = RBMFit
    native_methods = methods = ("cd", "pcd")

    def engine_refusal(self, name: str, data: tuple[Any, ...], options: Mapping[str, Any]) -> str | None:
        return (f"{name}: the RBM's units are binary and its likelihood needs the partition function; train it "
                "with cd or pcd, then sample it with fit.sample (block Gibbs through numpyro's MCMC)")

    def __init__(self, n_hidden: int = 64, init_scale: float = 1.0, visible_bias: str = "base_rate") -> None:
        self.n_hidden = check_int(n_hidden, "n_hidden", minimum=1)
        self.init_scale = check_positive(init_scale, "init_scale")
        self.visible_bias = check_choice(visible_bias, "visible_bias", ("base_rate", "zeros"))
        self._config = {"n_hidden": self.n_hidden, "init_scale": self.init_scale,
                        "visible_bias": self.visible_bias}

    # the RBM as NumPyro callables: the joint over (v, h), and the exact posterior q(h | v) = p(h | v)
    model = staticmethod(rbm_model)
    guide = staticmethod(rbm_guide)

    # the article's formulas on a parameter dict
    energy = staticmethod(energy)
    free_energy = staticmethod(free_energy)
    hidden_probs = staticmethod(hidden_probs)
    visible_probs = staticmethod(visible_probs)

    def init_params(self, n_visible: int, seed: int = 0, base_rate_probs: Any = None) -> dict[str, jax.Array]:
        """W ~ U(-k, k), k = init_scale sqrt(6 / (n_visible + n_hidden)) (Xavier), c = 0; b = the log-odds
        of ``base_rate_probs`` when given and ``visible_bias="base_rate"``, else 0."""
        n_visible = check_int(n_visible, "n_visible", minimum=1)
        if base_rate_probs is not None:
            base_rate_probs = as_array(base_rate_probs, "base_rate_probs", ndim=1)
            if base_rate_probs.shape != (n_visible,):
                raise ValueError(f"base_rate_probs: expected {n_visible} values, got {base_rate_probs.shape}")
            if np.any((base_rate_probs <= 0) | (base_rate_probs >= 1)):
                raise ValueError("base_rate_probs: values must lie strictly between 0 and 1")
        return self._init(n_visible, jax.random.PRNGKey(check_seed(seed)), base_rate_probs)

    def _init(self, n_visible: int, key: jax.Array, rate: np.ndarray | None) -> dict[str, jax.Array]:
        lim = self.init_scale * math.sqrt(6.0 / (n_visible + self.n_hidden))
        W = jax.random.uniform(key, (n_visible, self.n_hidden), jnp.float32, -lim, lim)
        b = jnp.zeros(n_visible, jnp.float32)
        if rate is not None and self.visible_bias == "base_rate":
            rate = np.asarray(rate, np.float64)
            b = jnp.asarray(np.log(rate) - np.log1p(-rate), jnp.float32)
        return {"W": W, "b": b, "c": jnp.zeros(self.n_hidden, jnp.float32)}

    def from_params(self, params: dict[str, Any], base_rate_probs: Any = None) -> RBMFit:
        """An :class:`RBMFit` for given parameters (e.g. trained elsewhere), for scoring and sampling."""
        p = check_rbm_params(params)
        if p["W"].shape[1] != self.n_hidden:
            raise ValueError(f"params: W has {p['W'].shape[1]} hidden units, this RBM {self.n_hidden}")
        arrays = {}
        if base_rate_probs is not None:
            rate = as_array(base_rate_probs, "base_rate_probs", ndim=1)
            if rate.shape != (p["W"].shape[0],):
                raise ValueError(f"base_rate_probs: expected {p['W'].shape[0]} values, got {rate.shape}")
            arrays["base_rate"] = check_unit_interval(rate, "base_rate_probs")
        return RBMFit(model=self, method="given", params={k: np.asarray(v) for k, v in p.items()},
                      arrays=arrays, info={"mcmc": False})

    @runs_engines
    def fit(
        self,
        V: Any,
        method: str = "cd",
        k: int = 1,
        epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        n_chains: int | None = None,
        seed: int = 0,
        progress: bool = False,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike | None = None,
        callback: Callable[[int, np.ndarray, RBMTrainState], Any] | None = None,
        diagnostic_chains: int = 4,
        diagnostic_samples: int = 200,
    ) -> RBMFit:
        """Train on the rows of ``V`` (n, n_visible), values in [0, 1].

        ``method="cd"``: CD-k, k sweeps of :class:`RBMGibbs` started at each minibatch; ``"pcd"``:
        persistent chains (``n_chains``, default ``batch_size``) that the kernel advances k sweeps per
        update. Each epoch is one permutation of the data in minibatches of ``batch_size`` (the last
        partial batch is dropped), a ``lax.scan`` run as one chunk of the shared training loop
        (:func:`probzoo.infer.loop.run_loop`). Updates are SGD with ``learning_rate`` on the mean gradient,
        ``momentum`` and L2 ``weight_decay`` on W.
        ``progress`` shows the loop's bar (minibatch steps) and prints the article's "Epoch: e cost: ..." line
        (pseudo-likelihood scaled by the batch size). ``checkpoint``/``checkpoint_every`` (epochs,
        default 1) save the training state atomically; ``resume`` continues from such a file and ends
        with exactly the parameters of an uninterrupted run. ``callback(epochs_done, losses, state)``
        runs after every epoch. Afterwards ``diagnostic_chains`` x ``diagnostic_samples`` draws of
        RBMGibbs (0 to skip) fill ``idata`` with the free energy's r_hat / ESS.
        """
        V = as_array(V, "V", ndim=2, min_rows=2)
        check_unit_interval(V, "V")
        method = check_choice(method, "method", ("cd", "pcd"))
        k = check_int(k, "k", minimum=1)
        epochs = check_int(epochs, "epochs", minimum=1)
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=V.shape[0])
        learning_rate = check_positive(learning_rate, "learning_rate")
        momentum = check_positive(momentum, "momentum", allow_zero=True)
        if momentum >= 1:
            raise ValueError(f"momentum: must lie in [0, 1), got {momentum}")
        weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
        n_chains = batch_size if n_chains is None else check_int(n_chains, "n_chains", minimum=1)
        seed = check_seed(seed)
        diagnostic_chains = check_int(diagnostic_chains, "diagnostic_chains", minimum=0)
        diagnostic_samples = check_int(diagnostic_samples, "diagnostic_samples", minimum=1)
        if checkpoint_every is not None:
            checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
            if checkpoint is None:
                raise ValueError("checkpoint: checkpoint_every needs a checkpoint path")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")

        n_data, n_visible = V.shape
        spe = n_data // batch_size
        key_init, key_data, key_chains = jax.random.split(jax.random.PRNGKey(seed), 3)
        rate = base_rate(V)
        params = self._init(n_visible, key_init, rate)
        tx = _optimizer(learning_rate, momentum, weight_decay)
        Vj = jnp.asarray(V)
        chains = None
        if method == "pcd":
            k_idx, k_v, k_state = jax.random.split(key_chains, 3)
            rows = Vj[jax.random.randint(k_idx, (n_chains,), 0, n_data)]
            v0 = jax.random.bernoulli(k_v, rows).astype(jnp.float32)
            chains = RBMGibbs(params).state_at(k_state, v0)
        state = RBMTrainState(params, tx.init(params), chains)

        identity = {"method": method, "k": k, "n_visible": n_visible, "n_hidden": self.n_hidden,
                    "batch_size": batch_size, "n_chains": n_chains, "learning_rate": learning_rate,
                    "momentum": momentum, "weight_decay": weight_decay, "seed": seed,
                    "init_scale": self.init_scale, "visible_bias": self.visible_bias,
                    "data": data_digest(V)}

        def article_pl(losses: np.ndarray) -> np.ndarray:
            # per epoch, article-scaled: batch size x mean log sigmoid(F(v~) - F(v)). Always derived from the
            # float32 loss trace (which a resumed run reproduces bit for bit), never from the float64 values
            # of the live run, so an interrupted-and-resumed fit reports exactly the same figures.
            return -(batch_size / n_visible) * np.asarray(losses, np.float64).reshape(-1, spe).mean(axis=1)

        def log(step: int, chunk_losses: np.ndarray) -> str:
            return f"Epoch: {step // spe - 1} cost: {float(article_pl(chunk_losses)[-1]):.6f}"

        def epoch_callback(step: int, losses: np.ndarray, st: RBMTrainState) -> Any:
            return callback(step // spe, losses, st)

        # one epoch per chunk of the shared loop; a checkpoint every ``checkpoint_every`` epochs
        run = run_loop(_make_chunk(tx, method, k, batch_size, n_data, key_data), state, (Vj,),
                       total=epochs * spe, steps_per_epoch=spe, chunk_size=spe, identity=identity,
                       desc=f"RBM {method}-{k}", progress=progress, checkpoint=checkpoint,
                       checkpoint_every=None if checkpoint is None else (checkpoint_every or 1) * spe,
                       resume=resume, callback=None if callback is None else epoch_callback,
                       finite=lambda st: all(bool(jnp.all(jnp.isfinite(x))) for x in st.params.values()), log=log)
        state, losses, compile_time, wall = run.state, run.losses, run.compile_time, run.wall_time

        params_np = {key: np.asarray(v) for key, v in state.params.items()}
        arrays = {"base_rate": rate, "epoch_pseudo_likelihood": article_pl(losses).astype(np.float32)}
        if method == "pcd":
            arrays["chains"] = np.asarray(state.chains.z["v"])
        info = {"mcmc": False, "family": "custom", "k": k, "epochs": epochs, "batch_size": batch_size,
                "steps_per_epoch": spe,
                "learning_rate": learning_rate, "momentum": momentum, "weight_decay": weight_decay,
                "n_chains": n_chains if method == "pcd" else None, "n_visible": n_visible,
                "n_hidden": self.n_hidden, "n_data": n_data, "data_binary": bool(np.all((V == 0) | (V == 1))),
                "pseudo_likelihood_note": "epoch_pseudo_likelihood is article-scaled (batch size x mean "
                                          "log sigmoid(F(v~) - F(v))); losses are -n_visible x the same mean"}
        fit = RBMFit(model=self, method=method, params=params_np, losses=losses,
                     arrays=arrays, wall_time=wall, compile_time=compile_time, seed=seed, info=info)
        if diagnostic_chains > 0:
            draws = fit.sample(num_chains=diagnostic_chains, num_samples=diagnostic_samples, seed=seed,
                               num_warmup=min(100, diagnostic_samples))
            fit.idata = draws.idata
            fe = draws.samples["free_energy"]
            fit.info["free_energy_r_hat"] = arviz_io.rhat(fe) if diagnostic_chains > 1 else None
            fit.info["free_energy_ess"] = arviz_io.ess(fe)
            if np.isnan(fit.info["free_energy_ess"]):
                warnings.warn("the diagnostic Gibbs chains never moved (every draw has the same free energy), so "
                              "their r_hat and ESS are undefined (nan): the learned weights saturate every unit; "
                              "a smaller learning_rate or some weight_decay keeps the sampler mixing", stacklevel=2)
        return fit


register_own_engines(RBM, RBM.fit, {
    "cd": (Family.CUSTOM, "contrastive divergence CD-k: k RBMGibbs sweeps from each minibatch",
           "rows of V in [0, 1]"),
    "pcd": (Family.CUSTOM, "persistent contrastive divergence: RBMGibbs chains carried across minibatches",
            "rows of V in [0, 1]"),
}, data=("V",))
register_own_engines(RBM, RBMFit.sample, {
    "gibbs": (Family.MCMC, "RBMGibbs: block Gibbs, all h given v then all v given h",
              "a trained RBM's fit"),
    "discrete-gibbs": (Family.MCMC, "numpyro DiscreteGibbs on the RBM as a NumPyro model: single-site updates",
                       "a trained RBM's fit"),
}, accepts=RBMFit, runs_on="fit.sample(method={name!r}) on the fit of a trained pz.RBM")
