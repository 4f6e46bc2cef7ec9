"""The registry of inference engines, and the engines that run on any model with continuous latents.

An engine is written once and runs on every model that meets its needs (``supports``). The generic
engines here take a :class:`probzoo.core.Model` (a NumPyro model function bound to its data):

| name | family | what runs |
| --- | --- | --- |
| map | optimisation | ``AutoDelta`` + SVI (the mode of the posterior density) |
| laplace | variational | ``AutoLaplaceApproximation``: a Gaussian at the MAP with the inverse Hessian as covariance |
| meanfield | variational | ``AutoNormal``: independent Gaussians |
| lowrank | variational | ``AutoLowRankMultivariateNormal``: a Gaussian with low-rank-plus-diagonal covariance |
| fullrank | variational | ``AutoMultivariateNormal``: a Gaussian with full covariance |
| flow | variational | ``AutoIAFNormal``: an inverse autoregressive normalising flow |
| nuts, hmc | mcmc | NumPyro ``NUTS`` / ``HMC`` |
| sa | mcmc | NumPyro ``SA`` (sample adaptive MCMC, gradient-free) |
| barker | mcmc | NumPyro ``BarkerMH`` (gradient-informed random walk) |
| hmcecs | mcmc | NumPyro ``HMCECS``: HMC with energy-conserving subsampling of the data plate |

All variational engines minimise the negative ELBO with Adam on a cosine-decayed learning rate through
:func:`probzoo.infer.run_svi`, then draw ``num_draws`` samples from the fitted guide; the MCMC engines run
through :func:`probzoo.infer.run_mcmc`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer import HMC, HMCECS, MCMC, NUTS, SA, SVI, BarkerMH, init_to_median, init_to_uniform, init_to_value
from numpyro.infer import autoguide as ag
from numpyro.infer.util import unconstrain_fn
from numpyro.primitives import Messenger

from probzoo.core import Engine, Family
from probzoo.infer import arviz_io
from probzoo.infer.diagnostics import (
    KHAT_DRAWS,
    gradients_per_step,
    guide_log_ratios,
    psis_khat,
    record_gradients,
    record_variational,
)
from probzoo.infer.mcmc import run_counting_gradients, run_mcmc
from probzoo.infer.posterior import mcmc_inference_data, pointwise_log_likelihood
from probzoo.infer.programs import is_array
from probzoo.infer.svi import OrderedTraceELBO, run_svi
from probzoo.validation import check_int, check_positive

__all__ = ["engine", "engines", "generic_names", "markdown_table", "mcmc_engine", "needs_continuous", "register",
           "registered", "svi_engine", "vmapped_chains", "with_max_dimension"]

_REGISTRY: dict[str, Engine] = {}


def register(eng: Engine) -> Engine:
    """Add an engine to the registry (model packages register their model-specific engines here)."""
    if eng.name in _REGISTRY:
        raise ValueError(f"engine: {eng.name!r} is registered already")
    _REGISTRY[eng.name] = eng
    return eng


def registered() -> dict[str, Engine]:
    """Every engine: the generic ones in the order of this module, then each zoo model's own, in the
    catalogue's order of models (the same whatever was imported first)."""
    from probzoo import zoo  # the catalogue imports the model packages, which register their engines

    order = zoo.model_order()
    generic = [e for e in _REGISTRY.values() if e.generic]
    own = sorted((e for e in _REGISTRY.values() if not e.generic), key=lambda e: order.get(e.owner, len(order)))
    return {e.name: e for e in [*generic, *own]}


def generic_names() -> tuple[str, ...]:
    """The engines that run on any model their ``supports`` accepts (not one model's own algorithms)."""
    return tuple(name for name, e in _REGISTRY.items() if e.generic)


