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

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate
from numpyro.contrib.module import random_flax_module
from numpyro.infer import NUTS, TraceEnum_ELBO, init_to_value
from numpyro.infer.autoguide import AutoDelta, AutoNormal
from numpyro.ops.indexing import Vindex

from probzoo.core import Family
from probzoo.infer import arviz_io
from probzoo.infer import engines as _engines
from probzoo.infer.diagnostics import guide_log_ratios, psis_khat, record_gradients, record_variational
from probzoo.infer.mcmc import run_mcmc
from probzoo.infer.posterior import mcmc_inference_data
from probzoo.infer.svi import OrderedTraceELBO, run_svi
from probzoo.models.base import BoundModel, ZooModel, runs_engines
from probzoo.models.mdn.fit import INVARIANT_POINTS, MDNFit, _add_invariants
from probzoo.models.mdn.mixture import _score_and_predict
from probzoo.models.mdn.network import (
    ACTIVATIONS,
    DEFAULT_BATCH,
    DEFAULT_LR,
    DEFAULT_STEPS,
    METHODS,
    NET,
    NUTS_MAX_WEIGHTS,
    PLATEAU,
    _as_xy,
    _flat_sites,
    _flax_params,
    _init_fn,
    _inverse_softplus,
    _nest,
    _param_template,
)
from probzoo.nn import MLP
from probzoo.validation import (
    check_choice,
    check_int,
    check_positive,
    check_seed,
)
from probzoo.zoo import register_model

# --- the model ---------------------------------------------------------------------------------------------

# NumPyro checks every value a distribution scores against its support, on every step of every fit (a mask
# and a select per site). The MDN's values are real numbers by construction: its weights are real, and fit
# refuses any x or y that is not a finite number before training starts. So its distributions skip the check,
# which took 2 of the 64 kernels of a MAP step at batch 32.
SUPPORT_CHECK = False


