"""The contracts between models, inference engines and fits.

- A **model** (:class:`Model`) states the math: a NumPyro model function and the data it is bound to,
  the name of its data plate (subsampled for minibatches), optional data-adapted initial values and the
  quantities that no relabelling or rotation changes (what r_hat and ESS are read on).
- An **engine** (:class:`Engine`) is an inference algorithm written once: a name, a family, the budget
  names it takes, the options it accepts, ``supports(model)`` (None, or the one-line reason it cannot
  run that model) and ``run(model, budget, seed, progress, options) -> Fit``.
- A **fit** is :class:`probzoo.infer.result.Fit`: parameters, draws, losses, timings, the engine's name,
  the seed and an ``arviz.InferenceData``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = ["Engine", "Family", "Model"]


class Family(StrEnum):
    """What kind of answer an engine gives."""

    OPTIMISATION = "optimisation"  # a point estimate
    VARIATIONAL = "variational"  # a fitted approximating distribution, draws from it
    MCMC = "mcmc"  # Markov chains
    CUSTOM = "custom"  # a model-specific algorithm


@runtime_checkable
class Model(Protocol):
    """What an engine needs from a model.

    ``model`` is a NumPyro model function called as ``model(*args, **kwargs)`` with the bound data;
    ``plate`` names its data plate (or is None); ``init_values(seed)`` gives starting values of the latent
    sites (or None for the engines' defaults); ``invariants(draws)`` maps a dict of draws, each with a
    leading (chain, draw) shape, to quantities that the model's symmetries leave unchanged (empty when
    the raw sites are identified).
    """

    name: str
    plate: str | None

    @property
    def model(self) -> Callable[..., Any]: ...

    @property
    def args(self) -> tuple[Any, ...]: ...

    @property
    def kwargs(self) -> dict[str, Any]: ...

    def init_values(self, seed: int) -> dict[str, Any] | None: ...

    def invariants(self, draws: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Engine:
    """An inference algorithm that runs on every model its ``supports`` accepts.

    ``budget`` maps each budget name the engine takes (``num_steps``; ``num_warmup``, ``num_samples``,
    ``num_chains``) to its default; ``options`` maps the engine's other settings to their defaults.
    ``fit(...)`` refuses any name in neither.
    """

    name: str
    family: Family
    description: str
    applies_to: str
    budget: Mapping[str, Any]
    options: Mapping[str, Any]
    supports: Callable[[Any], str | None]
    run: Callable[..., Any] = field(repr=False)
    # the zoo model whose package registered this engine (one model's own algorithm), or None: a generic
    # engine, which runs on any model its supports accepts
    owner: str | None = None
    # ``posterior(model_fn, budget, options, key, args, kwargs, num_draws) -> draws``: the same algorithm as a
    # traced function of the data (no Python-side state), so that one compiled program maps it over many data
    # sets (simulation-based calibration); None where the engine cannot run that way
    posterior: Callable[..., Any] | None = field(default=None, repr=False)
    # whether ``posterior`` runs vectorised over data sets (vmap): true where its work is the same for every
    # data set; false where it depends on the data (NUTS's trajectories double until they turn, and a vmapped
    # run of many data sets steps each one as long as the longest), so they run one after another (lax.map)
    vectorise_posterior: bool = True

    @property
    def generic(self) -> bool:
        return self.owner is None

    def __repr__(self) -> str:
        return f"Engine({self.name!r}, {self.family}: {self.description}; budget {dict(self.budget)})"

    def settings(self, given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``given`` into (budget, options) over the defaults; unknown names raise ValueError."""
        unknown = sorted(set(given) - set(self.budget) - set(self.options))
        if unknown:
            known = ", ".join([*self.budget, *self.options]) or "none"
            raise ValueError(f"{unknown[0]}: not an option of engine {self.name!r} (it takes: {known})")
        budget = {k: given.get(k, v) for k, v in self.budget.items()}
        options = {k: given.get(k, v) for k, v in self.options.items()}
        return budget, options
