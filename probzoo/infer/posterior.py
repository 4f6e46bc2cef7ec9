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
from numpyro.infer import Predictive
from numpyro.infer.util import log_likelihood

from probzoo.infer import arviz_io
from probzoo.infer.programs import call_compiled, fresh_guide

__all__ = ["guide_draws", "mcmc_inference_data", "svi_inference_data"]


def guide_draws(guide: Callable, params: Mapping[str, Any], num_samples: int, seed: int,
                *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    """``num_samples`` draws of every latent site of ``guide`` at ``params`` (leading axis = draw)."""

    def program(key: Any, params: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        return Predictive(fresh_guide(guide), params=params, num_samples=num_samples)(key, *args, **kwargs)

    draws = call_compiled(program, jax.random.PRNGKey(seed), dict(params), tuple(args), dict(kwargs))
    return {k: np.asarray(v) for k, v in draws.items() if not k.startswith("_")}


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


def mcmc_inference_data(mcmc: Any, *, observed_site: str | None = None, predictive_args: Sequence[Any] = (),
                        predictive_kwargs: Mapping[str, Any] | None = None, seed: int = 0,
                        dims: Mapping[str, list[str]] | None = None, attrs: Mapping[str, Any] | None = None):
    """InferenceData for an MCMC fit via ``az.from_numpyro`` with a posterior predictive of ``observed_site``."""
    pp = None
    if observed_site is not None:
        samples = mcmc.get_samples()
        pred = Predictive(mcmc.sampler.model, posterior_samples=samples, return_sites=[observed_site])(
            jax.random.PRNGKey(seed + 1), *predictive_args, **dict(predictive_kwargs or {}))
        n_chains = mcmc.num_chains
        pp = {k: np.asarray(v).reshape((n_chains, -1) + tuple(np.shape(v)[1:])) for k, v in pred.items()}
    return arviz_io.from_mcmc(mcmc, posterior_predictive=pp, dims=dims,
                              attrs={"inference": "mcmc", **(attrs or {})})
