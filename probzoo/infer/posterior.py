"""Posterior draws and InferenceData for SVI and MCMC fits, built with NumPyro's own tools.

For SVI the guide is the posterior: ``Predictive(guide)`` draws from it, ``log_likelihood`` scores
the data under each draw and ``Predictive(model)`` gives the posterior predictive, so ``az.summary``,
``az.loo`` and ``az.plot_ppc`` work the same on variational and MCMC fits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from numpyro import handlers
from numpyro.infer import Predictive, init_to_sample
from numpyro.infer.util import log_likelihood

from probzoo.infer import arviz_io
from probzoo.infer.programs import call_compiled, call_draws, call_set_up, fresh_guide

__all__ = ["guide_draws", "mcmc_inference_data", "observed_values", "plate_dims", "pointwise_log_likelihood",
           "svi_inference_data"]


def guide_draws(guide: Callable, params: Mapping[str, Any], num_samples: int, seed: int,
                *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    """``num_samples`` draws of every latent site of ``guide`` at ``params`` (leading axis = draw)."""

    def program(key: Any, params: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        return Predictive(fresh_guide(guide), params=params, num_samples=num_samples)(key, *args, **kwargs)

    draws = call_draws(program, jax.random.PRNGKey(seed), dict(params), tuple(args), dict(kwargs))
    return {k: np.asarray(v) for k, v in draws.items() if not k.startswith("_")}


def pointwise_log_likelihood(model: Callable, draws: Mapping[str, Any], args: Sequence[Any] = (),
                             kwargs: Mapping[str, Any] | None = None, *, batch_ndims: int = 1) -> dict[str, np.ndarray]:
    """``numpyro.infer.log_likelihood`` of every observed site of ``model`` under each of ``draws`` (whose
    leading ``batch_ndims`` axes index the draws) as one compiled program."""

    def program(draws: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        return log_likelihood(model, draws, *args, batch_ndims=batch_ndims, **kwargs)

    ll = call_compiled(program, dict(draws), tuple(args), dict(kwargs or {}))
    return {k: np.asarray(v) for k, v in ll.items()}


def svi_inference_data(
    model: Callable,
    guide: Callable,
    params: Mapping[str, Any],
    args: Sequence[Any],
    *,
    observed: Mapping[str, Any],
    predictive_args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    num_samples: int = 100,
    seed: int = 0,
    posterior: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, np.ndarray]]:
    """InferenceData for an SVI fit; returns it with the posterior draws used.

    ``args``/``kwargs`` call the model with its observations (for log-likelihoods); ``predictive_args``
    call it with the observations left out (for the posterior predictive of the sites in ``observed``).
    """
    kwargs = dict(kwargs or {})
    if posterior is None:
        posterior = guide_draws(guide, params, num_samples, seed, *args, **kwargs)
    posterior = {k: np.asarray(v) for k, v in posterior.items()}

    def pointwise(params: dict[str, Any], posterior: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        return log_likelihood(handlers.substitute(model, data=params), posterior, *args, **kwargs)

    def predict(key: Any, params: dict[str, Any], posterior: dict[str, Any], args: tuple,
                kwargs: dict[str, Any]) -> Any:
        return Predictive(handlers.substitute(model, data=params), posterior_samples=posterior,
                          return_sites=list(observed))(key, *args, **kwargs)

    ll = call_compiled(pointwise, dict(params), posterior, tuple(args), kwargs)
    ll = {k: np.asarray(v) for k, v in ll.items() if k in observed}
    pred_args = tuple(predictive_args) if predictive_args is not None else tuple(args)
    pp = call_compiled(predict, jax.random.PRNGKey(seed + 1), dict(params), posterior, pred_args, kwargs)
    pp = {k: np.asarray(v) for k, v in pp.items() if k in observed}
    attrs = {"inference": "svi", "note": arviz_io.SVI_NOTE, **(attrs or {})}
    idata = arviz_io.from_samples(posterior, log_likelihood=ll, posterior_predictive=pp,
                                  observed_data={k: np.asarray(v) for k, v in observed.items()},
                                  dims=dims, attrs=attrs)
    return idata, posterior


def plate_dims(model: Callable, args: Sequence[Any] = (),
               kwargs: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """The names of the plates over each site's batch axes, outermost first (e.g. ``{"y": ["data"]}``): the
    dimension names ``az.from_numpyro`` gives a site, read from an abstract trace of the model (no computation:
    ``jax.eval_shape``)."""
    names: dict[str, list[str]] = {}

    def trace() -> None:
        # init_to_sample stands in for sites without a sampler (ImproperUniform), as in ArviZ
        seeded = handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_sample)
        for name, site in handlers.trace(seeded).get_trace(*args, **dict(kwargs or {})).items():
            batch = [f.name for f in sorted(site["cond_indep_stack"], key=lambda f: f.dim)]
            event = list(site.get("infer", {}).get("event_dims", []))
            if site["type"] in ("sample", "deterministic") and (batch or event):
                names[name] = batch + event

    jax.eval_shape(trace)
    return names


def observed_values(model: Callable, args: Sequence[Any] = (),
                    kwargs: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The value of every observed site of ``model`` on ``args``/``kwargs`` (one small compiled program)."""

    def program(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        seeded = handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_sample)
        return {name: site["value"] for name, site in handlers.trace(seeded).get_trace(*args, **kwargs).items()
                if site["type"] == "sample" and site["is_observed"]}

    return {k: np.asarray(v) for k, v in call_set_up(program, tuple(args), dict(kwargs or {})).items()}


