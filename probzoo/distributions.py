"""The relaxed one-hot categorical (Concrete / Gumbel-softmax) distribution as NumPyro distributions.

Maddison, Mnih & Teh (2017) and Jang, Gu & Poole (2017): with Gumbel noise ``g_k`` and temperature
``lambda``, ``x = log_softmax((logits + g) / lambda)`` is a reparameterised draw on the log-simplex
(the *ExpConcrete* distribution) and ``y = exp(x)`` a draw on the simplex (the *Concrete*
distribution). As ``lambda -> 0`` the draws become one-hot with ``P(argmax y = k) = probs[k]`` (the
Gumbel-max trick); for any ``lambda`` they are differentiable in ``logits``.

Densities, with ``K`` categories and ``a = log probs`` (any normalisation)::

    ExpConcrete: log p(x) = log (K-1)! + (K-1) log lambda + sum_k (a_k - lambda x_k) - K logsumexp_k(a_k - lambda x_k)
    Concrete:    log p(y) = log (K-1)! + (K-1) log lambda + sum_k (a_k - (lambda + 1) log y_k)
                            - K logsumexp_k(a_k - lambda log y_k)

The Concrete density is with respect to Lebesgue measure on the first K-1 coordinates of the simplex
(it integrates to one there); ``RelaxedOneHotCategorical`` is ``ExpRelaxedOneHotCategorical`` pushed
through ``exp``. Where two relaxed distributions are compared (a KL estimate in an ELBO), compare them
in log space: a float32 ``y_k`` underflows to 0 long before ``x_k`` stops being finite, so
``ExpRelaxedOneHotCategorical`` is the numerically safe site distribution (Maddison et al., app. C).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from numpyro.distributions import constraints
from numpyro.distributions.distribution import Distribution, TransformedDistribution
from numpyro.distributions.transforms import ExpTransform
from numpyro.distributions.util import validate_sample

__all__ = ["ExpRelaxedOneHotCategorical", "RelaxedOneHotCategorical", "log_simplex"]


class _LogSimplex(constraints.Constraint):
    """Vectors ``x`` with ``sum_k exp(x_k) = 1``: the logarithm of a point of the simplex."""

    event_dim = 1

    def __call__(self, x: Any) -> Any:
        x = jnp.asarray(x)
        total = logsumexp(x, axis=-1)
        tol = 10 * jnp.finfo(jnp.result_type(x, jnp.float32)).eps * jnp.maximum(1.0, jnp.sqrt(x.shape[-1]))
        return (x <= tol).all(axis=-1) & (jnp.abs(total) < 1e-4 + tol)

    def feasible_like(self, prototype: Any) -> Any:
        k = jnp.shape(prototype)[-1]
        return jnp.full(jnp.shape(prototype), -math.log(k), dtype=jnp.result_type(prototype, jnp.float32))

    def tree_flatten(self):  # stateless: nothing to flatten
        return (), ((), {})


log_simplex = _LogSimplex()


def _check_args(temperature: Any, probs: Any, validate_args: bool | None) -> None:
    """With validation on, name the bad argument (NumPyro's own check would name the distribution)."""
    validate = Distribution._validate_args if validate_args is None else validate_args
    if not validate:
        return
    if not isinstance(temperature, jax.core.Tracer):  # traced values are checked by NumPyro's validation
        t = np.asarray(temperature)
        if not np.all(np.isfinite(t) & (t > 0)):
            raise ValueError(f"temperature: must be finite and > 0, got {temperature!r}")
    if probs is not None and not isinstance(probs, jax.core.Tracer):
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim < 1 or np.any(p < 0) or np.any(np.abs(p.sum(-1) - 1.0) > 1e-5):
            raise ValueError("probs: must be non-negative and sum to 1 along the last axis")


def _logits(probs: Any, logits: Any) -> jnp.ndarray:
    if (probs is None) == (logits is None):
        raise ValueError("probs, logits: give exactly one of them")
    if probs is not None:
        return jnp.log(jnp.asarray(probs))
    return jnp.asarray(logits)


class ExpRelaxedOneHotCategorical(Distribution):
    """ExpConcrete(temperature, probs | logits): ``log`` of a Gumbel-softmax draw, on the log-simplex.

    ``temperature`` broadcasts against the batch shape of ``probs``/``logits`` (shape ``(..., K)``).
    ``sample`` is reparameterised: ``x = log_softmax((logits + Gumbel) / temperature)``.
    ``log_prob`` is the exact ExpConcrete log-density (see the module docstring).
    """

    arg_constraints = {
        "temperature": constraints.positive,
        "logits": constraints.real_vector,
    }
    support = log_simplex
    reparametrized_params = ["temperature", "logits"]
    pytree_data_fields = ("temperature", "logits")

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None, *,
                 validate_args: bool | None = None) -> None:
        _check_args(temperature, probs, validate_args)
        logits = _logits(probs, logits)
        if jnp.ndim(logits) < 1:
            raise ValueError(f"logits: need at least one dimension (the K categories), got shape {jnp.shape(logits)}")
        logits = logits - logsumexp(logits, axis=-1, keepdims=True)
        temperature = jnp.asarray(temperature, dtype=jnp.result_type(logits, float))
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(temperature), jnp.shape(logits)[:-1])
        self.temperature = jnp.broadcast_to(temperature, batch_shape)
        self.logits = jnp.broadcast_to(logits, batch_shape + jnp.shape(logits)[-1:])
        super().__init__(batch_shape=batch_shape, event_shape=jnp.shape(logits)[-1:],
                         validate_args=validate_args)

    @property
    def probs(self) -> jnp.ndarray:
        return jnp.exp(self.logits)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jnp.ndarray:
        shape = sample_shape + self.batch_shape + self.event_shape
        gumbel = jax.random.gumbel(key, shape, dtype=self.logits.dtype)
        scores = (self.logits + gumbel) / self.temperature[..., None]
        return jax.nn.log_softmax(scores, axis=-1)

    def rsample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jnp.ndarray:
        return self.sample(key, sample_shape)

    @property
    def has_rsample(self) -> bool:
        return True

    @validate_sample
    def log_prob(self, value: Any) -> jnp.ndarray:
        k = self.event_shape[-1]
        tau = self.temperature[..., None]
        scores = self.logits - tau * value
        log_norm = math.lgamma(k) + (k - 1) * jnp.log(self.temperature)
        return log_norm + jnp.sum(scores, axis=-1) - k * logsumexp(scores, axis=-1)

    def expand(self, batch_shape: tuple[int, ...]) -> Distribution:
        batch_shape = tuple(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        return ExpRelaxedOneHotCategorical(
            jnp.broadcast_to(self.temperature, batch_shape),
            logits=jnp.broadcast_to(self.logits, batch_shape + self.event_shape),
            validate_args=self._validate_args,
        )


class RelaxedOneHotCategorical(TransformedDistribution):
    """Concrete / Gumbel-softmax(temperature, probs | logits) on the simplex.

    ``ExpRelaxedOneHotCategorical`` pushed through ``exp``: samples are reparameterised Gumbel-softmax
    draws ``softmax((logits + Gumbel) / temperature)`` and ``log_prob`` is the exact Concrete density.
    Scoring a value it sampled itself (NumPyro passes the log-space intermediates) is exact even where
    a coordinate underflows to 0; a value given from outside is mapped back with ``log``.
    """

    arg_constraints = {"temperature": constraints.positive, "logits": constraints.real_vector}
    support = constraints.simplex
    pytree_data_fields = ("base_dist", "transforms")

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None, *,
                 validate_args: bool | None = None) -> None:
        base = ExpRelaxedOneHotCategorical(temperature, probs=probs, logits=logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def temperature(self) -> jnp.ndarray:
        return self.base_dist.temperature

    @property
    def logits(self) -> jnp.ndarray:
        return self.base_dist.logits

    @property
    def probs(self) -> jnp.ndarray:
        return self.base_dist.probs

    def expand(self, batch_shape: tuple[int, ...]) -> Distribution:
        batch_shape = tuple(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        return RelaxedOneHotCategorical(
            jnp.broadcast_to(self.temperature, batch_shape),
            logits=jnp.broadcast_to(self.logits, batch_shape + self.event_shape),
            validate_args=self._validate_args,
        )
