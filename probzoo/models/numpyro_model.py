"""``pz.from_numpyro``: any NumPyro model function, bound to its data, as a zoo model.

    def regression(X, y=None):
        beta = numpyro.sample("beta", dist.Normal(0, 1).expand([X.shape[1]]).to_event(1))
        with numpyro.plate("data", X.shape[0]):
            numpyro.sample("y", dist.Normal(X @ beta, 0.5), obs=y)

    m = pz.from_numpyro(regression, X, y=y)
    fit = m.fit(method="nuts")                    # or any engine in pz.engines() that supports the model
    pz.compare(m, methods=["nuts", "meanfield", "fullrank", "laplace"])

The observations are the values passed in ``args``/``kwargs``; every observed site's pointwise
log-likelihood goes into the fit's InferenceData, so PSIS-LOO scores every engine. When the model has a
plate named ``"data"``, :meth:`NumPyroModel.split` holds out some of its rows (every array argument whose
leading axis has the plate's size is split) for held-out scoring.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from probzoo.infer import engines as _engines
from probzoo.infer.posterior import pointwise_log_likelihood
from probzoo.infer.result import Fit
from probzoo.models.base import ZooModel
from probzoo.validation import check_probability, check_seed
from probzoo.zoo import register_model

__all__ = ["NumPyroFit", "NumPyroModel", "from_numpyro"]


def _reference(fn: Callable) -> str | None:
    """"module:qualname" when ``fn`` can be imported again by that name (so a saved fit can rebuild it)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def _resolve(ref: str) -> Callable | None:
    module, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if callable(obj) else None


def _as_data(value: Any) -> Any:
    """Arrays (and lists, pandas objects, other array-likes) become float32/int numpy arrays; tuples (often a
    model's static settings, e.g. layer sizes), scalars, None and the rest pass unchanged."""
    if isinstance(value, tuple) or np.isscalar(value):
        return value
    if isinstance(value, (np.ndarray, list)) or hasattr(value, "__array__"):
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            return arr.astype(np.float32)
        if arr.dtype.kind in "biu":
            return arr
        raise TypeError(f"data: expected numeric arrays, got dtype {arr.dtype}")
    return value


def _as_jax(value: Any) -> Any:
    import jax.numpy as jnp

    return jnp.asarray(value) if isinstance(value, np.ndarray) else value


