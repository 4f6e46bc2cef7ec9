"""The MDN's network and its weights: activations, the NumPyro site names of the weights and their
flax parameter trees and storable nested dicts, initial values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from probzoo.infer.programs import SET_UP_OPTIONS
from probzoo.nn import MLP
from probzoo.validation import (
    as_array,
    check_same_length,
)

METHODS = ("map", "meanfield", "nuts")
ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "gelu": nn.gelu, "softplus": nn.softplus,
    "silu": nn.silu,
}
NET = "net"  # the network's sample sites are "net/<layer>.<kernel|bias>"
DEFAULT_STEPS = {"map": 780, "meanfield": 3_000}  # map's default budget is "until converged" (PLATEAU)
# "until converged": Adam's learning rate halved whenever a round's mean training loss has not improved on the
# best round's by ``tol`` nats per point for ``patience`` rounds; the fit stops at the ``halvings``-th halving or
# after ``max_rounds`` rounds. Minibatch rounds are 5 epochs: one epoch's mean loss moves by about 0.01 nats per
# point from Adam's own noise at 3e-3, more than a slow fit gains an epoch (narrow branches that cross gain
# about 0.0005), so a one-epoch round halved the rate on noise and stopped such fits early
PLATEAU = {"tol": 1e-3, "halvings": 7,
           "minibatch": {"round_epochs": 5, "patience": 1, "max_rounds": 40},    # at most 200 epochs
           "full_batch": {"round_steps": 25, "patience": 2, "max_rounds": 200}}  # at most 5,000 steps
DEFAULT_LR = {"map": 3e-3, "meanfield": 3e-3}
DEFAULT_BATCH = 128
NUTS_MAX_WEIGHTS = 1_000


# --- weights: numpyro site names <-> flax parameter trees <-> storable nested dicts ----------------------

def _site_to_path(site: str) -> list[str]:
    return site[len(NET) + 1:].split(".")


def _flax_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"net/Dense_0.kernel": a, ...} -> {"Dense_0": {"kernel": a}, ...} (flax's parameter tree)."""
    tree: dict[str, Any] = {}
    for site, value in flat.items():
        *path, leaf = _site_to_path(site)
        node = tree
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _flat_sites(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`_flax_params`."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}.{k}" if prefix else k
        if isinstance(v, Mapping):
            out.update(_flat_sites(v, name))
        else:
            out[f"{NET}/{name}"] = v
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Split numpyro names at "/" into nested dicts so a Fit can store them (its keys may not hold "/")."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        head, _, rest = k.partition("/")
        if rest:
            out.setdefault(head, {})[rest] = np.asarray(v)
        else:
            out[k] = np.asarray(v)
    return out


def _unnest(tree: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update({f"{k}/{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _as_xy(x: Any, y: Any | None = None, width: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    x = as_array(x, "x", ndim=(1, 2))
    if x.ndim == 1:
        x = x[:, None]
    if width is not None and x.shape[1] != width:
        raise ValueError(f"x: expected {width} column(s) as in training, got {x.shape[1]} (shape {x.shape})")
    if y is None:
        return x, None
    y = as_array(y, "y", ndim=1)
    check_same_length(x=x, y=y)
    return x, y



@lru_cache(maxsize=16)
def _param_template(net: MLP, d: int) -> dict[str, Any]:
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros((1, d))))["params"]
    return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)


@lru_cache(maxsize=16)
def _init_fn(net: MLP, d: int) -> Callable:
    """flax's initialisation of ``net`` for inputs of width d as one compiled program (not many eager ops),
    compiled without XLA's backend optimisations: it runs once a fit."""
    program = jax.jit(lambda key: net.init(key, jnp.zeros((1, d))))
    return program.lower(jax.random.PRNGKey(0)).compile(compiler_options=SET_UP_OPTIONS)


def _inverse_softplus(u: float) -> float:
    """log(exp(u) - 1) without overflow: u + log(1 - exp(-u)) (a spread of y of 1e6 needs it)."""
    return u + math.log(-math.expm1(-u))
