"""Mixture density regression: an MLP maps x to a K-component Gaussian mixture over y.

Generative model (``MDN(n_components=K)``)::

    theta ~ Normal(0, prior_scale)                      # every weight and bias of the network
    logits_i, mu_i, sigma_i = head(MLP_theta(x_i))       # (K,) each; sigma = softplus(.) + min_scale
    y_i | x_i ~ sum_k softmax(logits_i)_k Normal(mu_ik, sigma_ik)

With ``enumerated=True`` the component of each point is an explicit latent,
``z_i ~ Categorical(softmax(logits_i))``, ``y_i ~ Normal(mu_{i z_i}, sigma_{i z_i})``, summed out exactly by
funsor (``config_enumerate`` + ``TraceEnum_ELBO``); the marginal over y is the same mixture.

Methods: ``"map"`` (AutoDelta: maximum likelihood with a weak prior, as the source article trains it),
``"meanfield"`` (AutoNormal: a Bayesian network whose predictive carries epistemic uncertainty) and
``"nuts"`` (full-batch NUTS over the weights of a small network).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate, infer_discrete
from numpyro.contrib.module import random_flax_module
from numpyro.infer import NUTS, TraceEnum_ELBO, init_to_value
from numpyro.infer.autoguide import AutoDelta, AutoNormal
from numpyro.ops.indexing import Vindex

from probzoo import data as pz_data
from probzoo.core import Family
from probzoo.infer import arviz_io
from probzoo.infer import engines as _engines
from probzoo.infer.mcmc import run_mcmc
from probzoo.infer.posterior import mcmc_inference_data
from probzoo.infer.result import Fit
from probzoo.infer.svi import OrderedTraceELBO, run_svi
from probzoo.models.base import BoundModel, ZooModel, runs_engines
from probzoo.nn import MLP
from probzoo.validation import (
    as_array,
    check_choice,
    check_int,
    check_positive,
    check_same_length,
    check_seed,
)
from probzoo.zoo import ZooEntry, register_entry, register_model

__all__ = ["MDN", "MDNFit"]

METHODS = ("map", "meanfield", "nuts")
ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "gelu": nn.gelu, "softplus": nn.softplus,
    "silu": nn.silu,
}
NET = "net"  # the network's sample sites are "net/<layer>.<kernel|bias>"
DEFAULT_STEPS = {"map": 780, "meanfield": 3_000}
DEFAULT_LR = {"map": 3e-3, "meanfield": 3e-3}
DEFAULT_BATCH = 128
NUTS_MAX_WEIGHTS = 1_000


# --- weights: numpyro site names <-> flax parameter trees <-> storable nested dicts ----------------------

def _site_to_path(site: str) -> list[str]:
    return site[len(NET) + 1:].split(".")


def _flax_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"net/Dense_0.kernel": a, ...} -> {"Dense_0": {"kernel": a}, ...} (flax's parameter tree)."""
    tree: dict[str, Any] = {}
    for site, value in flat.items():
        *path, leaf = _site_to_path(site)
        node = tree
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _flat_sites(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`_flax_params`."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}.{k}" if prefix else k
        if isinstance(v, Mapping):
            out.update(_flat_sites(v, name))
        else:
            out[f"{NET}/{name}"] = v
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Split numpyro names at "/" into nested dicts so a Fit can store them (its keys may not hold "/")."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        head, _, rest = k.partition("/")
        if rest:
            out.setdefault(head, {})[rest] = np.asarray(v)
        else:
            out[k] = np.asarray(v)
    return out


def _unnest(tree: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update({f"{k}/{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _as_xy(x: Any, y: Any | None = None, width: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    x = as_array(x, "x", ndim=(1, 2))
    if x.ndim == 1:
        x = x[:, None]
    if width is not None and x.shape[1] != width:
        raise ValueError(f"x: expected {width} column(s) as in training, got {x.shape[1]} (shape {x.shape})")
    if y is None:
        return x, None
    y = as_array(y, "y", ndim=1)
    check_same_length(x=x, y=y)
    return x, y


# --- the model ---------------------------------------------------------------------------------------------

@register_model
class MDN(ZooModel):
    """Mixture density network: x -> MLP -> ``MixtureSameFamily(Categorical, Normal)`` over y.

    ``n_components`` K (K = 1 is the heteroscedastic Gaussian), ``hidden`` layer widths,
    ``activation`` (name), ``prior_scale`` of the Normal(0, .) prior on every weight, ``min_scale``: the
    floor under every component's standard deviation (``softplus(.) + min_scale``; keep it well below the
    smallest noise level of y), ``enumerated``: an explicit per-point component summed out by funsor.
    """

    native_methods = METHODS
    methods = METHODS + tuple(m for m in _engines.generic_names() if m not in METHODS)

    def __init__(
        self,
        n_components: int = 2,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        prior_scale: float = 1.0,
        min_scale: float = 1e-3,
        enumerated: bool = False,
    ) -> None:
        self.n_components = check_int(n_components, "n_components", minimum=1)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden: expected a sequence of layer widths, got {type(hidden).__name__}")
        self.hidden = tuple(check_int(h, "hidden", minimum=1) for h in hidden)
        self.activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
        self.prior_scale = check_positive(prior_scale, "prior_scale")
        self.min_scale = check_positive(min_scale, "min_scale")
        if not isinstance(enumerated, bool):
            raise TypeError(f"enumerated: expected True or False, got {enumerated!r}")
        self.enumerated = enumerated
        self._config = {"n_components": self.n_components, "hidden": list(self.hidden),
                        "activation": activation, "prior_scale": self.prior_scale,
                        "min_scale": self.min_scale, "enumerated": enumerated}

    # the network and its output head
    @cached_property
    def net(self) -> MLP:
        """The flax module: x -> 3K numbers (mixing logits, means, raw scales)."""
        return MLP(hidden=self.hidden, out=3 * self.n_components, activation=ACTIVATIONS[self.activation])

    def head(self, out: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        """Network output (..., 3K) -> mixing logits, component means, component scales (each (..., K))."""
        K = self.n_components
        logits, mu, raw = out[..., :K], out[..., K:2 * K], out[..., 2 * K:]
        return logits, mu, jax.nn.softplus(raw) + self.min_scale

    def _network(self, d: int) -> Callable:
        # random_flax_module registers the module's parameter tree as a param site and, while it has no value,
        # initialises it with flax; every leaf is then replaced by a sample site, so that value is a shape
        # template only: give zeros of the right shapes rather than paying flax's random initialisation at
        # every model trace, and hide the site so that SVI does not carry (and Adam update) a second copy
        # of every weight that no loss depends on
        template = {f"{NET}$params": _param_template(self.net, d)}
        with handlers.block(hide=list(template)), handlers.substitute(data=template):
            return random_flax_module(NET, self.net, prior=dist.Normal(0.0, self.prior_scale), input_shape=(1, d))

    # NumPyro models
    def mixture_model(self, x: Any, y: Any = None) -> None:
        """theta ~ N(0, s); y_i ~ sum_k w_k(x_i) N(mu_k(x_i), sigma_k(x_i)) (components summed in closed form)."""
        net = self._network(x.shape[1])
        with numpyro.plate("data", x.shape[0]) as idx:
            logits, mu, sigma = self.head(net(jnp.asarray(x)[idx]))
            mixture = dist.MixtureSameFamily(dist.Categorical(logits=logits), dist.Normal(mu, sigma))
            numpyro.sample("y", mixture, obs=None if y is None else jnp.asarray(y)[idx])

    def enumerated_model(self, x: Any, y: Any = None) -> None:
        """theta ~ N(0, s); z_i ~ Cat(w(x_i)); y_i ~ N(mu_{z_i}(x_i), sigma_{z_i}(x_i)), z enumerated."""
        net = self._network(x.shape[1])
        with numpyro.plate("data", x.shape[0]) as idx:
            logits, mu, sigma = self.head(net(jnp.asarray(x)[idx]))
            z = numpyro.sample("z", dist.Categorical(logits=logits), infer={"enumerate": "parallel"})
            numpyro.sample("y", dist.Normal(Vindex(mu)[..., z], Vindex(sigma)[..., z]),
                           obs=None if y is None else jnp.asarray(y)[idx])

    @property
    def model(self) -> Callable:
        """The NumPyro model ``model(x, y=None)``: the enumerated one when ``enumerated=True``."""
        return config_enumerate(self.enumerated_model) if self.enumerated else self.mixture_model

    @property
    def guide(self) -> Callable:
        """The "map" guide (AutoDelta over the weights, started at flax's initialisation)."""
        return self.make_guide("map", self.init_values(seed=0, d=1))

    def make_guide(self, method: str, init_values: Mapping[str, Any]) -> Callable:
        """AutoDelta ("map") or AutoNormal ("meanfield") over the network weights, started at ``init_values``."""
        check_choice(method, "method", ("map", "meanfield"))
        target = handlers.block(self.model, hide=["z"]) if self.enumerated else self.model
        init = init_to_value(values=dict(init_values))
        if method == "map":
            return AutoDelta(target, init_loc_fn=init)
        return AutoNormal(target, init_loc_fn=init, init_scale=1e-3)

    def num_weights(self, d: int = 1) -> int:
        sizes = [d, *self.hidden, 3 * self.n_components]
        return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def init_values(self, seed: int, d: int, x: np.ndarray | None = None, y: np.ndarray | None = None,
                    out_gain: float = 0.1) -> dict[str, jnp.ndarray]:
        """Starting weights: flax's initialisers, adapted to the data when ``x``/``y`` are given.

        The first layer absorbs the standardisation of x (so any input scale starts like standardised
        inputs); the output layer starts near flat functions with equal weights, component means at the
        K quantiles (k + 1/2)/K of y and scales sd(y)/K. Spreading the means keeps components from
        collapsing onto one another early in training.
        """
        params = _init_fn(self.net, d)(jax.random.PRNGKey(seed))["params"]
        # adapted in NumPy (float64, then float32): a handful of small arrays, not worth a program each
        params = jax.tree.map(lambda a: np.asarray(a, np.float64), {k: dict(v) for k, v in params.items()})
        if x is not None and y is not None:
            K = self.n_components
            x = np.asarray(x, np.float64)
            y = np.asarray(y, np.float64)
            mx, sx = x.mean(0), x.std(0)
            sx = np.where(sx > 0, sx, 1.0)
            first, last = "Dense_0", f"Dense_{len(self.hidden)}"
            kernel = params[first]["kernel"] / sx[:, None]
            params[first] = {"kernel": kernel, "bias": params[first]["bias"] - mx @ kernel}
            sy = float(y.std()) or 1.0
            q = np.quantile(y, (np.arange(K) + 0.5) / K)
            s0 = max(sy / K, 2.0 * self.min_scale)
            gain = np.concatenate([np.full(K, out_gain), np.full(K, out_gain * sy), np.full(K, out_gain)])
            bias = np.concatenate([np.zeros(K), q, np.full(K, _inverse_softplus(s0 - self.min_scale))])
            # without hidden layers the output layer is the first one: keep its centring of x
            centring = params[last]["bias"] * gain if not self.hidden else 0.0
            params[last] = {"kernel": params[last]["kernel"] * gain, "bias": bias + centring}
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
        return _flat_sites(params)

    # training
    @runs_engines
    def fit(
        self,
        x: Any,
        y: Any,
        method: str = "map",
        seed: int = 0,
        progress: bool = False,
        num_steps: int | None = None,
        batch_size: int | None = DEFAULT_BATCH,
        learning_rate: float | None = None,
        schedule: str = "cosine",
        optim: Any = None,
        num_draws: int | None = None,
        num_samples: int = 500,
        num_warmup: int = 500,
        num_chains: int = 2,
        max_weights: int = NUTS_MAX_WEIGHTS,
        max_tree_depth: int = 10,
        chain_method: str | None = None,
        callback: Callable | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: str | Path | None = None,
    ) -> MDNFit:
        """Fit the network to (x, y); returns an :class:`MDNFit`.

        SVI methods ("map", "meanfield"): ``num_steps`` Adam steps on minibatches of ``batch_size``
        (None = full batch) with ``learning_rate`` decayed to 1% along a cosine (``schedule="constant"``
        keeps it fixed; ``optim`` replaces the optimiser). Defaults: 780 steps for map and 3,000 for
        meanfield, rounded up to whole passes over the data, batch 128, learning rate 0.003. ``num_draws``
        posterior draws are kept (meanfield: 200; map: the point). ``callback``, ``checkpoint``,
        ``checkpoint_every`` and ``resume`` go to :func:`probzoo.infer.run_svi`.
        "nuts": ``num_warmup``/``num_samples`` per chain, ``num_chains`` chains, full batch, trajectories of
        at most 2^``max_tree_depth`` leapfrog steps, ``chain_method`` as in :func:`probzoo.infer.run_mcmc`;
        refuses networks with more than ``max_weights`` weights.
        Any other engine of ``pz.engines()`` (``laplace``, ``lowrank``, ``fullrank``, ``flow``, ``hmc``,
        ``sa``, ``barker``, ``hmcecs``) runs on the closed-form mixture model with the data-adapted starting
        weights, with that engine's budget and options (e.g. ``fit(x, y, method="fullrank", num_steps=2_000)``);
        MCMC engines refuse networks of more than 1,000 weights.
        """
        method = check_choice(method, "method", METHODS)
        seed = check_seed(seed)
        x, y = self._check_xy(x, y)
        n, d = x.shape
        if self.min_scale > 0.05 * float(np.std(y)) > 0:
            warnings.warn(f"min_scale: {self.min_scale:g} is large next to the spread of y (sd {np.std(y):.3g}); "
                          "components cannot get narrower than it: pass a smaller min_scale", stacklevel=2)
        init = self.init_values(seed, d, x, y)
        if method == "nuts":
            return self._fit_nuts(x, y, init, seed=seed, progress=progress, num_samples=num_samples,
                                  num_warmup=num_warmup, num_chains=num_chains, max_weights=max_weights,
                                  max_tree_depth=max_tree_depth, chain_method=chain_method)
        if batch_size is not None:
            batch_size = min(check_int(batch_size, "batch_size", minimum=1), n)
        spe = 1 if batch_size is None else n // batch_size
        if num_steps is None:
            num_steps = spe * math.ceil(DEFAULT_STEPS[method] / spe)
        num_steps = check_int(num_steps, "num_steps", minimum=1)
        lr = check_positive(DEFAULT_LR[method] if learning_rate is None else learning_rate, "learning_rate")
        check_choice(schedule, "schedule", ("cosine", "constant"))
        if optim is not None:
            schedule = "custom"
        else:
            rate = optax.cosine_decay_schedule(lr, num_steps, alpha=0.01) if schedule == "cosine" else lr
            optim = optax.adam(rate)
        guide = self.make_guide(method, init)
        loss = TraceEnum_ELBO(max_plate_nesting=1) if self.enumerated else OrderedTraceELBO()
        run = run_svi(self.model, guide, x, y, optim=optim, learning_rate=lr, loss=loss, num_steps=num_steps,
                      batch_size=batch_size, seed=seed, progress=progress, callback=callback,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                      settings={"model": "MDN", "config": self.get_config(), "method": method,
                                "learning_rate": lr, "schedule": schedule}, desc=f"MDN {method}")
        params = {k: v for k, v in run.params.items() if not k.endswith("$params")}
        if num_draws is None:
            num_draws = 1 if method == "map" else 100
        num_draws = check_int(num_draws, "num_draws", minimum=1)
        draws = run.sample_posterior(jax.random.PRNGKey(seed), num_draws)
        draws = {k: v for k, v in draws.items() if k.startswith(NET + "/")}
        info = {"n_train": n, "d": d, "num_steps": num_steps, "batch_size": batch_size, "learning_rate": lr,
                "schedule": schedule, "steps_per_epoch": run.steps_per_epoch, "setup_time": run.setup_time,
                "loop_time": run.loop_time}
        fit = MDNFit.build(self, method, x, draws, params=_nest(params), losses=run.losses,
                           wall_time=run.wall_time, compile_time=run.compile_time, seed=seed, info=info)
        fit.idata = fit.inference_data(x, y, seed=seed)
        return fit

    # every other engine of the registry, on the closed-form mixture
    def bind(self, x: Any, y: Any, seed: int = 0) -> BoundModel:
        x, y = self._check_xy(x, y)
        d = x.shape[1]
        return BoundModel(name="MDN", model=self.mixture_model, args=(x, y), plate="data",
                          init=lambda s: self.init_values(s, d, x, y), build=partial(self._engine_fit, x, y))

    def engine_refusal(self, name: str, data: tuple[Any, ...], options: Mapping[str, Any]) -> str | None:
        eng = _engines.engine(name)
        d = int(np.shape(data[0])[1]) if data and np.ndim(data[0]) == 2 else 1
        size, small = self.num_weights(d), MDN(self.n_components, (8,)).num_weights(d)
        if eng.family == Family.MCMC and size > NUTS_MAX_WEIGHTS:
            return (f"{name}: MCMC over the {size:,} weights of a {list(self.hidden)} network is too slow to mix; "
                    f"use a small network (e.g. hidden=(8,), {small} weights)")
        if name == "flow" and size > 2_000 and options.get("hidden_dims") is None:
            return (f"flow: an autoregressive flow over {size:,} weights has layers of {size:,} x {size:,}; "
                    f"use a small network (e.g. hidden=(8,)) or narrow layers (hidden_dims=[64])")
        return None

    def engine_defaults(self, name: str) -> dict[str, Any]:
        # 100 guide draws carry the predictive (as for meanfield); MCMC as the native NUTS: 2 chains of 500
        return {"num_draws": 100, "num_chains": 2, "num_warmup": 500, "num_samples": 500}

    def _engine_fit(self, x: np.ndarray, y: np.ndarray, *, model: Any, method: str, params: dict[str, Any],
                    losses: np.ndarray, samples: Mapping[str, Any], wall_time: float, compile_time: float,
                    seed: int, info: dict[str, Any], sample_stats: Mapping[str, np.ndarray]) -> MDNFit:
        """An engine's draws of the weights as an MDNFit, with the InferenceData of the native methods."""
        draws = {k: np.asarray(v) for k, v in samples.items() if k.startswith(NET + "/")}
        chains = int(info.get("num_chains", 1)) if info.get("mcmc") else 1
        params = {k: v for k, v in params.items() if not k.endswith("$params")}
        fit = MDNFit.build(self, method, x, draws, params=params, losses=losses, wall_time=wall_time,
                           compile_time=compile_time, seed=seed, info={**info, "n_train": len(x), "d": x.shape[1]})
        fit.idata = fit.inference_data(x, y, seed=seed, num_chains=chains, sample_stats=sample_stats)
        if fit.is_mcmc:
            _add_invariants(fit, x, chains)
        return fit

    def _check_xy(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        x, y = _as_xy(x, y)
        if x.shape[0] < 2:
            raise ValueError(f"x: needs at least 2 points, got {x.shape[0]}")
        return x, y

    def check_fit(self, x: Any, y: Any = None, *, method: str, **options: Any) -> None:
        super().check_fit(x, y, method=method, **options)
        if method == "nuts":
            self._check_nuts_size(int(np.shape(x)[1]) if np.ndim(x) == 2 else 1,
                                  options.get("max_weights", NUTS_MAX_WEIGHTS))

    def _check_nuts_size(self, d: int, max_weights: int) -> None:
        max_weights = check_int(max_weights, "max_weights", minimum=1)
        size = self.num_weights(d)
        if size > max_weights:
            raise ValueError(
                f"hidden: NUTS over the {size:,} weights of a {list(self.hidden)} network is too slow to mix; "
                f"use a small network (e.g. hidden=(8,), {MDN(self.n_components, (8,)).num_weights(d)} weights), "
                f"method='meanfield', or raise max_weights (now {max_weights})")

    def _fit_nuts(self, x: np.ndarray, y: np.ndarray, init: Mapping[str, Any], *, seed: int, progress: bool,
                  num_samples: int, num_warmup: int, num_chains: int, max_weights: int,
                  max_tree_depth: int, chain_method: str | None) -> MDNFit:
        n, d = x.shape
        self._check_nuts_size(d, max_weights)
        if n > 5_000:
            warnings.warn(f"x: NUTS is full-batch: every gradient sees all {n:,} points; consider a subsample "
                          "or method='meanfield'", stacklevel=3)
        num_chains = check_int(num_chains, "num_chains", minimum=1)
        chain_inits = [self.init_values(seed + c, d, x, y) for c in range(num_chains)]
        init_params = {k: jnp.stack([ci[k] for ci in chain_inits]) if num_chains > 1 else chain_inits[0][k]
                       for k in init}
        # NUTS samples the weights of the closed-form mixture: summing z out by enumeration gives the same
        # posterior, only slower.
        kernel = NUTS(self.mixture_model, max_tree_depth=check_int(max_tree_depth, "max_tree_depth", minimum=1))
        run = run_mcmc(kernel, x, y, num_warmup=num_warmup, num_samples=num_samples,
                       num_chains=num_chains, seed=seed, progress=progress, init_params=init_params,
                       chain_method=chain_method)
        samples = {k: np.asarray(v) for k, v in run.mcmc.get_samples().items() if k.startswith(NET + "/")}
        idata = mcmc_inference_data(run.mcmc, observed_site="y", predictive_args=(x,), seed=seed,
                                    attrs={"model": "MDN", "method": "nuts"})
        idata = arviz_io.netcdf_safe(idata)
        info = {"n_train": n, "d": d, "mcmc": True, "num_samples": num_samples, "num_warmup": num_warmup,
                "num_chains": num_chains, "chain_method": run.chain_method, "max_tree_depth": max_tree_depth}
        fit = MDNFit.build(self, "nuts", x, samples, params={}, idata=idata, wall_time=run.wall_time,
                           compile_time=float("nan"), seed=seed, info=info)
        _add_invariants(fit, x, num_chains)
        return fit


INVARIANT_POINTS = 16


def _add_invariants(fit: MDNFit, x: np.ndarray, num_chains: int) -> None:
    """Add to the posterior the quantities that convergence is read on: the training log-likelihood and the
    predictive mean at ``INVARIANT_POINTS`` inputs spread over the training range, per draw.

    Hidden units (and components) can be permuted without changing the likelihood, so chains from different
    starts may settle in different labellings of the same fit: r_hat of raw weights then says nothing."""
    post = fit.idata.posterior
    ll = fit.idata.log_likelihood["y"]
    post["log_lik"] = ll.sum(dim=[d for d in ll.dims if d not in ("chain", "draw")])
    ref = np.asarray(fit.arrays["x_reference"])
    grid = ref[np.linspace(0, len(ref) - 1, min(len(ref), INVARIANT_POINTS)).astype(int)]
    logw, mu, _ = fit._components(grid)
    mean = np.asarray(jnp.sum(jnp.exp(logw) * mu, -1)).reshape(num_chains, -1, len(grid))
    post["mean_curve"] = (("chain", "draw", "mean_curve_dim_0"), mean)


# --- the fit ------------------------------------------------------------------------------------------------

class MDNFit(Fit):
    """A fitted :class:`MDN`: per-component answers and the predictive distribution at new x.

    ``samples["net"]`` holds the posterior draws of the weights (for "map", the one point). Components
    are reported in a fixed order: ascending by the component's mean location averaged over the
    training inputs (``arrays["x_reference"]``), decided once per posterior draw (``arrays["order"]``),
    so the order is the same at every x and label switching between draws is undone.
    For Bayesian fits, densities average over draws (``log_likelihood``), and ``predict`` returns
    posterior means of the per-component quantities.
    """

    @classmethod
    def build(cls, mdn: MDN, method: str, x: np.ndarray, draws: Mapping[str, Any], **kw: Any) -> MDNFit:
        ref = x[np.linspace(0, len(x) - 1, min(len(x), 256)).astype(int)]
        fit = cls(model=mdn, method=method, samples=_nest(draws),
                  arrays={"x_reference": ref, "order": np.zeros((0, mdn.n_components), np.int32)}, **kw)
        mu = np.asarray(fit._forward(fit._draws, jnp.asarray(ref))[1])          # (S, m, K)
        fit.arrays["order"] = np.argsort(mu.mean(axis=1), axis=-1).astype(np.int32)
        return fit

    def inference_data(self, x: Any, y: Any, seed: int = 0, num_chains: int = 1,
                       sample_stats: Mapping[str, Any] | None = None) -> Any:
        """InferenceData of the posterior draws with the pointwise log-likelihood and posterior predictive of
        (x, y) under the closed-form mixture (z summed out), so ``az.loo``/``az.compare`` apply.

        Weight sites are named "net.<layer>.<kernel|bias>" (netCDF allows no "/"). A MAP posterior is a point
        mass: its one draw is stored twice, and PSIS-LOO then equals the in-sample density (p_loo = 0).
        """
        x, y = _as_xy(x, y, width=int(self.info["d"]))
        comps = self._components(x)
        ll, pp = (np.asarray(a) for a in _score_and_predict(*comps, jnp.asarray(y),
                                                             jax.random.PRNGKey(check_seed(seed) + 1)))
        posterior = {k.replace("/", "."): np.asarray(v) for k, v in self._draws.items()}
        if self.num_draws == 1:
            posterior, ll, pp = ({k: np.repeat(v, 2, 0) for k, v in posterior.items()},
                                 np.repeat(ll, 2, 0), np.repeat(pp, 2, 0))
        attrs = {"model": "MDN", "method": self.method, "inference": "mcmc" if self.is_mcmc else "svi"}
        if not self.is_mcmc:
            attrs["note"] = arviz_io.SVI_NOTE

        def by_chain(group: dict[str, Any]) -> dict[str, Any]:  # (C * S, ...) -> (C, S, ...)
            return {k: np.reshape(v, (num_chains, -1) + np.shape(v)[1:]) for k, v in group.items()}

        return arviz_io.from_samples(by_chain(posterior), log_likelihood=by_chain({"y": ll}),
                                     posterior_predictive=by_chain({"y": pp}), observed_data={"y": y},
                                     constant_data={"x": x}, sample_stats=dict(sample_stats or {}) or None,
                                     attrs=attrs, chains=True)

    @property
    def diagnostic_sites(self) -> list[str] | None:
        """NUTS: the training log-likelihood and predictive mean curve, which no relabelling of hidden units
        or components changes (raw weights are not identified); SVI fits: None."""
        return ["log_lik", "mean_curve"] if self.is_mcmc else None

    @property
    def _draws(self) -> dict[str, jnp.ndarray]:
        return {k: jnp.asarray(v) for k, v in _unnest(self.samples).items()}

    @property
    def num_draws(self) -> int:
        return int(next(iter(self._draws.values())).shape[0])

    @property
    def _forward(self) -> Callable:
        m: MDN = self.model
        return _forward_fn(m.n_components, m.hidden, m.activation, m.min_scale)

    def _components(self, x: Any) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        """Per draw and point, in the fit's component order: log weights, means, stds (S, n, K).

        Draws go through the network in blocks so the hidden activations stay below ~2^24 numbers."""
        x, _ = _as_xy(x, None, width=int(self.info["d"]))
        draws, xj = self._draws, jnp.asarray(x)
        S = self.num_draws
        block = max(1, min(S, 2**24 // (len(x) * max((*self.model.hidden, 1)))))
        parts = [self._forward({k: v[i:i + block] for k, v in draws.items()}, xj) for i in range(0, S, block)]
        order = np.asarray(self.arrays["order"])[:, None, :]
        return tuple(np.take_along_axis(np.concatenate([np.asarray(p) for p in a], 0), order, axis=-1)
                     for a in zip(*parts, strict=True))

    # per-component answers
    def predict(self, x: Any, draws: bool = False) -> dict[str, np.ndarray]:
        """Mixing weights, means and standard deviations of each component at ``x``: (n, K) arrays.

        Bayesian fits: posterior means over draws; ``draws=True`` returns every draw, (S, n, K).
        """
        logw, mu, sigma = self._components(x)
        out = {"weights": np.exp(logw), "means": mu, "stds": sigma}
        return {k: np.asarray(v if draws else v.mean(axis=0)) for k, v in out.items()}

    def mean(self, x: Any) -> np.ndarray:
        """Predictive mean E[y | x] (n,)."""
        return np.asarray(_moments(*self._components(x))[0])

    def std(self, x: Any) -> np.ndarray:
        """Predictive standard deviation sd[y | x] (n,): within components, between them, and between draws."""
        return np.asarray(_moments(*self._components(x))[1])

    def log_likelihood(self, x: Any, y: Any) -> np.ndarray:
        """log p(y_i | x_i) per point (n,); for Bayesian fits log of the density averaged over draws."""
        x, y = _as_xy(x, y, width=int(self.info["d"]))
        return np.asarray(_log_predictive(*self._components(x), jnp.asarray(y)))

    def responsibilities(self, x: Any, y: Any) -> np.ndarray:
        """p(z_i = k | x_i, y_i): each point's posterior over components (n, K), in the fit's order.

        Closed form (Bayes' rule per component); for Bayesian fits the component joint is averaged over
        draws before normalising, matching :meth:`log_likelihood`.
        """
        x, y = _as_xy(x, y, width=int(self.info["d"]))
        return np.asarray(_responsibilities(*self._components(x), jnp.asarray(y)))

    def assign(self, x: Any, y: Any, temperature: int = 0, seed: int = 0, draw: int = 0) -> np.ndarray:
        """Component of each point by ``infer_discrete`` on the enumerated model at posterior draw ``draw``.

        ``temperature=0``: the most probable component; ``1``: a sample from the responsibilities.
        """
        if isinstance(temperature, bool) or temperature not in (0, 1):
            raise ValueError(f"temperature: expected 0 (most probable component) or 1 (a sample), got {temperature!r}")
        seed = check_seed(seed)
        draw = check_int(draw, "draw", minimum=0, maximum=self.num_draws - 1)
        x, y = _as_xy(x, y, width=int(self.info["d"]))
        weights = {k: v[draw] for k, v in self._draws.items()}
        model = handlers.substitute(config_enumerate(self.model.enumerated_model), data=weights)
        model = handlers.seed(model, rng_seed=seed)   # flax's placeholder initialisation needs a key
        discrete = infer_discrete(model, first_available_dim=-2, temperature=temperature,
                                  rng_key=jax.random.PRNGKey(seed))
        z = handlers.trace(discrete).get_trace(x, y)["z"]["value"]
        rank = np.argsort(self.arrays["order"][draw])           # network index -> reported position
        return rank[np.asarray(z)]

    # the predictive distribution
    def sample(self, x: Any, num_samples: int = 100, seed: int = 0) -> np.ndarray:
        """``num_samples`` draws of y at every x from the predictive: (num_samples, n).

        Each draw picks a posterior draw of the weights, a component by its weight, then y from it.
        """
        num_samples = check_int(num_samples, "num_samples", minimum=1)
        key = jax.random.PRNGKey(check_seed(seed))
        return np.asarray(_predictive_sample(*self._components(x), key, num_samples))

    def cdf(self, x: Any, y: Any) -> np.ndarray:
        """Predictive P(Y <= y_i | x_i) (n,)."""
        x, y = _as_xy(x, y, width=int(self.info["d"]))
        return np.asarray(_cdf(*self._components(x), jnp.asarray(y)))

    def quantiles(self, x: Any, q: Sequence[float] | float = (0.05, 0.5, 0.95)) -> np.ndarray:
        """Predictive quantiles (len(q), n) (or (n,) for a scalar q), by bisection on the mixture CDF."""
        qs = _levels(q)
        out = np.asarray(_mixture_quantiles(*self._components(x), jnp.asarray(qs)))
        return out[0] if np.ndim(q) == 0 else out

    def interval(self, x: Any, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Central predictive interval of probability ``level``: (lower, upper), each (n,)."""
        lo, hi = self.quantiles(x, _central(level))
        return lo, hi

    # scores
    def evaluate(self, x: Any, y: Any, *, logpdf: Any = None, **extras: Any) -> dict[str, float]:
        """Held-out scores: ``lpd`` (mean log predictive density), ``nll`` = -lpd, ``coverage_90`` (share of
        points inside the central 90% interval), ``rmse`` of the predictive mean and ``mean_std``.

        ``logpdf``: the true log-density, per point or as a function ``logpdf(x, y)`` (e.g.
        ``pz.data.two_branch_logpdf``); adds ``floor_nll`` (its mean NLL on the same points) and
        ``excess_nll`` = nll - floor_nll. Other extras are ignored.
        """
        x, y = _as_xy(x, y, width=int(self.info["d"]))
        comps, yj = self._components(x), jnp.asarray(y)
        lpd = float(jnp.mean(_log_predictive(*comps, yj)))
        lo, hi = np.asarray(_mixture_quantiles(*comps, jnp.asarray(_central(0.9))))
        mean, sd = (np.asarray(a) for a in _moments(*comps))
        out = {"lpd": lpd, "nll": -lpd, "coverage_90": float(np.mean((y >= lo) & (y <= hi))),
               "rmse": float(np.sqrt(np.mean((mean - y) ** 2))), "mean_std": float(np.mean(sd))}
        if logpdf is not None:
            true = logpdf(x, y) if callable(logpdf) else as_array(logpdf, "logpdf", ndim=1)
            check_same_length(y=y, logpdf=true)
            out["floor_nll"] = float(-np.mean(true))
            out["excess_nll"] = out["nll"] - out["floor_nll"]
        return out


# --- the predictive mixture, averaged over posterior draws: inputs (S, n, K) ------------------------------

def _levels(q: Any) -> np.ndarray:
    qs = as_array(np.atleast_1d(q), "q", ndim=1)
    if np.any((qs <= 0) | (qs >= 1)):
        raise ValueError(f"q: quantile levels must lie strictly between 0 and 1, got {qs.tolist()}")
    return qs


def _central(level: Any) -> tuple[float, float]:
    level = check_positive(level, "level")
    if level >= 1:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    return (1 - level) / 2, (1 + level) / 2


@jax.jit
def _log_predictive(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """log mean_s sum_k w_sk N(y | mu_sk, sigma_sk), per point (n,)."""
    per_draw = logsumexp(logw + norm.logpdf(y[None, :, None], mu, sigma), axis=-1)
    return logsumexp(per_draw, axis=0) - jnp.log(per_draw.shape[0])


@jax.jit
def _score_and_predict(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, y: jnp.ndarray,
                       key: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per draw: log p(y_i | x_i) and one draw of y at every x_i, (S, n) each."""
    mixture = dist.MixtureSameFamily(dist.Categorical(logits=logw), dist.Normal(mu, sigma))
    return mixture.log_prob(y), mixture.sample(key)


@jax.jit
def _responsibilities(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    joint = logsumexp(logw + norm.logpdf(y[None, :, None], mu, sigma), axis=0)   # (n, K)
    return jnp.exp(joint - logsumexp(joint, axis=-1, keepdims=True))


@partial(jax.jit, static_argnums=4)
def _predictive_sample(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, key: jnp.ndarray,
                       num_samples: int) -> jnp.ndarray:
    k_draw, k_y = jax.random.split(key)
    s = jax.random.randint(k_draw, (num_samples,), 0, logw.shape[0])
    mixture = dist.MixtureSameFamily(dist.Categorical(logits=logw[s]), dist.Normal(mu[s], sigma[s]))
    return mixture.sample(k_y)


@jax.jit
def _moments(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Predictive mean and standard deviation (n,) by the laws of total expectation and variance."""
    w = jnp.exp(logw)
    m = jnp.mean(jnp.sum(w * mu, -1), 0)
    second = jnp.mean(jnp.sum(w * (sigma**2 + mu**2), -1), 0)
    return m, jnp.sqrt(jnp.maximum(second - m**2, 0.0))


@jax.jit
def _cdf(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    return jnp.mean(jnp.sum(jnp.exp(logw) * norm.cdf((t[None, :, None] - mu) / sigma), -1), 0)


@jax.jit
def _mixture_quantiles(logw: jnp.ndarray, mu: jnp.ndarray, sigma: jnp.ndarray, qs: jnp.ndarray) -> jnp.ndarray:
    """Solve cdf(t) = q for t by bisection (len(q), n): the bracket [min(mu - 12 sigma), max(mu + 12 sigma)]
    holds every quantile of interest and 32 halvings shrink it below float32 resolution."""
    lo = jnp.min(mu - 12 * sigma, axis=(0, 2))
    hi = jnp.max(mu + 12 * sigma, axis=(0, 2))

    def solve(q):
        def body(_, bounds):
            a, b = bounds
            m = 0.5 * (a + b)
            below = _cdf(logw, mu, sigma, m) < q
            return jnp.where(below, m, a), jnp.where(below, b, m)

        a, b = jax.lax.fori_loop(0, 32, body, (lo, hi))
        return 0.5 * (a + b)

    return jax.lax.map(solve, qs)


MDN.fit_class = MDNFit


@lru_cache(maxsize=16)
def _param_template(net: MLP, d: int) -> dict[str, Any]:
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros((1, d))))["params"]
    return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)


@lru_cache(maxsize=16)
def _init_fn(net: MLP, d: int) -> Callable:
    """flax's initialisation of ``net`` for inputs of width d, jitted (one compile instead of many eager ops)."""
    return jax.jit(lambda key: net.init(key, jnp.zeros((1, d))))


def _inverse_softplus(u: float) -> float:
    """log(exp(u) - 1) without overflow: u + log(1 - exp(-u)) (a spread of y of 1e6 needs it)."""
    return u + math.log(-math.expm1(-u))


@lru_cache(maxsize=16)
def _forward_fn(n_components: int, hidden: tuple[int, ...], activation: str, min_scale: float) -> Callable:
    """Jitted forward pass over posterior draws, one per architecture (fits of one shape share it):
    draws of the weights (S, ...) and x (n, d) -> log mixing weights, means, scales, each (S, n, K)."""
    mdn = MDN(n_components, hidden, activation, min_scale=min_scale)

    def one(params: Mapping[str, Any], x: jnp.ndarray):
        logits, mu, sigma = mdn.head(mdn.net.apply({"params": _flax_params(params)}, x))
        return jax.nn.log_softmax(logits, axis=-1), mu, sigma

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


# --- truth for the article's problems, and the zoo entry ------------------------------------------------

_DATA = {"two_branch": (pz_data.two_branch, pz_data.two_branch_logpdf),
         "heteroscedastic": (pz_data.heteroscedastic, pz_data.heteroscedastic_logpdf)}


def _loader(name: str) -> Callable[[int], tuple[tuple[Any, ...], dict[str, Any]]]:
    make, logpdf = _DATA[name]

    def load(seed: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
        x, y = make(n=10_000, seed=seed)
        x_test, y_test = make(n=10_000, seed=seed + 10_000)
        return (x, y), {"dataset": name, "heldout": (x_test, y_test), "logpdf": logpdf}

    return load


def _report(fit: MDNFit, data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> tuple[dict, list[Path]]:
    from probzoo.plots import mdn as plots

    out_dir = Path(out_dir)
    x, y = data
    x_test, y_test = extras.get("heldout", data)
    metrics = fit.evaluate(x_test, y_test, logpdf=extras.get("logpdf"))
    name = extras.get("dataset")
    tag = f"mdn_{fit.method}_K{fit.model.n_components}"
    figs = [plots.data_and_samples(fit, x_test[:500], y_test[:500], out_dir / f"{tag}_samples.png"),
            plots.mean_std(fit, dataset=name, path=out_dir / f"{tag}_mean_std.png"),
            plots.components(fit, dataset=name, path=out_dir / f"{tag}_components.png")]
    return metrics, figs


def _compare(fits: dict[str, MDNFit], data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> list[Path]:
    """Predictive bands of every compared method side by side, over the training data."""
    from probzoo.plots import mdn as mdn_plots

    x, y = data
    return [mdn_plots.bands_per_method(fits, x, y, Path(out_dir) / "mdn_bands_per_method.png")]


register_entry(ZooEntry(
    name="mdn",
    model_class=MDN,
    description="mixture density regression (article 004): MLP -> K-Gaussian mixture over y",
    methods=MDN.methods,
    datasets={name: _loader(name) for name in ("two_branch", "heteroscedastic")},
    default_data="two_branch",
    report=_report,
    compare=_compare,
    tour_runs=[("map", {}), ("meanfield", {"num_steps": 1_560})],
    model_kwargs={"n_components": 2},
    dataset_model_kwargs={"two_branch": {"n_components": 2}, "heteroscedastic": {"n_components": 1}},
    compare_budget={"map": {}, "meanfield": {}, "nuts": {"num_warmup": 300, "num_samples": 300}},
))
