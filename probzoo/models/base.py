"""What every zoo model shares: its hyper-parameters as a config, the Fit class it returns, and the way a
method that is not the model's own runs through the registry of inference engines.

A zoo model's ``fit`` runs its own methods (``native_methods``: the articles' algorithms, tuned for the
model). Every other name in ``methods`` is an engine of :mod:`probzoo.infer.engines`, run on the model
bound to its data (:class:`BoundModel`, the Model contract of :mod:`probzoo.core`); the model turns the
engine's draws into its own Fit, so predictions, scores, figures and save / load work the same whatever
engine produced the draws.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from probzoo.infer.result import Fit

__all__ = ["BoundModel", "ModelWithData", "ZooModel", "register_own_engines", "runs_engines"]

# set by the caller of fit, not options of any engine
_CALL_ARGUMENTS = ("self", "method", "seed", "progress")
# the names of a fit's budget (the rest of its keyword arguments are the engine's options)
_BUDGET_NAMES = ("num_steps", "epochs", "batch_size", "num_warmup", "num_samples", "num_chains")


@dataclass
class BoundModel:
    """A zoo model bound to its training data: what an engine needs (:class:`probzoo.core.Model`).

    ``build(**fields)`` turns an engine's result (the fields of :class:`~probzoo.infer.result.Fit`, with
    ``samples`` flat over chains and draws and ``info["num_chains"]`` for MCMC) into the zoo model's own Fit,
    with its InferenceData: ``builds_idata`` tells the engines not to build a generic one first.
    """

    name: str
    model: Callable[..., Any]
    args: tuple[Any, ...]
    build: Callable[..., Fit]
    plate: str | None = "data"
    kwargs: dict[str, Any] = field(default_factory=dict)
    init: Callable[[int], dict[str, Any] | None] | None = None
    # ``chain_init(seed, chain)``: chain ``chain``'s starting values for MCMC engines (default: init(seed + chain))
    chain_init: Callable[[int, int], dict[str, Any] | None] | None = None
    builds_idata: bool = True
    # the model's invariant quantities of draws shaped (chain, draw, ...), NumPy in and out: what simulation-based
    # calibration ranks besides the raw sites (the fit's builder adds them to its own fits)
    quantities: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def init_values(self, seed: int) -> dict[str, Any] | None:
        return None if self.init is None else self.init(seed)

    def invariants(self, draws: Mapping[str, Any]) -> dict[str, Any]:
        return {}  # the zoo model's build adds its invariant quantities itself

    @property
    def fit_class(self) -> Callable[..., Fit]:
        return self.build


@dataclass(frozen=True)
class ModelWithData:
    """What a zoo model's own engine runs on (``engine.run(ModelWithData(vae, (X,)), ...)``): the model (or, for
    a sampler of a trained model, its fit) and the data its method takes positionally."""

    target: Any
    args: tuple[Any, ...] = ()


class ZooModel:
    """Base class of the zoo's models.

    A subclass stores its constructor arguments in ``self._config`` (JSON-able values only) so that
    ``probzoo.load`` can rebuild it, and names the ``Fit`` subclass its ``fit`` returns. ``native_methods``
    are the methods its own ``fit`` implements; ``methods`` adds the engines it runs through
    :meth:`bind` (a subclass that names only ``methods`` implements all of them itself).
    """

    fit_class: type[Fit] = Fit
    native_methods: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    _config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("methods"), tuple) and "native_methods" not in cls.__dict__:
            cls.native_methods = tuple(cls.methods)

    # --- engines ------------------------------------------------------------------------------------------
    def bind(self, *data: Any, seed: int = 0) -> BoundModel:
        """This model bound to ``data`` for the engines of the registry (subclasses that run them)."""
        raise NotImplementedError

    def engine_refusal(self, name: str, data: tuple[Any, ...], options: Mapping[str, Any]) -> str | None:
        """Why engine ``name`` cannot run this model on ``data`` with ``options`` beyond what the engine's
        own ``supports`` says (e.g. a network too large for MCMC), or None."""
        return None

    def engine_defaults(self, name: str) -> dict[str, Any]:
        """Budget and options of engine ``name`` that this model sets differently from the engine's
        defaults (a user's values replace them)."""
        return {}

    def _engine(self, method: str, data: tuple[Any, ...], options: Mapping[str, Any]) -> tuple[Any, BoundModel,
                                                                                             dict, dict]:
        from probzoo.infer import engines as _engines

        if method not in self.methods:
            try:
                eng = _engines.engine(method)
            except ValueError:
                raise ValueError(f"method: unknown value {method!r}; expected one of {', '.join(self.methods)}") \
                    from None
            if not eng.generic:  # another model's own algorithm: its supports says which model it runs on
                raise ValueError(f"method: {eng.supports(self)}")
            reason = self.engine_refusal(method, data, options) or eng.supports(self.bind(*data))
            raise ValueError(f"method: {reason or method + ': not an engine for ' + type(self).__name__}")
        eng = _engines.engine(method)
        bound = self.bind(*data)
        reason = self.engine_refusal(method, data, options) or eng.supports(bound)
        if reason is not None:
            raise ValueError(f"method: {reason}")
        defaults = {k: v for k, v in self.engine_defaults(method).items() if k in eng.budget or k in eng.options}
        budget, opts = eng.settings({**defaults, **options})
        return eng, bound, budget, opts

    def fit_engine(self, method: str, data: tuple[Any, ...], *, seed: int = 0, progress: bool = False,
                   options: Mapping[str, Any] | None = None) -> Fit:
        """Fit with engine ``method`` of ``pz.engines()``: ``options`` are its budget and settings."""
        from probzoo.validation import check_seed

        seed = check_seed(seed)
        t0 = time.perf_counter()
        eng, bound, budget, opts = self._engine(method, data, dict(options or {}))
        fit = eng.run(bound, budget, opts, seed, bool(progress))
        fit.wall_time = time.perf_counter() - t0  # what the user waited, the model's own scoring included
        return fit

    def check_fit(self, *data: Any, method: str, **options: Any) -> None:
        """Refuse, before anything is trained, a fit that would fail at its start: a method this model
        does not have, an option its ``fit`` (or the engine) does not take, or (in subclasses) a configuration
        the method cannot run on data of this shape. ``pz.compare`` and the CLI call it for every method
        first, so a bad last method does not cost the fits before it. Raises ValueError naming the argument."""
        if method not in self.native_methods:
            self._engine(method, data, options)  # an engine of the registry, or an unknown method
            return
        params = inspect.signature(self.fit).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            taken = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.default is not p.empty]
            _refuse_options(self, method, [n for n in options if n not in taken], taken)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this model."""
        return dict(self._config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"


def _refuse_options(model: ZooModel, method: str, unknown: list[str], taken: list[str]) -> None:
    """The one error for options that a native method's ``fit`` does not take."""
    if unknown:
        raise ValueError(f"{unknown[0]}: not an option of {type(model).__name__}.fit with method {method!r} "
                         f"(it takes: {', '.join(taken)})")


