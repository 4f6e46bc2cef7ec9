"""MDNFit: the per-component answers and the predictive distribution of a fitted MDN at new x."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate, infer_discrete

from probzoo.infer import arviz_io
from probzoo.infer.result import Fit
from probzoo.models.mdn.mixture import (
    _cdf,
    _central,
    _levels,
    _log_predictive,
    _mixture_quantiles,
    _moments,
    _predictive_sample,
    _responsibilities,
    _score_and_predict,
)
from probzoo.models.mdn.network import (
    _as_xy,
    _nest,
    _unnest,
)
from probzoo.validation import (
    as_array,
    check_int,
    check_same_length,
    check_seed,
)

if TYPE_CHECKING:  # the model module imports this one
    from probzoo.models.mdn.model import MDN

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
        return self.model.draws_forward()

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
