"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

Draw parameters from the prior, simulate data from the model, fit the simulated data with an inference
method, and record the rank of each true value among the method's L posterior draws. If the method
returns the exact posterior, every rank is uniform on {0, ..., L}; a method whose posterior is too narrow
gives U-shaped ranks, one that is shifted gives skewed ranks. Uniformity is judged with the ECDF of the
fractional ranks against the uniform CDF and a simultaneous 95% band (Säilynoja, Bürkner & Vehtari 2022),
the band and the per-quantity p-values from the same statistic under the null, simulated (NumPy, so the
same on every processor).

Every simulation is one call of the engine's traced ``posterior`` (:class:`probzoo.core.Engine`), mapped
over the simulations in one compiled program: no recompilation per simulation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SBCResult", "sbc"]

_NULL_DRAWS = 4_000  # simulated uniform rank sets behind the band and the p-values


@dataclass
class SBCResult:
    """Ranks of the true values among the posterior draws, per scalar quantity, and their uniformity."""

    method: str
    num_simulations: int
    num_draws: int
    ranks: dict[str, np.ndarray]  # quantity -> (num_simulations,) integers in [0, num_draws]
    p_values: dict[str, float]
    wall_time: float
    info: dict[str, Any] = field(default_factory=dict)

    def passed(self, alpha: float = 0.01) -> bool:
        """Whether every quantity's ranks pass the uniformity test at level ``alpha``."""
        return all(p > alpha for p in self.p_values.values())

    def table(self):
        """One row per quantity: its p-value, the mean fractional rank (0.5 when calibrated) and the share of
        ranks in the outer tenths (0.2 when calibrated; more: the posterior is too narrow), and whether it is one
        of the model's invariant quantities (True) or a raw site (False)."""
        import pandas as pd

        rows = {}
        invariant = set(self.info.get("invariant", ()))
        for name, r in self.ranks.items():
            u = (r + 0.5) / (self.num_draws + 1)
            rows[name] = {"p_value": self.p_values[name], "mean_rank": float(np.mean(u)),
                          "outer_tenths": float(np.mean((u < 0.1) | (u > 0.9))),
                          "invariant": name in invariant}
        return pd.DataFrame.from_dict(rows, orient="index")

    def figure(self, path: str | Path, max_quantities: int = 12) -> Path:
        """The rank-ECDF difference of every quantity (up to ``max_quantities``) with its simultaneous 95% band."""
        from probzoo.plots.sbc import ecdf_difference

        z, band = _band(self.num_simulations, self.num_draws)
        names = list(self.ranks)[:max_quantities]
        curves = {n: _ecdf_difference(self.ranks[n], self.num_draws)[1] for n in names}
        return ecdf_difference(z, curves, band, Path(path),
                               title=f"SBC, {self.method}: {self.num_simulations} simulations, "
                                     f"{self.num_draws} draws each")

    def __repr__(self) -> str:
        worst = min(self.p_values.values()) if self.p_values else float("nan")
        return (f"SBCResult({self.method!r}, {self.num_simulations} simulations, {len(self.ranks)} quantities, "
                f"smallest p-value {worst:.3g}, wall_time={self.wall_time:.1f}s)")