def engine(name: Any) -> Engine:
    """The engine called ``name``; a ValueError lists the known ones."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    known = registered()  # a zoo model's own engine, registered when its package is first imported
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"method: unknown engine {name!r}; known engines: {', '.join(known)}")
    return known[name]


def engines():
    """A ``pandas.DataFrame`` of every engine: name, family, what it runs, what it applies to, its budget,
    and which models it runs on ("any model it supports" for a generic engine; a zoo model's own algorithm
    names its model)."""
    import pandas as pd

    rows = [{"name": e.name, "family": str(e.family), "description": e.description, "applies_to": e.applies_to,
             "runs_on": _runs_on(e), "budget": ", ".join(f"{k}={v}" for k, v in e.budget.items())}
            for e in registered().values()]
    return pd.DataFrame(rows).set_index("name")


def _runs_on(e: Engine) -> str:
    return "any model it supports" if e.generic else f"pz.{e.owner}"


# --- what a model offers an engine --------------------------------------------------------------------------
def model_trace(model: Any) -> dict[str, Any]:
    """One execution trace of the bound model (cached on the model: tracing runs the model eagerly)."""
    cached = getattr(model, "_probzoo_trace", None)
    if cached is None:
        cached = handlers.trace(handlers.seed(model.model, 0)).get_trace(*model.args, **model.kwargs)
        try:
            model._probzoo_trace = cached
        except AttributeError:
            pass
    return cached


def latent_sites(model: Any) -> dict[str, Any]:
    return {k: s for k, s in model_trace(model).items()
            if s["type"] == "sample" and not s["is_observed"] and not s.get("infer", {}).get("is_auxiliary")}


def observed_sites(model: Any) -> dict[str, Any]:
    return {k: s for k, s in model_trace(model).items() if s["type"] == "sample" and s["is_observed"]}


def latent_dimension(model: Any) -> int:
    """The number of unconstrained coordinates of the latent sites."""
    total = 0
    for site in latent_sites(model).values():
        shape = jnp.shape(site["value"])
        if site["fn"].support.is_discrete:
            total += int(np.prod(shape))
        else:  # e.g. a Dirichlet's K probabilities are K - 1 free coordinates
            total += int(np.prod(biject_to(site["fn"].support).inverse_shape(shape)))
    return total


def needs_continuous(name: str) -> Callable[[Any], str | None]:
    """``supports`` for engines that need every latent site continuous (and at least one latent)."""

    def supports(model: Any) -> str | None:
        latents = latent_sites(model)
        if not latents:
            return f"{name}: the model has no latent sample sites to infer"
        discrete = [k for k, s in latents.items() if s["fn"].support.is_discrete]
        if discrete:
            return (f"{name}: latent site {discrete[0]!r} is discrete; this engine needs continuous latents "
                    "(sum it out with enumeration, or use an engine for discrete latents)")
        if not observed_sites(model):
            return f"{name}: the model has no observed sites; pass the observations in the data"
        return None

    return supports


def with_max_dimension(name: str, base: Callable[[Any], str | None], limit: int,
                        why: str) -> Callable[[Any], str | None]:
    def supports(model: Any) -> str | None:
        reason = base(model)
        if reason is None and (d := latent_dimension(model)) > limit:
            return f"{name}: {d:,} latent coordinates; {why} (at most {limit:,})"
        return reason

    return supports


def _init_strategy(model: Any, seed: int):
    values = model.init_values(seed) if hasattr(model, "init_values") else None
    return init_to_value(values=dict(values)) if values else init_to_median(num_samples=15)


def chain_starts(model: Any, seed: int, num_chains: int) -> tuple[Any, dict[str, Any] | None, str]:
    """Over-dispersed starting points for ``num_chains`` MCMC chains, so that chains that have not mixed
    disagree and r_hat says so: (init strategy, per-chain unconstrained values or None, a description).

    A model that offers starting values gives each chain its own: ``chain_init(seed, chain)`` where it has
    one (e.g. UKR: its starting latents turned by a random rotation per chain), else
    ``init_values(seed + chain)`` (e.g. the MDN: a network initialised from another seed). Any other model
    starts each chain at its own uniform draw in (-2, 2) on the unconstrained scale (Stan's default).
    """
    latents = sorted(latent_sites(model))
    per_chain = getattr(model, "chain_init", None)
    values = [per_chain(seed, c) if per_chain is not None else model.init_values(seed + c)
              for c in range(num_chains)] if hasattr(model, "init_values") else []
    if values and all(v and set(latents) <= set(v) for v in values):
        unconstrained = [unconstrain_fn(model.model, model.args, model.kwargs, {k: v[k] for k in latents})
                         for v in values]
        stacked = {k: jnp.stack([jnp.asarray(u[k]) for u in unconstrained]) for k in latents}
        if num_chains == 1:
            stacked = {k: v[0] for k, v in stacked.items()}
        how = "the model's own starting values, one set per chain" if per_chain is None else \
            "the model's own starting values, turned for each chain"
        return init_to_value(values=dict(values[0])), stacked, how
    return init_to_uniform(radius=2.0), None, "uniform in (-2, 2) on the unconstrained scale, a draw per chain"


# --- building fits ---------------------------------------------------------------------------------------------
def _observed(model: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(s["value"]) for k, s in observed_sites(model).items()}


def _invariants(model: Any, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    fn = getattr(model, "invariants", None)
    return {k: np.asarray(v) for k, v in (fn(draws) if fn is not None else {}).items()}


def _make_fit(model: Any, eng: Engine, *, params: dict[str, Any], draws: dict[str, np.ndarray], chains: bool,
              losses: np.ndarray, wall: float, compile_time: float, seed: int, info: dict[str, Any],
              idata: Any = None, sample_stats: Mapping[str, np.ndarray] | None = None) -> Any:
    """The model's Fit from an engine's draws (leading (chain, draw) axes when ``chains``, else (draw,))."""
    if not chains:
        draws = {k: v[None] for k, v in draws.items()}  # one "chain" of independent draws
    invariants = _invariants(model, draws)
    info = {"mcmc": eng.family == Family.MCMC, "engine": eng.name, "family": str(eng.family),
            "invariants": sorted(invariants), **info}
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
    if getattr(model, "builds_idata", False):  # a zoo model scores its draws and builds its InferenceData itself
        info["num_chains"] = int(next(iter(draws.values())).shape[0])
        return model.fit_class(model=model, method=eng.name, params=params, losses=np.asarray(losses),
                               samples=flat, wall_time=wall, compile_time=compile_time, seed=seed, info=info,
                               sample_stats=sample_stats or {})
    if idata is None:
        ll = pointwise_log_likelihood(model.model, draws, model.args, model.kwargs, batch_ndims=2)
        note = {} if eng.family == Family.MCMC else {"note": arviz_io.SVI_NOTE}
        idata = arviz_io.from_samples({**draws, **invariants}, log_likelihood=ll, observed_data=_observed(model),
                                      chains=True, attrs={"inference": str(eng.family), "engine": eng.name, **note})
    elif invariants:
        idata.posterior = idata.posterior.assign(
            {k: (("chain", "draw") + tuple(f"{k}_dim_{i}" for i in range(v.ndim - 2)), v)
             for k, v in invariants.items()})
    return model.fit_class(model=model, method=eng.name, params=params, idata=idata, losses=np.asarray(losses),
                           samples=flat, wall_time=wall, compile_time=compile_time, seed=seed, info=info)


# --- variational and optimisation engines ----------------------------------------------------------------------
_SVI_BUDGET = {"num_steps": 5_000}
_SVI_OPTIONS = {"learning_rate": 1e-2, "num_particles": 1, "num_draws": 1_000}


def _svi_optimizer(learning_rate: float, num_steps: int) -> Any:
    # Adam on a learning rate decayed along a cosine to 1 %: the variational parameters settle instead of
    # wandering with the gradient noise of the one-sample ELBO at a constant rate
    return optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps, alpha=0.01))


def _svi_posterior(make_guide: Callable[[Any, Any, Mapping[str, Any]], Any]) -> Callable[..., Any]:
    """The SVI engine as a traced function of the data: initialise, ``num_steps`` updates in one ``lax.scan``,
    then ``num_draws`` guide draws (the engine's guide, ELBO and optimiser, started at the prior's median)."""
    def posterior(model_fn: Callable, budget: Mapping[str, Any], options: Mapping[str, Any], key: Any,
                  args: tuple, kwargs: Mapping[str, Any], num_draws: int) -> dict[str, Any]:
        guide = make_guide(model_fn, init_to_median(num_samples=15), options)
        svi = SVI(model_fn, guide, _svi_optimizer(options["learning_rate"], budget["num_steps"]),
                  OrderedTraceELBO(num_particles=options.get("num_particles", 1)))
        k_init, k_draw = jax.random.split(key)
        state = svi.init(k_init, *args, **kwargs)
        state, _ = jax.lax.scan(lambda st, _: svi.update(st, *args, **kwargs), state, None,
                                length=budget["num_steps"])
        return guide.sample_posterior(k_draw, svi.get_params(state), *args, sample_shape=(num_draws,), **kwargs)

    return posterior


def _svi_run(make_guide: Callable[[Any, Any, Mapping[str, Any]], Any], point: bool = False) -> Callable[..., Any]:
    def run(eng: Engine, model: Any, budget: Mapping[str, Any], options: Mapping[str, Any], seed: int,
            progress: bool) -> Any:
        t0 = time.perf_counter()
        num_steps = check_int(budget["num_steps"], "num_steps", minimum=1)
        lr = check_positive(options["learning_rate"], "learning_rate")
        num_particles = check_int(options.get("num_particles", 1), "num_particles", minimum=1)
        num_draws = check_int(options.get("num_draws", 1), "num_draws", minimum=1)
        devices, plate_size = options.get("devices"), None
        if devices is not None:  # each step's rows of the data plate are split over the devices
            plate_size = _plate_size(model)
            if plate_size is None:
                raise ValueError(f"devices: the model has no data plate named {getattr(model, 'plate', None)!r} "
                                 "whose rows the devices could split")
        guide = make_guide(model.model, _init_strategy(model, seed), options)
        svi = run_svi(model.model, guide, *model.args, optim=_svi_optimizer(lr, num_steps),
                      loss=OrderedTraceELBO(num_particles=num_particles), num_steps=num_steps, seed=seed,
                      progress=progress, desc=eng.name, devices=devices, data_size=plate_size,
                      plate=getattr(model, "plate", None) or "data", **model.kwargs)
        key = jax.random.PRNGKey(seed + 1)
        n = 1 if point else num_draws
        draws = svi.sample_posterior(key, n)
        draws = {k: np.asarray(v) for k, v in draws.items() if k in latent_sites(model) or k in _deterministic(model)}
        params = jax.tree.map(np.asarray, svi.params)  # a flow's parameters are nested
        info = {"num_steps": num_steps, "final_loss": float(np.mean(svi.losses[-max(1, num_steps // 20):])),
                "point_estimate": point, "num_draws": n, "setup_time": svi.setup_time}
        log_ratios = None
        if not point:  # the evidence of the fit's quality: PSIS k-hat over the guide's draws
            log_ratios = guide_log_ratios(model.model, guide, svi.params, model.args, model.kwargs,
                                          num_draws=max(KHAT_DRAWS, num_draws), seed=seed + 2)
            info["khat"] = psis_khat(log_ratios)
        fit = _make_fit(model, eng, params=params, draws=draws, chains=False, losses=svi.losses,
                        wall=time.perf_counter() - t0, compile_time=svi.compile_time, seed=seed, info=info)
        if log_ratios is not None:
            record_variational(fit.idata, svi.losses, log_ratios)
        return fit

    return run


def _deterministic(model: Any) -> set[str]:
    return {k for k, s in model_trace(model).items() if s["type"] == "deterministic"}


def _bound(run: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(model: Any, budget: Mapping[str, Any], options: Mapping[str, Any], seed: int, progress: bool) -> Any:
        return run(_REGISTRY[name], model, budget, options, seed, progress)

    return call


def svi_engine(name: str, family: Family, description: str, applies_to: str,
                make_guide: Callable[[Any, Any, Mapping[str, Any]], Any], *, extra: Mapping[str, Any] | None = None,
                max_dim: int | None = None, why: str = "", point: bool = False) -> Engine:
    supports = needs_continuous(name)
    if max_dim is not None:
        supports = with_max_dimension(name, supports, max_dim, why)
    # a point estimate has one "draw" and a deterministic objective: no particles, no draws to choose
    options = {"learning_rate": _SVI_OPTIONS["learning_rate"]} if point else {**_SVI_OPTIONS, **(extra or {})}
    options["devices"] = None  # None, N or "all": each step's rows of the data plate split over that many devices
    return register(Engine(name, family, description, applies_to, dict(_SVI_BUDGET), options, supports,
                           _bound(_svi_run(make_guide, point=point), name),
                           posterior=None if point else _svi_posterior(make_guide)))


svi_engine("map", Family.OPTIMISATION, "AutoDelta + SVI: the posterior mode", "continuous latents",
            lambda m, init, o: ag.AutoDelta(m, init_loc_fn=init), point=True)
svi_engine("laplace", Family.VARIATIONAL, "AutoLaplaceApproximation: Gaussian at the MAP, inverse Hessian",
            "continuous latents, moderate dimension",
            lambda m, init, o: ag.AutoLaplaceApproximation(m, init_loc_fn=init), max_dim=2_000,
            why="the Hessian is dense")
svi_engine("meanfield", Family.VARIATIONAL, "AutoNormal: independent Gaussians", "continuous latents",
            lambda m, init, o: ag.AutoNormal(m, init_loc_fn=init, init_scale=o["init_scale"]),
            extra={"init_scale": 0.1})
svi_engine("lowrank", Family.VARIATIONAL, "AutoLowRankMultivariateNormal: low-rank plus diagonal covariance",
            "continuous latents",
            lambda m, init, o: ag.AutoLowRankMultivariateNormal(m, init_loc_fn=init, rank=o["rank"],
                                                                init_scale=o["init_scale"]),
            extra={"rank": None, "init_scale": 0.1})
svi_engine("fullrank", Family.VARIATIONAL, "AutoMultivariateNormal: full covariance",
            "continuous latents, moderate dimension",
            lambda m, init, o: ag.AutoMultivariateNormal(m, init_loc_fn=init, init_scale=o["init_scale"]),
            extra={"init_scale": 0.1}, max_dim=2_000, why="the covariance has d^2 parameters")
svi_engine("flow", Family.VARIATIONAL, "AutoIAFNormal: inverse autoregressive normalising flow",
            "continuous latents",
            lambda m, init, o: ag.AutoIAFNormal(m, init_loc_fn=init, num_flows=o["num_flows"],
                                                hidden_dims=o["hidden_dims"]),
            extra={"num_flows": 3, "hidden_dims": None, "learning_rate": 3e-3})


# --- MCMC engines -------------------------------------------------------------------------------------------
_MCMC_BUDGET = {"num_warmup": 1_000, "num_samples": 1_000, "num_chains": 4}


class _subsample_data_plate(Messenger):
    """Declare ``subsample_size`` on the model's data plate, so HMCECS can propose subsets of its rows."""

    def __init__(self, fn: Callable, plate: str, subsample_size: int) -> None:
        super().__init__(fn)
        self.plate, self.subsample_size = plate, subsample_size

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "plate" and msg["name"] == self.plate and msg["args"][1] in (None, msg["args"][0]):
            size = msg["args"][0]
            if self.subsample_size < size:
                msg["args"] = (size, self.subsample_size)
                msg["value"] = None


def _plate_size(model: Any) -> int | None:
    plate = getattr(model, "plate", None)
    site = model_trace(model).get(plate) if plate else None
    return None if site is None else int(site["args"][0])


def local_latents(model: Any) -> list[str]:
    """Latent sites inside the data plate (one per row): held-out rows and subsets of rows need them too."""
    plate = getattr(model, "plate", None)
    return [k for k, s in latent_sites(model).items() if any(f.name == plate for f in s.get("cond_indep_stack", []))]


def _hmcecs_supports(model: Any) -> str | None:
    reason = needs_continuous("hmcecs")(model)
    if reason is not None:
        return reason
    n = _plate_size(model)
    if n is None:
        return f"hmcecs: the model has no data plate named {getattr(model, 'plate', None)!r} to subsample"
    if local := local_latents(model):
        return f"hmcecs: latent site {local[0]!r} lives in the {model.plate!r} plate; only global latents can be " \
               "sampled on subsets of rows"
    # the observations must be indexed by the plate's indices (obs=y[idx]) for subsets of rows to be scored
    wrapped = _subsample_data_plate(model.model, model.plate, 2)
    try:
        tr = handlers.trace(handlers.seed(wrapped, 0)).get_trace(*model.args, **model.kwargs)
    except Exception as err:  # noqa: BLE001 - any failure means the model cannot run on a subset
        return f"hmcecs: the model fails on a subset of its {model.plate!r} plate ({type(err).__name__}); " \
               "index the observations by the plate (with plate(...) as idx: ... obs=y[idx])"
    for name, site in tr.items():
        in_plate = any(f.name == model.plate for f in site.get("cond_indep_stack", []))
        if site["type"] == "sample" and site["is_observed"] and in_plate:
            dim = next(f.dim for f in site["cond_indep_stack"] if f.name == model.plate)
            if np.shape(site["value"])[dim] != 2:
                return (f"hmcecs: observed site {name!r} is not indexed by the {model.plate!r} plate; write "
                        "with plate(...) as idx: ... obs=y[idx]")
    return None


def vmapped_chains(kernel: Any, model_args: tuple[Any, ...], model_kwargs: Mapping[str, Any],
                   budget: Mapping[str, Any], seed: int, fields: tuple[str, ...] = (),
                   init_params: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Chains of a kernel that NumPyro runs only one at a time, as one compiled program: a single-chain MCMC
    traced once and mapped over the chains' keys, split from the seed as NumPyro splits them for its own
    chains. No progress bar (the chains run inside one program). Returns (samples, extra fields), each with a
    leading chain axis; for kernels that count gradient evaluations, the extra fields include ``warmup_steps``
    and ``sample_steps`` (leapfrog steps per iteration). ``init_params`` (unconstrained, a leading chain axis)
    starts each chain at its own values."""
    # arrays (and dicts of arrays, such as weights) are traced as data, anything else is a constant
    arrays = [is_array(a) or (isinstance(a, dict) and bool(a) and all(map(is_array, jax.tree.leaves(a))))
              for a in model_args]

    def one_chain(key: Any, dyn_args: list[Any], kwargs: dict[str, Any],
                  start: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        it = iter(dyn_args)
        args = [next(it) if dynamic else a for a, dynamic in zip(model_args, arrays, strict=True)]
        mcmc = MCMC(kernel, num_warmup=budget["num_warmup"], num_samples=budget["num_samples"], num_chains=1,
                    progress_bar=False, jit_model_args=False)
        warm, steps = run_counting_gradients(mcmc, key, tuple(args), kwargs, fields, init_params=start)
        extra = mcmc.get_extra_fields()
        if steps is not None:  # gradient evaluations per iteration (one chain's)
            extra = {**extra, "warmup_steps": warm[0], "sample_steps": steps[0]}
        return mcmc.get_samples(), extra

    keys = jax.random.split(jax.random.PRNGKey(seed), budget["num_chains"])
    dyn_args = [a for a, dynamic in zip(model_args, arrays, strict=True) if dynamic]
    kwargs = {k: v for k, v in model_kwargs.items() if is_array(v)}
    static_kwargs = {k: v for k, v in model_kwargs.items() if not is_array(v)}
    program = jax.jit(jax.vmap(lambda k, d, kw, st: one_chain(k, d, {**kw, **static_kwargs}, st),
                               in_axes=(0, None, None, 0)))
    return program(keys, dyn_args, kwargs, init_params)


def _mcmc_run(make_kernel: Callable[[Any, Any, Mapping[str, Any]], Any],
              fields: tuple[str, ...] = ()) -> Callable[..., Any]:
    def run(eng: Engine, model: Any, budget: Mapping[str, Any], options: Mapping[str, Any], seed: int,
            progress: bool) -> Any:
        t0 = time.perf_counter()
        strategy, starts, how = chain_starts(model, seed, budget["num_chains"])
        kernel = make_kernel(model, strategy, {**options, "seed": seed})
        chain_method, devices = options.get("chain_method"), options.get("devices")
        own_chains = isinstance(kernel, (HMCECS, BarkerMH, SA)) and budget["num_chains"] > 1 and devices is None
        if chain_method is None and own_chains and jax.local_device_count() >= budget["num_chains"]:
            chain_method = "parallel"
        if chain_method in (None, "vectorized") and own_chains:
            # numpyro 0.22 cannot vectorise these kernels' chains, and one by one each chain compiles anew
            samples, extra = vmapped_chains(kernel, model.args, model.kwargs, budget, seed, fields, init_params=starts)
            chain_method, mcmc = "vectorized", None
            warm, steps = extra.pop("warmup_steps", None), extra.pop("sample_steps", None)
        else:
            r = run_mcmc(kernel, *model.args, num_warmup=budget["num_warmup"], num_samples=budget["num_samples"],
                         num_chains=budget["num_chains"], seed=seed, progress=progress, chain_method=chain_method,
                         extra_fields=fields, devices=devices, init_params=starts, **model.kwargs)
            mcmc, chain_method = r.mcmc, r.chain_method
            samples, extra = mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields(group_by_chain=True)
            warm, steps = r.warmup_steps, r.sample_steps
        if (per_step := gradients_per_step(kernel)) is not None:  # BarkerMH: one gradient an iteration; SA: none
            warm = np.full((budget["num_chains"], budget["num_warmup"]), per_step, np.int32)
            steps = np.full((budget["num_chains"], budget["num_samples"]), per_step, np.int32)
        draws = {k: np.asarray(v) for k, v in samples.items()
                 if k in latent_sites(model) or k in _deterministic(model)}
        info: dict[str, Any] = {"num_warmup": budget["num_warmup"], "num_samples": budget["num_samples"],
                                "num_chains": budget["num_chains"], "chain_method": chain_method, "chain_starts": how}
        if "diverging" in extra:
            info["divergences"] = int(np.sum(np.asarray(extra["diverging"])))
        if "num_steps" in extra:
            info["mean_leapfrog_steps"] = float(np.mean(np.asarray(extra["num_steps"])))
        if isinstance(kernel, HMCECS):
            info["subsample_size"] = _subsample_size(model, options)
        # HMCECS samples a model whose data plate is subsampled; its pointwise log-likelihood (and so the
        # InferenceData) is computed on the model itself, over every row
        # (and chains mapped in one program leave no MCMC object: their InferenceData is built from the draws)
        idata = None if isinstance(kernel, HMCECS) or mcmc is None or getattr(model, "builds_idata", False) \
            else mcmc_inference_data(mcmc, attrs={"engine": eng.name})
        stats = {name: np.asarray(extra[key]) for key, name in (("diverging", "diverging"), ("num_steps", "n_steps"))
                 if key in extra}
        if steps is not None:
            info["grad_evals"] = int(np.sum(steps) + (0 if warm is None else np.sum(warm)))
        fit = _make_fit(model, eng, params={k: v.mean(axis=(0, 1)) for k, v in draws.items()}, draws=draws,
                        chains=True, losses=np.zeros((0,), np.float32), wall=time.perf_counter() - t0,
                        compile_time=float("nan"), seed=seed, info=info, idata=idata, sample_stats=stats)
        record_gradients(fit.idata, warm, steps)
        return fit

    return run


def _mcmc_posterior(make_kernel: Callable[[Any, Any, Mapping[str, Any]], Any]) -> Callable[..., Any]:
    """The MCMC engine as a traced function of the data: one chain of ``num_warmup`` + ``num_samples``
    iterations started at the prior's median, thinned evenly to ``num_draws`` draws."""
    def posterior(model_fn: Callable, budget: Mapping[str, Any], options: Mapping[str, Any], key: Any,
                  args: tuple, kwargs: Mapping[str, Any], num_draws: int) -> dict[str, Any]:
        kernel = make_kernel(SimpleNamespace(model=model_fn), init_to_median(num_samples=15), options)
        mcmc = MCMC(kernel, num_warmup=budget["num_warmup"], num_samples=budget["num_samples"], num_chains=1,
                    progress_bar=False, jit_model_args=False)
        mcmc.run(key, *args, **kwargs)
        keep = np.linspace(0, budget["num_samples"] - 1, num_draws).round().astype(int)
        return {k: v[keep] for k, v in mcmc.get_samples().items()}

    return posterior


def mcmc_engine(name: str, description: str, applies_to: str, make_kernel: Callable[[Any, Any, Mapping], Any], *,
                 options: Mapping[str, Any], budget: Mapping[str, Any] | None = None,
                 fields: tuple[str, ...] = (), supports: Callable[[Any], str | None] | None = None,
                 traced: bool = True, vectorise_posterior: bool = True) -> Engine:
    return register(Engine(name, Family.MCMC, description, applies_to, dict(budget or _MCMC_BUDGET),
                           {"chain_method": None, "devices": None, **options}, supports or needs_continuous(name),
                           _bound(_mcmc_run(make_kernel, fields), name),
                           posterior=_mcmc_posterior(make_kernel) if traced else None,
                           vectorise_posterior=vectorise_posterior))


mcmc_engine("nuts", "NumPyro NUTS", "continuous, differentiable latents",
             lambda m, init, o: NUTS(m.model, init_strategy=init, max_tree_depth=o["max_tree_depth"],
                                     target_accept_prob=o["target_accept_prob"], dense_mass=o["dense_mass"]),
             options={"max_tree_depth": 10, "target_accept_prob": 0.8, "dense_mass": False},
             fields=("diverging", "num_steps"), vectorise_posterior=False)  # its trajectories' length varies
mcmc_engine("hmc", "NumPyro HMC: num_leapfrog steps per draw, adapted step size", "continuous, differentiable latents",
             lambda m, init, o: HMC(m.model, init_strategy=init, num_steps=o["num_leapfrog"], trajectory_length=None,
                                    target_accept_prob=o["target_accept_prob"], dense_mass=o["dense_mass"]),
             options={"num_leapfrog": 16, "target_accept_prob": 0.8, "dense_mass": False},
             fields=("diverging", "num_steps"))
mcmc_engine("sa", "NumPyro SA: sample adaptive MCMC, gradient-free", "continuous latents",
             lambda m, init, o: SA(m.model, init_strategy=init, adapt_state_size=o["adapt_state_size"],
                                   dense_mass=o["dense_mass"]),
             options={"adapt_state_size": None, "dense_mass": True},
             budget={"num_warmup": 10_000, "num_samples": 10_000, "num_chains": 4})
mcmc_engine("barker", "NumPyro BarkerMH: a gradient-informed random walk", "continuous, differentiable latents",
             lambda m, init, o: BarkerMH(m.model, init_strategy=init, target_accept_prob=o["target_accept_prob"],
                                         dense_mass=o["dense_mass"]),
             options={"target_accept_prob": 0.4, "dense_mass": True},
             budget={"num_warmup": 2_000, "num_samples": 2_000, "num_chains": 4})


def _subsample_size(model: Any, o: Mapping[str, Any]) -> int:
    """HMCECS's rows per subset: ``subsample_size``, by default a tenth of the data plate (at least 2)."""
    n = _plate_size(model)
    size = o["subsample_size"] if o["subsample_size"] is not None else max(2, min(n, math.ceil(n / 10)))
    return check_int(size, "subsample_size", minimum=1, maximum=n)


def _hmcecs_kernel(model: Any, init: Any, o: Mapping[str, Any]) -> Any:
    size = _subsample_size(model, o)
    wrapped = _subsample_data_plate(model.model, model.plate, size)
    proxy = None
    if o["map_steps"]:
        # the Taylor proxy of Quiroz et al. around the MAP keeps the subsampled likelihood's variance small
        guide = ag.AutoDelta(model.model, init_loc_fn=init)
        ref = run_svi(model.model, guide, *model.args, learning_rate=1e-2, num_steps=int(o["map_steps"]),
                      seed=o["seed"], **model.kwargs)
        proxy = HMCECS.taylor_proxy({k.removesuffix("_auto_loc"): v for k, v in ref.params.items()})
    return HMCECS(NUTS(wrapped, init_strategy=init), num_blocks=o["num_blocks"], proxy=proxy)


mcmc_engine("hmcecs", "NumPyro HMCECS: NUTS on subsets of the data plate (energy-conserving subsampling)",
             "models with a data plate", _hmcecs_kernel,
             options={"subsample_size": None, "num_blocks": 1, "map_steps": 1_000},
             supports=_hmcecs_supports, traced=False)  # its Taylor proxy needs a MAP fit of its own first


def markdown_table() -> str:
    """The engines as a Markdown table (docs/engines.md's, generated here so that it cannot drift)."""
    lines = ["| engine | family | what runs | applies to | runs on | budget (defaults) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for e in registered().values():
        budget = ", ".join(f"`{k}={v:_}`" if isinstance(v, int) else f"`{k}={v}`" for k, v in e.budget.items())
        runs_on = _runs_on(e) if e.generic else f"`{_runs_on(e)}`"
        lines.append(f"| `{e.name}` | {e.family} | {e.description} | {e.applies_to} | {runs_on} | {budget} |")
    return "\n".join(lines)
