"""Every ArviZ call probzoo makes, in one module.

ArviZ 0.23 (the line that installs on Python 3.11) and ArviZ >= 1.0 differ in ``from_dict``, summary
columns and return types; keeping the calls here makes moving to 1.x a one-file change. Only API that
exists in both lines is used: from_numpyro, from_dict, from_netcdf, summary, ess, rhat, loo, compare.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import numpyro

if TYPE_CHECKING:
    import arviz as az


@cache
def _az() -> Any:
    """ArviZ, imported on first use: its import (xarray, SciPy's statistics, matplotlib) takes over a second,
    which a fit whose InferenceData is never asked for (or built later) need not wait for."""
    with warnings.catch_warnings():
        # arviz 0.23 announces its 1.0 refactor with a FutureWarning at import time.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def __getattr__(name: str) -> Any:  # ``arviz_io.az``: the arviz module, imported on first use
    if name == "az":
        return _az()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["add_group", "az", "compare", "ess", "from_mcmc", "from_samples", "load_netcdf", "loo", "netcdf_safe",
           "rhat", "summary"]

SVI_NOTE = (
    "variational fit: draws come from one guide, not from independent Markov chains, "
    "so r_hat and ESS are not convergence diagnostics here"
)


def _as_numpy(tree: Mapping[str, Any] | None, *, add_chain: bool) -> dict[str, np.ndarray] | None:
    if tree is None:
        return None
    out = {}
    for k, v in tree.items():
        arr = np.asarray(v)
        out[k] = arr[None] if add_chain else arr
    return out


def from_samples(
    posterior: Mapping[str, Any],
    *,
    log_likelihood: Mapping[str, Any] | None = None,
    posterior_predictive: Mapping[str, Any] | None = None,
    observed_data: Mapping[str, Any] | None = None,
    constant_data: Mapping[str, Any] | None = None,
    sample_stats: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    attrs: Mapping[str, Any] | None = None,
    chains: bool = False,
) -> az.InferenceData:
    """InferenceData from arrays of draws.

    With ``chains=False`` every array's leading axis is the draw axis and a single chain is added;
    with ``chains=True`` arrays already carry (chain, draw, ...).
    """
    add = not chains
    idata = _az().from_dict(
        posterior=_as_numpy(posterior, add_chain=add) or None,
        log_likelihood=_as_numpy(log_likelihood, add_chain=add),
        posterior_predictive=_as_numpy(posterior_predictive, add_chain=add),
        sample_stats=_as_numpy(sample_stats, add_chain=add),
        observed_data=_as_numpy(observed_data, add_chain=False),
        constant_data=_as_numpy(constant_data, add_chain=False),
        dims=dict(dims) if dims else None,
    )
    if attrs:
        for group in idata.groups():
            getattr(idata, group).attrs.update({k: str(v) for k, v in attrs.items()})
    return idata


# NumPyro's extra fields under the names ArviZ gives them (as ``az.from_numpyro`` does)
_SAMPLE_STATS = {"potential_energy": "lp", "adapt_state.step_size": "step_size", "num_steps": "n_steps",
                 "accept_prob": "acceptance_rate"}


def from_mcmc(mcmc: Any, *, log_likelihood: Mapping[str, Any] | None = None,
              posterior_predictive: Mapping[str, Any] | None = None,
              observed_data: Mapping[str, Any] | None = None, dims: Mapping[str, list[str]] | None = None,
              attrs: Mapping[str, Any] | None = None) -> az.InferenceData:
    """InferenceData from a finished ``numpyro.infer.MCMC``: its draws with the chains kept apart (for r_hat), its
    extra fields as sample_stats under ArviZ's names (``lp`` = -potential energy, ``n_steps``, ``tree_depth``,
    ``diverging``, ...), and the groups the caller computed, each (chain, draw, ...): ``log_likelihood``,
    ``posterior_predictive``; ``observed_data`` without those axes.

    ``az.from_numpyro`` would evaluate the model op by op (its observed data, its log-likelihood), a compilation
    per operation; probzoo computes those as compiled programs (:mod:`probzoo.infer.posterior`).
    """
    stats = {}
    for field, value in mcmc.get_extra_fields(group_by_chain=True).items():
        if isinstance(value, (dict, tuple)):
            continue
        value = np.asarray(value)
        stats[_SAMPLE_STATS.get(field, field)] = -value if field == "potential_energy" else value
        if field == "num_steps":
            stats["tree_depth"] = np.log2(value).astype(int) + 1
    return from_samples(mcmc.get_samples(group_by_chain=True), log_likelihood=log_likelihood,
                        posterior_predictive=posterior_predictive, observed_data=observed_data,
                        sample_stats=stats or None, dims=dims, chains=True,
                        attrs={"inference_library": "numpyro", "inference_library_version": numpyro.__version__,
                               **(attrs or {})})


def summary(idata: az.InferenceData, var_names: list[str] | None = None, *, diagnostics: bool = True):
    """``az.summary``; only the statistics (no r_hat/ESS) when ``diagnostics`` is False."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().summary(idata, var_names=var_names, kind="all" if diagnostics else "stats")