def sbc(model: Any, method: Any, num_simulations: int = 100, seed: int = 0, num_draws: int = 99,
        data: tuple[Any, ...] | None = None, **fit_options: Any) -> SBCResult:
    """Simulation-based calibration of ``method`` on ``model``.

    ``model`` is a model of yours (``pz.from_numpyro``: its observed sites are simulated, its other data kept)
    or a zoo model with ``data``, the arrays its ``fit`` takes (covariates are kept, observations simulated).
    ``method`` is an engine's name (or a :class:`probzoo.core.Engine` with a traced ``posterior``);
    ``fit_options`` are the engine's budget and options (e.g. ``num_warmup=200``, ``num_steps=2_000``).
    Point estimates (``map``) have no posterior draws to rank: refused with the reason.
    """
    import jax
    from numpyro import handlers

    from probzoo.core import Engine
    from probzoo.infer.engines import engine, latent_sites, observed_sites
    from probzoo.infer.programs import call_compiled
    from probzoo.validation import check_int, check_seed

    num_simulations = check_int(num_simulations, "num_simulations", minimum=10)
    num_draws = check_int(num_draws, "num_draws", minimum=9)
    seed = check_seed(seed)
    bound = model.bind(*data) if data is not None else model
    if not hasattr(bound, "model") or not hasattr(bound, "args"):
        raise TypeError("model: expected pz.from_numpyro(...) or a zoo model with data=(...) to simulate from")
    eng = method if isinstance(method, Engine) else engine(method)
    method = eng.name
    if eng.posterior is None:
        why = "it gives one point, not posterior draws to rank" if str(eng.family) == "optimisation" \
            else "it cannot run as a traced function of the data"
        raise ValueError(f"method: {method}: simulation-based calibration does not apply: {why}")
    if (reason := eng.supports(bound)) is not None:
        raise ValueError(f"method: {reason}")
    budget, options = eng.settings(fit_options)
    observed = list(observed_sites(bound))
    latents = list(latent_sites(bound))
    if not observed:
        raise ValueError("model: it has no observed sites to simulate")
    model_fn, args, kwargs = bound.model, tuple(bound.args), dict(bound.kwargs)

    def one(key: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        k_sim, k_fit = jax.random.split(key)
        trace = handlers.trace(handlers.seed(_simulate_observed(model_fn, observed), k_sim)).get_trace(*args,
                                                                                                      **kwargs)
        truth = {k: trace[k]["value"] for k in latents}
        simulated = handlers.condition(model_fn, data={k: trace[k]["value"] for k in observed})
        draws = eng.posterior(simulated, budget, options, k_fit, args, kwargs, num_draws)
        return truth, {k: draws[k] for k in latents}

    def program(keys: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        # vectorised over the simulations where the engine's work is the same for each, one after another
        # where it is not: vmapped NUTS steps every simulation as long as the longest trajectory
        # (benchmarks/sbc.py, 100 simulations of UKR's and the MDN's configurations: NUTS one after another
        # 0.50 of vmap's time; mean-field vmapped 0.81-0.95 of one after another's)
        if eng.vectorise_posterior:
            return jax.vmap(lambda k: one(k, args, kwargs))(keys)
        return jax.lax.map(lambda k: one(k, args, kwargs), keys)

    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.PRNGKey(seed), num_simulations)
    truth, draws = jax.block_until_ready(call_compiled(program, keys, args, kwargs))
    truth = {k: np.asarray(v) for k, v in truth.items()}      # (simulations, ...)
    draws = {k: np.asarray(v) for k, v in draws.items()}      # (simulations, draws, ...)
    ranks = _ranks(truth, draws)
    invariant: list[str] = []
    quantities = getattr(bound, "quantities", None)
    if quantities is not None:  # the model's invariant quantities, ranked the same way
        q_ranks = _ranks({k: v[:, 0] for k, v in quantities({k: v[:, None] for k, v in truth.items()}).items()},
                         quantities(draws))
        invariant = list(q_ranks)
        ranks = {**q_ranks, **ranks}
    wall = time.perf_counter() - t0
    p_values = {name: _p_value(r, num_draws) for name, r in ranks.items()}
    return SBCResult(method, num_simulations, num_draws, ranks, p_values, wall,
                     info={"budget": budget, "options": {k: v for k, v in options.items() if v is not None},
                           "invariant": invariant})


def _ranks(truth: dict[str, np.ndarray], draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rank of each true value among its simulation's draws, per scalar coordinate ("site[i, j]")."""
    ranks = {}
    for site, t in truth.items():
        r = (draws[site] < t[:, None]).sum(axis=1).reshape(len(t), -1)
        for j in range(r.shape[1]):
            index = np.unravel_index(j, t.shape[1:]) if r.shape[1] > 1 else ()
            ranks[site + (f"[{', '.join(map(str, index))}]" if index else "")] = r[:, j].astype(int)
    return ranks


def _simulate_observed(fn: Any, names: list[str]) -> Any:
    """``fn`` with its observed sites ``names`` sampled instead of observed: data simulated from the model."""
    from numpyro.primitives import Messenger

    class simulate(Messenger):
        def process_message(self, msg: dict[str, Any]) -> None:
            if msg["type"] == "sample" and msg["name"] in names:
                msg["value"], msg["is_observed"] = None, False

    return simulate(fn)


# --- uniformity -------------------------------------------------------------------------------------------------
def _ecdf_difference(ranks: np.ndarray, num_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """The ECDF of the ranks minus the uniform CDF, at z = 1/(L+1), ..., L/(L+1)."""
    levels = num_draws + 1
    z = np.arange(1, levels) / levels
    counts = np.bincount(np.asarray(ranks, int), minlength=levels)[:levels]
    ecdf = np.cumsum(counts)[:-1] / len(ranks)
    return z, ecdf - z


def _statistic(diff: np.ndarray, z: np.ndarray, n: int) -> np.ndarray:
    # the largest standardised distance of the ECDF from the uniform CDF (last axis: the z grid)
    return np.max(np.abs(diff) / np.sqrt(z * (1 - z) / n), axis=-1)


_NULL: dict[tuple[int, int], np.ndarray] = {}


def _null(n: int, num_draws: int) -> np.ndarray:
    """The statistic over ``_NULL_DRAWS`` sets of n uniform ranks (fixed NumPy seed: the same everywhere)."""
    if (n, num_draws) not in _NULL:
        rng = np.random.default_rng(20220101)
        z = np.arange(1, num_draws + 1) / (num_draws + 1)
        sims = rng.integers(0, num_draws + 1, size=(_NULL_DRAWS, n))
        counts = np.stack([np.bincount(s, minlength=num_draws + 1) for s in sims])
        ecdf = np.cumsum(counts, axis=1)[:, :-1] / n
        _NULL[(n, num_draws)] = np.sort(_statistic(ecdf - z, z, n))
    return _NULL[(n, num_draws)]


def _p_value(ranks: np.ndarray, num_draws: int) -> float:
    z, diff = _ecdf_difference(ranks, num_draws)
    observed = float(_statistic(diff, z, len(ranks)))
    null = _null(len(ranks), num_draws)
    exceed = len(null) - np.searchsorted(null, observed, side="left")
    return float((1 + exceed) / (1 + len(null)))


def _band(n: int, num_draws: int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The simultaneous band: +- c sqrt(z (1 - z) / n), c the ``level`` quantile of the null statistic."""
    z = np.arange(1, num_draws + 1) / (num_draws + 1)
    c = float(np.quantile(_null(n, num_draws), level))
    return z, c * np.sqrt(z * (1 - z) / n)