def mcmc_inference_data(mcmc: Any, *, observed_site: str | None = None, predictive_args: Sequence[Any] = (),
                        predictive_kwargs: Mapping[str, Any] | None = None, seed: int = 0,
                        dims: Mapping[str, list[str]] | None = None, attrs: Mapping[str, Any] | None = None):
    """InferenceData for an MCMC fit (:func:`probzoo.infer.arviz_io.from_mcmc`), with the groups
    ``az.from_numpyro`` gives it: for a model, its observed data and their pointwise log-likelihood under each
    draw, on the data the chains ran on; with ``observed_site``, that site's posterior predictive at
    ``predictive_args``. Each is computed as one compiled program (ArviZ would run the model op by op).
    Every site's dimensions are named after its plates unless ``dims`` names them.
    """
    model, n_chains = mcmc.sampler.model, mcmc.num_chains
    attrs = {"inference": "mcmc", **(attrs or {})}
    if model is None:  # a kernel without a NumPyro model (a potential): its draws and statistics only
        return arviz_io.from_mcmc(mcmc, dims=dims, attrs=attrs)
    # the data the chains ran on, as NumPyro records them on the MCMC object (and az.from_numpyro reads them)
    args, kwargs = tuple(mcmc._args), dict(mcmc._kwargs)
    samples = mcmc.get_samples(group_by_chain=True)
    ll = pointwise_log_likelihood(model, samples, args, kwargs, batch_ndims=2)
    pp = None
    if observed_site is not None:
        def predict(key: Any, samples: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> Any:
            return Predictive(model, posterior_samples=samples, return_sites=[observed_site])(key, *args, **kwargs)

        flat = {k: np.reshape(v, (-1, *np.shape(v)[2:])) for k, v in samples.items()}
        pred = call_compiled(predict, jax.random.PRNGKey(seed + 1), flat, tuple(predictive_args),
                             dict(predictive_kwargs or {}))
        pp = {k: np.asarray(v).reshape((n_chains, -1) + tuple(np.shape(v)[1:])) for k, v in pred.items()}
    return arviz_io.from_mcmc(mcmc, log_likelihood=ll, posterior_predictive=pp,
                              observed_data=observed_values(model, args, kwargs) or None,
                              dims=dims if dims is not None else plate_dims(model, args, kwargs), attrs=attrs)