def loo(idata: az.InferenceData, var_name: str | None = None, pointwise: bool = False):
    """PSIS-LOO (``az.loo``) on the fit's pointwise log-likelihood."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().loo(idata, var_name=var_name, pointwise=pointwise)


def compare(fits: Mapping[str, az.InferenceData], var_name: str | None = None):
    """``az.compare`` of several fits by ELPD-LOO."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().compare(dict(fits), ic="loo", var_name=var_name)


def rhat(idata_or_array: Any, **kwargs: Any):
    """``az.rhat``: on an InferenceData or Dataset, or a float for an array of shape (chain, draw)."""
    if isinstance(idata_or_array, (np.ndarray, jax.Array)):
        return _scalar(_az().rhat, idata_or_array, **kwargs)
    return _az().rhat(idata_or_array, **kwargs)


def ess(idata_or_array: Any, **kwargs: Any):
    """``az.ess`` (bulk by default): on an InferenceData or Dataset, or a float for an array (chain, draw)."""
    if isinstance(idata_or_array, (np.ndarray, jax.Array)):
        return _scalar(_az().ess, idata_or_array, **kwargs)
    return _az().ess(idata_or_array, **kwargs)


def _scalar(stat: Any, draws: Any, **kwargs: Any) -> float:
    # chains that never move (a sampler frozen by saturated weights) have no within-chain variance: their
    # r_hat and ESS are undefined, not the number of draws that az.ess reports for a constant array
    draws = np.asarray(draws)
    per_chain = draws.reshape(draws.shape[0] if draws.ndim > 1 else 1, -1)
    if per_chain.size == 0 or np.all(per_chain.max(axis=1) == per_chain.min(axis=1)):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.asarray(stat(draws, **kwargs)).item())


def netcdf_safe(idata: az.InferenceData, sep: str = ".") -> az.InferenceData:
    """A copy with "/" replaced by ``sep`` in every variable and dimension name (netCDF forbids "/", which
    NumPyro puts in the names of scoped sites such as ``random_flax_module``'s "net/Dense_0.kernel")."""
    names: dict[str, str] = {}
    for group in idata.groups():
        ds = getattr(idata, group)
        names.update({str(n): str(n).replace("/", sep) for n in [*ds.variables, *ds.dims] if "/" in str(n)})
    return idata.rename(names) if names else idata


def add_group(idata: az.InferenceData, name: str, variables: Mapping[str, tuple[list[str], Any]]) -> az.InferenceData:
    """Add a group outside ArviZ's schema (e.g. a training loss trace) to ``idata``, in place; returns it.
    ``variables`` maps a name to (dims, array). Saved and loaded with the rest by netCDF."""
    import xarray as xr

    ds = xr.Dataset({k: (list(dims), np.asarray(v)) for k, (dims, v) in variables.items()})
    idata.add_groups({name: ds})
    return idata


def to_netcdf(idata: az.InferenceData, path: str) -> None:
    idata.to_netcdf(path, engine="h5netcdf")


def load_netcdf(path: str) -> az.InferenceData:
    """Read an InferenceData fully into memory (so the file can be moved or replaced afterwards)."""
    idata = _az().from_netcdf(path, engine="h5netcdf")
    for group in idata.groups():
        getattr(idata, group).load()
    return idata