def runs_engines(fit: Callable[..., Fit]) -> Callable[..., Fit]:
    """Decorator of a zoo model's ``fit(data..., method=..., seed=..., progress=..., options...)``: a method
    that is not one of the model's ``native_methods`` runs through :meth:`ZooModel.fit_engine`, with the
    options the caller gave (the native signature's defaults do not apply to another engine; any option
    the engine does not take is refused by name). Either way the fit's ``wall_time`` is the whole call."""
    sig = inspect.signature(fit)
    data_names = [n for n, p in sig.parameters.items()
                  if n != "self" and p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]

    @functools.wraps(fit)
    def dispatch(self: ZooModel, *args: Any, **kwargs: Any) -> Fit:
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in sig.parameters}
        given = sig.bind(self, *args, **kwargs).arguments
        method = given.get("method", sig.parameters["method"].default)
        if isinstance(method, str) and method in self.native_methods:
            taken = [n for n, p in sig.parameters.items() if p.default is not p.empty and n not in _CALL_ARGUMENTS]
            _refuse_options(self, method, sorted(extra), taken)
            t0 = time.perf_counter()
            result = fit(self, *args, **kwargs)
            # what the user waited: the whole call, its starting values, predictions and InferenceData included
            # (the training loop's own seconds are info["loop_time"], its compilation compile_time)
            result.wall_time = time.perf_counter() - t0
            return result
        options = {k: v for k, v in given.items() if k not in data_names and k not in _CALL_ARGUMENTS}
        return self.fit_engine(method, tuple(given[n] for n in data_names), seed=given.get("seed", 0),
                               progress=given.get("progress", False), options={**options, **extra})

    return dispatch


def register_own_engines(owner: type, runner: Callable[..., Any], engines: Mapping[str, tuple[Any, str, str]], *,
                         data: tuple[str, ...] = (), accepts: type | None = None, runs_on: str = "") -> None:
    """Register a zoo model's own algorithms in ``pz.engines()`` as engines that run on that model only.

    ``engines`` maps each name to (family, what runs, what it applies to). ``runner`` is the method that
    runs them (``owner.fit``, or a fit's ``sample``): its keyword arguments with defaults, less ``data``,
    ``method``, ``seed`` and ``progress``, are the engines' budget (the names in ``_BUDGET_NAMES``) and
    options, with the runner's defaults. ``supports(x)`` accepts an instance of ``accepts`` (default
    ``owner``) or a :class:`ModelWithData` holding one; otherwise its one-line reason says where the engine runs
    (``runs_on``, where ``{name}`` stands for the engine's name; default ``pz.<owner>(...).fit(...)``).
    """
    from probzoo.core import Engine
    from probzoo.infer.engines import register

    accepts = accepts or owner
    params = inspect.signature(runner).parameters
    keywords = {n: p.default for n, p in params.items()
                if p.default is not p.empty and n not in _CALL_ARGUMENTS and n not in data}
    budget = {n: v for n, v in keywords.items() if n in _BUDGET_NAMES}
    options = {n: v for n, v in keywords.items() if n not in _BUDGET_NAMES}
    where = runs_on or f"pz.{owner.__name__}(...).fit(..., method={{name!r}})"

    for name, (family, description, applies_to) in engines.items():
        def supports(x: Any, name: str = name, description: str = description) -> str | None:
            if isinstance(x.target if isinstance(x, ModelWithData) else x, accepts):
                return None
            return f"{name}: an algorithm of pz.{owner.__name__} only ({description}); run it as " \
                   f"{where.format(name=name)}"

        def run(x: Any, budget: Mapping[str, Any], options: Mapping[str, Any], seed: int, progress: bool,
                name: str = name) -> Any:
            x = x if isinstance(x, ModelWithData) else ModelWithData(x)
            return runner(x.target, *x.args, method=name, seed=seed, progress=progress, **budget, **options)

        register(Engine(name, family, description, applies_to, budget, options, supports, run,
                        owner=owner.__name__))
