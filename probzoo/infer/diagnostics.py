"""The evidence a fit carries of its own quality.

- **Variational fits** (Yao, Vehtari, Simpson & Gelman 2018, "Yes, but did it work?"): the Pareto shape
  k-hat of the importance ratios log p(theta, data) - log q(theta) over draws theta ~ q, fitted by
  Pareto-smoothed importance sampling (ArviZ's ``psislw``). k-hat < 0.5: q is close enough to the
  posterior for importance sampling to correct it (good); 0.5-0.7: usable, with slower convergence;
  > 0.7: q misses mass the posterior has (unreliable). The ratios are recorded in the fit's InferenceData
  (group ``variational``, with the ELBO trace) so the diagnostic survives save / load.
- **MCMC fits**: split r_hat and bulk / tail ESS (ArviZ) on the model's invariant quantities where it names
  them and on the raw sites, labelled apart; divergences; and the bulk ESS per gradient evaluation, counting
  the leapfrog steps of warm-up and sampling (NumPyro's ``num_steps``; warm-up steps are recorded in the
  ``warmup_sample_stats`` group).
- **Point estimates** (MAP) have no spread to judge: k-hat is reported as not applicable, with the reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from numpyro import handlers
from numpyro.infer import autoguide as ag
from numpyro.infer.util import log_density, potential_energy

from probzoo.infer import arviz_io
from probzoo.infer.programs import call_draws, fresh_guide, set_up

__all__ = ["KHAT_DRAWS", "fit_diagnostics", "gradient_field", "guide_log_ratios", "khat_reading", "psis_khat",
           "record_gradients", "record_variational", "table_columns"]

KHAT_DRAWS = 1_000  # guide draws behind k-hat: Yao et al. use S = 1,000 and more
_GOOD, _USABLE = 0.5, 0.7


# --- variational fits: PSIS k-hat ------------------------------------------------------------------------------
def psis_khat(log_ratios: Any) -> float:
    """The Pareto shape k-hat of the tail of the importance ratios ``exp(log_ratios)`` (ArviZ's ``psislw``)."""
    r = np.asarray(log_ratios, np.float64).ravel()
    if r.size < 5 or not np.all(np.isfinite(r)):
        return float("nan") if r.size < 5 else float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns when k-hat > 0.7: the reading says so
        _, khat = arviz_io.az.psislw(r - r.max())
    return float(np.asarray(khat))


def khat_reading(khat: float | None) -> str:
    """What a k-hat means, in Yao et al.'s bands."""
    if khat is None or not np.isfinite(khat):
        if khat is not None and khat == math.inf:
            return ("unreliable (non-finite importance ratios): q puts mass where the model has none, or q is "
                    "degenerate (a Laplace approximation at a singular Hessian returns the mode as every draw)")
        return "n/a"
    if khat < _GOOD:
        return "good (k-hat < 0.5): q is close to the posterior"
    if khat < _USABLE:
        return "usable (0.5 <= k-hat < 0.7): q is near the posterior, importance sampling corrects it slowly"
    return "unreliable (k-hat >= 0.7): q misses posterior mass; do not trust its tails or variances"


def guide_log_ratios(model: Callable, guide: Callable, params: Mapping[str, Any], args: tuple = (),
                     kwargs: Mapping[str, Any] | None = None, num_draws: int = KHAT_DRAWS, seed: int = 0,
                     chunk: int = 100) -> np.ndarray:
    """log p(theta, data) - log q(theta) for ``num_draws`` draws theta ~ q of a trained guide, in one compiled
    program (draws in chunks of ``chunk``, each chunk vectorised).

    Both densities are taken where the guide's draws live: for a guide that samples the model's sites
    (AutoNormal, AutoMultivariateNormal, flows, ...) the guide's own trace holds log q(theta) of the
    constrained value and the model is scored at that value; AutoLaplaceApproximation trains a point and
    samples a Gaussian in the unconstrained space, so both are taken there (the model's log density through
    NumPyro's ``potential_energy``, Jacobian included). The ratio is the same in either space.
    """
    if isinstance(guide, ag.AutoDelta):
        raise ValueError("guide: a point estimate (AutoDelta) has no density q(theta) to weigh")
    laplace = isinstance(guide, ag.AutoLaplaceApproximation)
    n_chunks = max(1, math.ceil(num_draws / chunk))

    def program(key: Any, params: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        g = fresh_guide(guide)
        set_up(g, params, *args, **kwargs)

        def one(k: Any) -> Any:
            if laplace:
                q = g.get_posterior(params)
                z = q.sample(k)
                unconstrained = g._unpack_latent(z)  # noqa: SLF001 - NumPyro's own map from the flat latent to sites
                return -potential_energy(model, args, kwargs, unconstrained) - q.log_prob(z)
            log_q, trace = log_density(handlers.seed(g, k), args, kwargs, params)
            values = {name: site["value"] for name, site in trace.items()
                      if site["type"] == "sample" and not site["is_observed"]}
            log_p, _ = log_density(model, args, kwargs, {**params, **values})
            return log_p - log_q

        keys = jax.random.split(key, n_chunks * chunk).reshape(n_chunks, chunk, -1)
        return jax.lax.map(jax.vmap(one), keys).reshape(-1)[:num_draws]

    out = call_draws(program, jax.random.PRNGKey(seed), dict(params), tuple(args), dict(kwargs or {}))
    return np.asarray(out, np.float64)


def record_variational(idata: Any, losses: Any, log_ratios: np.ndarray) -> Any:
    """Store a variational fit's evidence in ``idata`` (in place): group ``variational`` with the ELBO per
    training step (-loss), the importance ratios and k-hat as an attribute."""
    if idata is None:
        return idata
    if "variational" in idata.groups():
        del idata["variational"]
    arviz_io.add_group(idata, "variational", {"elbo": (["step"], -np.asarray(losses, np.float64)),
                                              "log_ratio": (["khat_draw"], np.asarray(log_ratios, np.float64))})
    idata.variational.attrs.update({"khat": psis_khat(log_ratios), "khat_draws": int(np.size(log_ratios))})
    return idata


# --- MCMC fits: gradient counts ---------------------------------------------------------------------------------
def gradient_field(kernel: Any) -> str | None:
    """The kernel's state field that counts gradient evaluations per iteration (leapfrog steps), or None."""
    from numpyro.infer import HMC, HMCGibbs

    if isinstance(kernel, HMCGibbs):  # HMC-within-Gibbs and HMCECS keep the HMC state inside theirs
        return "hmc_state.num_steps"
    if isinstance(kernel, HMC):  # NUTS too
        return "num_steps"
    return None


def gradients_per_step(kernel: Any) -> int | None:
    """Gradient evaluations per iteration of a kernel that takes a fixed number: BarkerMH one (at the
    proposal; the current point's is carried), SA none. None when the count varies (read it from the state)."""
    from numpyro.infer import SA, BarkerMH

    if isinstance(kernel, BarkerMH):
        return 1
    if isinstance(kernel, SA):
        return 0
    return None


def record_gradients(idata: Any, warmup_steps: Any = None, sample_steps: Any = None) -> Any:
    """Store the gradient evaluations per iteration, each (chain, draw), in ``idata`` (in place): ``n_steps`` of
    ``warmup_sample_stats`` for warm-up, of ``sample_stats`` for sampling (where the sampler did not)."""
    if idata is None:
        return idata
    if sample_steps is not None and ("sample_stats" not in idata.groups() or "n_steps" not in idata.sample_stats):
        steps = np.asarray(sample_steps)
        if "sample_stats" in idata.groups():
            idata.sample_stats["n_steps"] = (("chain", "draw"), steps)
        else:
            arviz_io.add_group(idata, "sample_stats", {"n_steps": (["chain", "draw"], steps)})
    if warmup_steps is not None and np.size(warmup_steps):
        if "warmup_sample_stats" in idata.groups():
            del idata["warmup_sample_stats"]
        arviz_io.add_group(idata, "warmup_sample_stats", {"n_steps": (["chain", "draw"], np.asarray(warmup_steps))})
    return idata


# --- the report ------------------------------------------------------------------------------------------------
def _chain_stats(post: Any, names: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = arviz_io.rhat(post, var_names=names)
        bulk = arviz_io.ess(post, var_names=names, method="bulk")
        tail = arviz_io.ess(post, var_names=names, method="tail")
    for name in names:
        out[name] = {"r_hat_max": _extreme(rhat[name].values, max), "ess_bulk_min": _extreme(bulk[name].values, min),
                     "ess_tail_min": _extreme(tail[name].values, min)}
    return out


def _extreme(values: Any, pick: Callable) -> float:
    # r_hat / ESS of a coordinate that never moves are undefined (nan): the worst of the finite ones
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    return float(pick(v)) if v.size else float("nan")


def _gradient_evaluations(idata: Any) -> int | None:
    total, found = 0, False
    for group in ("sample_stats", "warmup_sample_stats"):
        if group in idata.groups() and "n_steps" in getattr(idata, group):
            total += int(np.sum(getattr(idata, group)["n_steps"].values))
            found = True
    return total if found else None


def fit_diagnostics(fit: Any) -> dict[str, Any]:
    """The quality report of any fit (what ``Fit.diagnostics()`` returns); see the module's docstring."""
    idata = fit.idata
    family = str(fit.info.get("family", "mcmc" if fit.is_mcmc else ""))
    if fit.is_mcmc:
        return _mcmc_report(fit)
    if fit.is_point_estimate:
        return {"kind": "point estimate", "khat": None,
                "khat_reason": f"not applicable: {fit.method} gives one point; there is no q(theta) whose "
                               "importance ratios could be weighed (use a variational or MCMC method)"}
    if idata is not None and "variational" in idata.groups():
        attrs = idata.variational.attrs
        khat = float(attrs["khat"])
        return {"kind": "variational", "khat": khat, "khat_reading": khat_reading(khat).split(" (")[0],
                "khat_meaning": khat_reading(khat), "khat_draws": int(attrs["khat_draws"]),
                "elbo_final": float(np.mean(idata.variational["elbo"].values[-max(1, idata.variational.sizes["step"]
                                                                                    // 20):]))}
    reason = fit.info.get("khat_reason", f"not recorded for this {family or 'fit'}'s method ({fit.method})")
    return {"kind": family or "fit", "khat": None, "khat_reason": reason}


def _mcmc_report(fit: Any) -> dict[str, Any]:
    idata = fit.idata
    if idata is None or "posterior" not in idata.groups():
        return {"kind": "mcmc", "note": "no posterior draws stored"}
    post = idata.posterior
    invariant = [n for n in (fit.diagnostic_sites or []) if n in post]
    names = list(post.data_vars)
    raw = [n for n in names if n not in invariant]
    per = {n: {**s, "invariant": True} for n, s in _chain_stats(post, invariant).items()}
    per.update({n: {**s, "invariant": False} for n, s in _chain_stats(post, raw).items()})
    read_on = invariant or raw
    head = {k: _extreme([per[n][k] for n in read_on], max if k == "r_hat_max" else min)
            for k in ("r_hat_max", "ess_bulk_min", "ess_tail_min")}
    grads = _gradient_evaluations(idata)
    divergences = (int(np.sum(idata.sample_stats["diverging"].values))
                   if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats else None)
    ess_per_grad = head["ess_bulk_min"] / grads if grads else None
    return {"kind": "mcmc", "read_on": "invariant quantities" if invariant else "raw sites", **head,
            "ess_per_grad": ess_per_grad, "grad_evals": grads, "divergences": divergences, "quantities": per}



def table_columns(fit: Any, *, finite_only: bool = False) -> dict[str, float]:
    """The headline figures of ``fit.diagnostics()`` as table columns: r_hat_max, ess_bulk_min, ess_tail_min,
    ess_per_grad and divergences for MCMC; khat otherwise (nan where it does not apply). ``finite_only`` drops
    the columns whose value is missing (the CLI's rows)."""
    d = fit.diagnostics()
    names = ("r_hat_max", "ess_bulk_min", "ess_tail_min", "ess_per_grad", "divergences") if d["kind"] == "mcmc" \
        else ("khat",)
    row = {k: float("nan") if d.get(k) is None else float(d[k]) for k in names}
    return {k: v for k, v in row.items() if np.isfinite(v)} if finite_only else row