@register_model
class MDN(ZooModel):
    """Mixture density network: x -> MLP -> ``MixtureSameFamily(Categorical, Normal)`` over y.

    ``n_components`` K (K = 1 is the heteroscedastic Gaussian), ``hidden`` layer widths,
    ``activation`` (name), ``prior_scale`` of the Normal(0, .) prior on every weight, ``min_scale``: the
    floor under every component's standard deviation (``softplus(.) + min_scale``; keep it well below the
    smallest noise level of y), ``enumerated``: an explicit per-point component summed out by funsor.
    """

    fit_class = MDNFit
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
            prior = dist.Normal(0.0, self.prior_scale, validate_args=SUPPORT_CHECK)
            return random_flax_module(NET, self.net, prior=prior, input_shape=(1, d))

    # NumPyro models
    def mixture_model(self, x: Any, y: Any = None) -> None:
        """theta ~ N(0, s); y_i ~ sum_k w_k(x_i) N(mu_k(x_i), sigma_k(x_i)) (components summed in closed form)."""
        net = self._network(x.shape[1])
        with numpyro.plate("data", x.shape[0]) as idx:
            logits, mu, sigma = self.head(net(jnp.asarray(x)[idx]))
            mixture = dist.MixtureSameFamily(dist.Categorical(logits=logits, validate_args=SUPPORT_CHECK),
                                             dist.Normal(mu, sigma, validate_args=SUPPORT_CHECK),
                                             validate_args=SUPPORT_CHECK)
            numpyro.sample("y", mixture, obs=None if y is None else jnp.asarray(y)[idx])

    def enumerated_model(self, x: Any, y: Any = None) -> None:
        """theta ~ N(0, s); z_i ~ Cat(w(x_i)); y_i ~ N(mu_{z_i}(x_i), sigma_{z_i}(x_i)), z enumerated."""
        net = self._network(x.shape[1])
        with numpyro.plate("data", x.shape[0]) as idx:
            logits, mu, sigma = self.head(net(jnp.asarray(x)[idx]))
            z = numpyro.sample("z", dist.Categorical(logits=logits, validate_args=SUPPORT_CHECK),
                               infer={"enumerate": "parallel"})
            numpyro.sample("y", dist.Normal(Vindex(mu)[..., z], Vindex(sigma)[..., z], validate_args=SUPPORT_CHECK),
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
        schedule: str | None = None,
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
        devices: Any = None,
    ) -> MDNFit:
        """Fit the network to (x, y); returns an :class:`MDNFit`.

        SVI methods ("map", "meanfield"): Adam on minibatches of ``batch_size`` (None = full batch). ``schedule`` of the
        ``learning_rate``: "plateau" halves it whenever a round of 5 epochs has not improved the best round's mean
        training loss by 0.001 nats per point (full batch: 2 rounds of 25 steps) and stops the fit at the 7th halving
        (converged), ``num_steps`` its cap; "cosine" decays it to 1% over exactly ``num_steps`` steps; "constant" keeps
        it; ``optim`` replaces the optimiser. Defaults: map runs until converged ("plateau", at most 200 epochs),
        meanfield 3,000 steps along a cosine (both rounded up to whole epochs), batch 128, learning rate 0.003; a given
        ``num_steps`` means "cosine" unless ``schedule`` says otherwise; a minibatch "plateau" fit runs a round at a
        time (its progress, ``callback`` and checkpoints come once a round). ``num_draws`` posterior draws are kept
        (meanfield: 200; map: the point). ``callback``, ``checkpoint``, ``checkpoint_every`` and ``resume`` go to
        :func:`probzoo.infer.run_svi`; so does ``devices`` (None, N or "all"): each minibatch split over that many
        devices (:mod:`probzoo.infer.devices`); for "nuts", the chains split over them (the same draws per chain
        whatever their number).
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
                                  max_tree_depth=max_tree_depth, chain_method=chain_method, devices=devices)
        if batch_size is not None:
            batch_size = min(check_int(batch_size, "batch_size", minimum=1), n)
        spe = 1 if batch_size is None else n // batch_size
        if optim is not None and schedule is not None:
            raise ValueError(f"schedule: {schedule!r} does not apply when optim is given (optim replaces the "
                             "optimiser and its learning-rate schedule); pass one or the other")
        if schedule is None:
            schedule = "plateau" if num_steps is None and method == "map" and optim is None else "cosine"
        check_choice(schedule, "schedule", ("plateau", "cosine", "constant"))
        plateau = PLATEAU["full_batch" if batch_size is None else "minibatch"]
        rounds = plateau["round_steps"] if batch_size is None else spe * plateau["round_epochs"]  # steps a round
        if num_steps is None:
            default = rounds * plateau["max_rounds"] if schedule == "plateau" else DEFAULT_STEPS[method]
            num_steps = spe * math.ceil(default / spe)
        num_steps = check_int(num_steps, "num_steps", minimum=1)
        lr = check_positive(DEFAULT_LR[method] if learning_rate is None else learning_rate, "learning_rate")
        stop = None
        if optim is not None:
            schedule = "custom"
        elif schedule == "plateau":
            optim = optax.chain(optax.adam(lr), optax.contrib.reduce_on_plateau(
                factor=0.5, patience=plateau["patience"], rtol=0.0, atol=PLATEAU["tol"] * n,
                accumulation_size=rounds))
            last = 0.5 ** PLATEAU["halvings"]
            stop = partial(_converged, last=last)
        else:
            rate = optax.cosine_decay_schedule(lr, num_steps, alpha=0.01) if schedule == "cosine" else lr
            optim = optax.adam(rate)
        guide = self.make_guide(method, init)
        loss = TraceEnum_ELBO(max_plate_nesting=1) if self.enumerated else OrderedTraceELBO()
        # a minibatch "plateau" fit runs a round (5 epochs) a chunk: its rule changes the state only at a round's
        # end, so asking ``stop`` once a round stops it at the same step, with a fifth of the chunks (about 10 %
        # of a default fit's time); its progress, callback and checkpoints then come once a round
        chunk_size = rounds if schedule == "plateau" and batch_size is not None else None
        run = run_svi(self.model, guide, x, y, optim=optim, learning_rate=lr, loss=loss, num_steps=num_steps,
                      batch_size=batch_size, chunk_size=chunk_size, seed=seed, progress=progress, callback=callback,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, devices=devices,
                      settings={"model": "MDN", "config": self.get_config(), "method": method,
                                "learning_rate": lr, "schedule": schedule}, desc=f"MDN {method}", stop=stop)
        params = {k: v for k, v in run.params.items() if not k.endswith("$params")}
        if num_draws is None:
            num_draws = 1 if method == "map" else 100
        num_draws = check_int(num_draws, "num_draws", minimum=1)
        draws = run.sample_posterior(jax.random.PRNGKey(seed), num_draws)
        draws = {k: v for k, v in draws.items() if k.startswith(NET + "/")}
        info = {"n_train": n, "d": d, "num_steps": len(run.losses), "max_steps": num_steps,
                "converged": bool(stop(run.state)) if stop is not None else None,
                "batch_size": batch_size, "learning_rate": lr,
                "schedule": schedule, "steps_per_epoch": run.steps_per_epoch, "setup_time": run.setup_time,
                "loop_time": run.loop_time}
        fit = MDNFit.build(self, method, x, draws, params=_nest(params), losses=run.losses,
                           wall_time=run.wall_time, compile_time=run.compile_time, seed=seed, info=info)
        # built when fit.idata is first read (a MAP fit's caller may never read it; a variational fit reads it
        # below, to record k-hat), from copies of the data, which the caller may change afterwards
        fit.defer_idata(partial(fit.inference_data, np.array(x), np.array(y), seed=seed))
        if method != "map":  # the evidence of the fit's quality: PSIS k-hat over the guide's draws
            log_ratios = guide_log_ratios(self.model, guide, run.params, (x, y), seed=seed + 2)
            fit.info["khat"] = psis_khat(log_ratios)
            record_variational(fit.idata, run.losses, log_ratios)
        return fit

    # every other engine of the registry, on the closed-form mixture
    def bind(self, x: Any, y: Any, seed: int = 0) -> BoundModel:
        x, y = self._check_xy(x, y)
        d = x.shape[1]
        return BoundModel(name="MDN", model=self.mixture_model, args=(x, y), plate="data",
                          init=lambda s: self.init_values(s, d, x, y), build=partial(self._engine_fit, x, y),
                          quantities=partial(self._invariant_quantities, x, y))

    def _invariant_quantities(self, x: np.ndarray, y: np.ndarray, draws: Mapping[str, Any]) -> dict[str, Any]:
        """Per draw (chain, draw): the log-likelihood of the training data and the predictive mean at the
        fit's fixed inputs, which no relabelling of hidden units or components changes."""
        lead = np.shape(next(iter(draws.values())))[:2]
        flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in draws.items() if k.startswith(NET)}
        fit = MDNFit.build(self, "draws", x, flat, params={}, info={"d": int(x.shape[1])})
        ref = np.asarray(fit.arrays["x_reference"])
        grid = ref[np.linspace(0, len(ref) - 1, min(len(ref), INVARIANT_POINTS)).astype(int)]
        logw, mu, _ = fit._components(grid)
        mean = np.asarray(jnp.sum(jnp.exp(logw) * mu, -1))
        per_point, _ = _score_and_predict(*fit._components(x), jnp.asarray(y), jax.random.PRNGKey(0))
        log_lik = np.asarray(per_point).sum(axis=-1)
        return {"log_lik": log_lik.reshape(lead), "mean_curve": mean.reshape(lead + mean.shape[1:])}

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

    def draws_forward(self) -> Callable:
        """The compiled forward pass over posterior draws of the weights: (S, ...) draws and x (n, d) -> log
        mixing weights, means and scales, each (S, n, K); one program per architecture, shared by its fits."""
        return _forward_fn(self.n_components, self.hidden, self.activation, self.min_scale)

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
                  max_tree_depth: int, chain_method: str | None, devices: Any = None) -> MDNFit:
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
                       chain_method=chain_method, devices=devices)
        samples = {k: np.asarray(v) for k, v in run.mcmc.get_samples().items() if k.startswith(NET + "/")}
        idata = mcmc_inference_data(run.mcmc, observed_site="y", predictive_args=(x,), seed=seed,
                                    attrs={"model": "MDN", "method": "nuts"})
        idata = record_gradients(arviz_io.netcdf_safe(idata), run.warmup_steps, run.sample_steps)
        info = {"n_train": n, "d": d, "mcmc": True, "num_samples": num_samples, "num_warmup": num_warmup,
                "num_chains": num_chains, "chain_method": run.chain_method, "max_tree_depth": max_tree_depth}
        fit = MDNFit.build(self, "nuts", x, samples, params={}, idata=idata, wall_time=run.wall_time,
                           compile_time=float("nan"), seed=seed, info=info)
        _add_invariants(fit, x, num_chains)
        return fit



@lru_cache(maxsize=16)
def _forward_fn(n_components: int, hidden: tuple[int, ...], activation: str, min_scale: float) -> Callable:
    """Jitted forward pass over posterior draws, one per architecture (fits of one shape share it):
    draws of the weights (S, ...) and x (n, d) -> log mixing weights, means, scales, each (S, n, K)."""
    mdn = MDN(n_components, hidden, activation, min_scale=min_scale)

    def one(params: Mapping[str, Any], x: jnp.ndarray):
        logits, mu, sigma = mdn.head(mdn.net.apply({"params": _flax_params(params)}, x))
        return jax.nn.log_softmax(logits, axis=-1), mu, sigma

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def _converged(state: Any, last: float) -> bool:
    """Whether a "plateau" schedule has halved the learning rate down to ``last`` of it (the fit's end)."""
    scale = optax.tree_utils.tree_get(state.optim_state, "scale")
    return float(np.asarray(scale)) <= last * (1 + 1e-6)