@register_model
class NumPyroModel(ZooModel):
    """A user's NumPyro model function bound to its data: ``model_fn(*args, **kwargs)``.

    ``plate`` names the data plate (default ``"data"``; used for held-out splits and by ``hmcecs``).
    ``init`` optionally maps latent sites to starting values.
    """

    def __init__(self, model_fn: Callable, *args: Any, plate: str = "data",
                 init: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not callable(model_fn):
            raise TypeError(f"model_fn: expected a NumPyro model function, got {type(model_fn).__name__}")
        if not isinstance(plate, str):
            raise TypeError(f"plate: expected a plate name, got {type(plate).__name__}")
        self._fn: Callable | None = model_fn
        self._ref = _reference(model_fn)
        self._args = tuple(_as_data(a) for a in args)
        self._kwargs = {k: _as_data(v) for k, v in kwargs.items()}
        self.plate = plate
        self._init = {k: np.asarray(v) for k, v in (init or {}).items()}
        self.name = getattr(model_fn, "__name__", "model")
        self._config = {"function": self._ref, "plate": plate}

    fit_class: type[Fit]  # set below

    # --- the Model contract ---------------------------------------------------------------------------
    @property
    def model(self) -> Callable:
        if self._fn is None:
            raise ValueError(f"model: the model function {self._ref!r} of this saved fit could not be imported; "
                             "rebuild it with pz.from_numpyro(model_fn, *data)")
        return self._fn

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional data as JAX arrays (so the model may index them with traced plate indices)."""
        return tuple(_as_jax(a) for a in self._args)

    @property
    def kwargs(self) -> dict[str, Any]:
        return {k: _as_jax(v) for k, v in self._kwargs.items()}

    def init_values(self, seed: int) -> dict[str, Any] | None:
        return dict(self._init) or None

    def invariants(self, draws: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    @property
    def methods(self) -> tuple[str, ...]:
        """The engines that can run this model (generic ones: a zoo model's own algorithms run on it alone)."""
        return tuple(name for name in _engines.generic_names() if _engines.engine(name).supports(self) is None)

    def __repr__(self) -> str:
        return f"from_numpyro({self.name}, {len(self._args)} args, kwargs={sorted(self._kwargs)})"

    # --- fitting --------------------------------------------------------------------------------------
    def check_fit(self, *data: Any, method: str, **options: Any) -> None:
        """Refuse an engine that cannot run this model, or an option the engine does not take."""
        if data:
            raise TypeError("data: a model bound to its data takes none at fit time")
        reason = _engines.engine(method).supports(self)
        if reason is not None:
            raise ValueError(f"method: {reason}")
        _engines.engine(method).settings(options)

    def fit(self, method: str = "nuts", seed: int = 0, progress: bool = False, **options: Any) -> NumPyroFit:
        """Run engine ``method`` (see ``pz.engines()``) with its budget and options, e.g.
        ``fit(method="nuts", num_warmup=500, num_samples=500, num_chains=4)``."""
        seed = check_seed(seed)
        self.check_fit(method=method, **options)
        eng = _engines.engine(method)
        budget, opts = eng.settings(options)
        return eng.run(self, budget, opts, seed, bool(progress))

    def with_data(self, *args: Any, **kwargs: Any) -> NumPyroModel:
        """The same model function bound to other data."""
        new = NumPyroModel(self.model, *args, plate=self.plate, init=self._init or None, **kwargs)
        new._ref = self._ref
        return new

    def split(self, test_size: float = 0.2, seed: int = 0) -> tuple[NumPyroModel, NumPyroModel] | None:
        """(training model, held-out model): the rows of the data plate split at random, every array whose
        leading axis has the plate's size split alike. None when the model has no such plate, or has latent
        sites inside it (a held-out row's own latents would not have been fitted)."""
        check_probability(test_size, "test_size")
        n = _engines._plate_size(self)
        if n is None or n < 3 or _engines.local_latents(self):  # per-row latents: a held-out row has none fitted
            return None
        n_test = max(1, int(round(test_size * n)))
        order = np.random.default_rng(check_seed(seed)).permutation(n)
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])

        def take(value: Any, idx: np.ndarray) -> Any:
            return value[idx] if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n else value

        def part(idx: np.ndarray) -> NumPyroModel:
            kwargs = {k: take(v, idx) for k, v in self._kwargs.items()}
            return self.with_data(*(take(a, idx) for a in self._args), **kwargs)

        return part(train), part(test)

    # --- persistence ----------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NumPyroModel:
        """Rebuild from a saved configuration (the data come back from the fit's arrays)."""
        ref = config.get("function")
        fn = _resolve(ref) if ref else None
        obj = cls.__new__(cls)
        obj._fn, obj._ref, obj._args, obj._kwargs = fn, ref, (), {}
        obj.plate, obj._init = config.get("plate", "data"), {}
        obj.name = ref.rpartition(".")[2].rpartition(":")[2] if ref else "model"
        obj._config = dict(config)
        return obj

    def _data_arrays(self) -> dict[str, Any]:
        arrays = {f"arg{i}": a for i, a in enumerate(self._args) if isinstance(a, np.ndarray)}
        arrays.update({f"kw_{k}": v for k, v in self._kwargs.items() if isinstance(v, np.ndarray)})
        return arrays

    def get_config(self) -> dict[str, Any]:
        statics = {f"arg{i}": a for i, a in enumerate(self._args) if not isinstance(a, np.ndarray)}
        statics.update({f"kw_{k}": v for k, v in self._kwargs.items() if not isinstance(v, np.ndarray)})
        return {**self._config, "n_args": len(self._args), "statics": statics}

    def _bind_saved(self, arrays: Mapping[str, Any]) -> None:
        statics = dict(self._config.get("statics", {}))
        n_args = int(self._config.get("n_args", 0))
        values = {**statics, **{k: np.asarray(v) for k, v in arrays.items()}}
        self._args = tuple(values.get(f"arg{i}") for i in range(n_args))
        self._kwargs = {k[3:]: v for k, v in values.items() if k.startswith("kw_")}


@dataclass(repr=False)  # Fit's short repr, not every field
class NumPyroFit(Fit):
    """A fit of a :class:`NumPyroModel`: draws, InferenceData, pointwise and held-out log-likelihoods."""

    def __post_init__(self) -> None:
        data = self.arrays.get("data") if isinstance(self.arrays, dict) else None
        if data is None and isinstance(self.model, NumPyroModel):
            self.arrays = {**self.arrays, "data": self.model._data_arrays()}
        elif isinstance(self.model, NumPyroModel) and not self.model.args and not self.model.kwargs:
            self.model._bind_saved(data)  # a loaded fit: its data come back from arrays.npz

    @property
    def diagnostic_sites(self) -> list[str] | None:
        return list(self.info.get("invariants") or []) or None

    def log_likelihood(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """Pointwise log p(obs | draw) of every observed site on other data (the model's signature),
        one row per posterior draw."""
        other = self.model.with_data(*args, **kwargs)
        draws = {k: np.asarray(v) for k, v in self.samples.items()}
        return pointwise_log_likelihood(other.model, draws, other.args, other.kwargs)

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """``lpd``: the mean over observations of log (1/S) sum_s p(obs | draw s) on the given data (the
        held-out log predictive density per observation), all observed sites together."""
        ll = self.log_likelihood(*args, **kwargs)
        if not ll:
            raise ValueError("data: the model has no observed sites on this data")
        per_obs = []
        for v in ll.values():
            v = np.asarray(v, np.float64).reshape(v.shape[0], -1)
            per_obs.append(logsumexp(v, axis=0) - np.log(v.shape[0]))
        return {"lpd": float(np.mean(np.concatenate(per_obs)))}


NumPyroModel.fit_class = NumPyroFit


def from_numpyro(model_fn: Callable, *args: Any, **kwargs: Any) -> NumPyroModel:
    """Any NumPyro model function with its data (observations included) as a zoo model; see the module
    docstring. Keyword arguments ``plate`` (the data plate's name, default "data") and ``init`` (starting
    values of latent sites) are probzoo's; all others go to the model."""
    return NumPyroModel(model_fn, *args, **kwargs)
