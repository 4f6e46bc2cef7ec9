"""The Bernoulli restricted Boltzmann machine of article 003, as a NumPyro model, and its training.

Generative model (binary v in {0,1}^m, h in {0,1}^n):

    p(v, h) = exp(-E(v, h)) / Z,   E(v, h) = -v W h - b.v - c.h,
    p(v)    = exp(-F(v)) / Z,      F(v) = -b.v - sum_j softplus(c_j + (v W)_j)   (the potential).

Training follows the article: the log-likelihood gradient is E_data[-dE/dtheta] - E_model[-dE/dtheta];
the model expectation is replaced by k sweeps of the block-Gibbs kernel (``gibbs.py``) started at the
minibatch (CD-k) or by persistent chains that the kernel advances between updates (PCD, Tieleman 2008).
Each epoch is one compiled ``lax.scan``, a chunk of the shared training loop (``training.py``). The fit
scores the model in nats per image through ``log Z`` (``partition.py``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from probzoo.infer import arviz_io
from probzoo.infer.checkpoint import check_checkpointing, data_digest
from probzoo.infer.devices import DataParallel
from probzoo.infer.loop import run_loop
from probzoo.models.base import ZooModel, runs_engines
from probzoo.models.rbm.draws import STREAM, bernoulli
from probzoo.models.rbm.energy import check_rbm_params, energy, free_energy, hidden_probs, visible_probs
from probzoo.models.rbm.fit import RBMFit
from probzoo.models.rbm.gibbs import RBMGibbs
from probzoo.models.rbm.partition import base_rate
from probzoo.models.rbm.training import Offsets, RBMTrainState, make_chunk, optimizer
from probzoo.validation import (
    as_array,
    check_choice,
    check_int,
    check_positive,
    check_seed,
    check_unit_interval,
)
from probzoo.zoo import register_model


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
        centring: bool = False,
        n_chains: int | None = None,
        seed: int = 0,
        progress: bool = False,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike | None = None,
        callback: Callable[[int, np.ndarray, RBMTrainState], Any] | None = None,
        diagnostic_chains: int = 4,
        diagnostic_samples: int = 200,
        devices: Any = None,
    ) -> RBMFit:
        """Train on the rows of ``V`` (n, n_visible), values in [0, 1].

        ``method="cd"``: CD-k, k sweeps of :class:`RBMGibbs` started at each minibatch; ``"pcd"``:
        persistent chains (``n_chains``, default ``batch_size``) that the kernel advances k sweeps per
        update. Each epoch is one permutation of the data in minibatches of ``batch_size`` (the last
        partial batch is dropped), a ``lax.scan`` run as one chunk of the shared training loop
        (:func:`probzoo.infer.loop.run_loop`). Updates are SGD with ``learning_rate`` on the mean gradient,
        ``momentum`` and L2 ``weight_decay`` on W. ``centring=True`` takes the steps in centred coordinates
        (the energy written around offsets for the visible and hidden units, started at the data's mean
        pixel and 1/2 and following the minibatches' mean activities as moving averages with rate 0.01;
        Montavon & Müller 2012, Melchior, Fischer & Wiskott 2016): the same model, a better-conditioned
        gradient; the parameters are returned in the usual form.
        ``progress`` shows the loop's bar (minibatch steps) and prints the article's "Epoch: e cost: ..." line
        (pseudo-likelihood scaled by the batch size). ``checkpoint``/``checkpoint_every`` (epochs,
        default 1) save the training state atomically; ``resume`` continues from such a file and ends
        with exactly the parameters of an uninterrupted run. ``callback(epochs_done, losses, state)``
        runs after every epoch. Afterwards ``diagnostic_chains`` x ``diagnostic_samples`` draws of
        RBMGibbs (0 to skip) fill ``idata`` with the free energy's r_hat / ESS. ``devices`` (None, N or
        "all") splits each minibatch, and PCD's chains, over that many devices (:mod:`probzoo.infer.devices`).
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
        if not isinstance(centring, bool | np.bool_):
            raise TypeError(f"centring: expected True or False, got {centring!r}")
        centring = bool(centring)
        n_chains = batch_size if n_chains is None else check_int(n_chains, "n_chains", minimum=1)
        seed = check_seed(seed)
        diagnostic_chains = check_int(diagnostic_chains, "diagnostic_chains", minimum=0)
        diagnostic_samples = check_int(diagnostic_samples, "diagnostic_samples", minimum=1)
        checkpoint_every = check_checkpointing(checkpoint, checkpoint_every)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
        parallel = DataParallel.of(devices)
        if parallel is not None:
            parallel.check_batch(batch_size)
            if method == "pcd":
                parallel.check_batch(n_chains, "n_chains")

        n_data, n_visible = V.shape
        spe = n_data // batch_size
        key_init, key_data, key_chains = jax.random.split(jax.random.PRNGKey(seed), 3)
        rate = base_rate(V)
        params = self._init(n_visible, key_init, rate)
        tx = optimizer(learning_rate, momentum, weight_decay)
        Vj = jnp.asarray(V)
        chains = None
        if method == "pcd":
            k_idx, k_v, k_state = jax.random.split(key_chains, 3)
            rows = Vj[jax.random.randint(k_idx, (n_chains,), 0, n_data)]
            v0 = bernoulli(k_v, rows)
            chains = RBMGibbs(params).state_at(k_state, v0)
        offsets = None
        if centring:
            offsets = Offsets(jnp.asarray(V.mean(axis=0), jnp.float32), jnp.full(self.n_hidden, 0.5, jnp.float32))
        state = RBMTrainState(params, tx.init(params), chains, offsets)

        identity = {"method": method, "k": k, "n_visible": n_visible, "n_hidden": self.n_hidden,
                    "batch_size": batch_size, "n_chains": n_chains, "learning_rate": learning_rate,
                    "momentum": momentum, "weight_decay": weight_decay, "centring": centring, "seed": seed,
                    "init_scale": self.init_scale, "visible_bias": self.visible_bias, "random_stream": STREAM,
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
        run = run_loop(make_chunk(tx, method, k, batch_size, n_data, parallel), state, (Vj, key_data),
                       total=epochs * spe, steps_per_epoch=spe, chunk_size=spe, identity=identity,
                       desc=f"RBM {method}-{k}", progress=progress, checkpoint=checkpoint,
                       checkpoint_every=None if checkpoint is None else (checkpoint_every or 1) * spe,
                       resume=resume, callback=None if callback is None else epoch_callback,
                       finite=lambda st: all(bool(jnp.all(jnp.isfinite(x))) for x in st.params.values()), log=log,
                       parallel=parallel)
        state, losses, compile_time, wall = run.state, run.losses, run.compile_time, run.wall_time

        params_np = {key: np.asarray(v) for key, v in state.params.items()}
        arrays = {"base_rate": rate, "epoch_pseudo_likelihood": article_pl(losses).astype(np.float32)}
        if method == "pcd":
            arrays["chains"] = np.asarray(state.chains.z["v"])
        info = {"mcmc": False, "family": "custom", "k": k, "epochs": epochs, "batch_size": batch_size,
                "khat_reason": "not applicable: contrastive divergence fits the parameters, not a distribution "
                               "over them; the held-out log-likelihood (fit.evaluate) judges the fit",
                "steps_per_epoch": spe, "loop_time": wall - compile_time,
                "learning_rate": learning_rate, "momentum": momentum, "weight_decay": weight_decay,
                "centring": centring, "n_chains": n_chains if method == "pcd" else None, "n_visible": n_visible,
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
