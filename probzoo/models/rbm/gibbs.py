"""Block-Gibbs sampling of a Bernoulli restricted Boltzmann machine as a NumPyro ``MCMCKernel``.

An RBM with parameters ``{"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,)}`` has

    E(v, h) = -v W h - b.v - c.h,        p(v, h) = exp(-E(v, h)) / Z,
    F(v)    = -b.v - sum_j softplus(c_j + (v W)_j),   p(v) = exp(-F(v)) / Z,

and both conditionals factorise: p(h_j = 1 | v) = sigmoid(c_j + (v W)_j), p(v_i = 1 | h) =
sigmoid(b_i + (W h)_i). The free energy F is the potential of the visible chain. :class:`RBMGibbs`
makes one block-Gibbs sweep (h | v, then v | h) per step, so ``numpyro.infer.MCMC`` runs it with
several chains, progress bars and ArviZ diagnostics on the free energy.

The kernel state caches the hidden input ``c + v W`` so that a sweep costs two matrix products.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from numpyro.infer.mcmc import MCMCKernel
from numpyro.util import is_prng_key

from probzoo.models.rbm.draws import bernoulli
from probzoo.models.rbm.energy import Params, check_rbm_params, free_energy, hidden_input, visible_probs


class RBMGibbsState(NamedTuple):
    """- **z**: the sample, ``{"v": visible state, "free_energy": F(v)}``.
    - **hidden_input**: c + v W at the current v (the next sweep's h | v needs it).
    - **rng_key**: the key for the next sweep.
    """

    z: dict[str, jax.Array]
    hidden_input: jax.Array
    rng_key: jax.Array


def _batched_key(key: jax.Array) -> bool:
    return not is_prng_key(key)


class RBMGibbs(MCMCKernel):
    """Block-Gibbs kernel for a Bernoulli RBM: h ~ p(h | v), then v ~ p(v | h), once per step.

    ``params`` is ``{"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,)}``. Samples are
    dicts ``{"v": (n_visible,), "free_energy": ()}`` so ``az.from_numpyro`` reports r_hat and ESS of
    the free energy. ``init_params`` (``{"v": ...}`` or an array) sets the chains' first visible
    states; by default they are drawn from the independent-pixel model sigmoid(b).

    Under ``chain_method="vectorized"`` the kernel receives a batch of keys and states and maps itself
    over them. A state whose ``v`` has leading batch dimensions and a single key is a population of
    chains advanced together (CD/PCD training uses this).

    Parameters given to ``MCMC.run`` as its model argument take the place of the kernel's own:
    ``MCMC(RBMGibbs(params), ..., jit_model_args=True).run(key, params)`` makes them an input of the compiled
    sampler, so one program samples every RBM of these shapes (``RBMFit.sample`` does this).

    **Example**::

        kernel = RBMGibbs(fit.params)
        mcmc = numpyro.infer.MCMC(kernel, num_warmup=100, num_samples=1000, num_chains=4,
                                  chain_method="vectorized")
        mcmc.run(jax.random.PRNGKey(0))
        mcmc.get_samples()["free_energy"]
    """

    sample_field = "z"
    model = None  # no NumPyro model: the potential is the free energy (az.from_numpyro reads this)

    def __init__(self, params: Params) -> None:
        self.params = check_rbm_params(params)

    @property
    def n_visible(self) -> int:
        return int(self.params["W"].shape[0])

    @property
    def n_hidden(self) -> int:
        return int(self.params["W"].shape[1])

    def potential_fn(self, v: jax.Array) -> jax.Array:
        """The potential of the visible chain: the free energy F(v) (= -log p(v) - log Z)."""
        return free_energy(self.params, v)

    def state_at(self, rng_key: jax.Array, v: jax.Array) -> RBMGibbsState:
        """The state at visible configuration ``v`` (any leading batch shape), with key ``rng_key``."""
        v = jnp.asarray(v, jnp.float32)
        x = hidden_input(self.params, v)
        return RBMGibbsState({"v": v, "free_energy": free_energy(self.params, v, x)}, x, rng_key)

    def init(self, rng_key: jax.Array, num_warmup: int, init_params: Any, model_args: Any = (),
             model_kwargs: Any = None) -> RBMGibbsState:
        if model_args:
            return RBMGibbs(model_args[0]).init(rng_key, num_warmup, init_params)
        if isinstance(init_params, Mapping):
            if "v" not in init_params:
                raise ValueError("init_params: expected a dict with key 'v' (the chains' visible states)")
            init_params = init_params["v"]
        if init_params is not None:
            v0 = jnp.asarray(init_params, jnp.float32)
            if v0.shape[-1:] != (self.n_visible,):
                raise ValueError(f"init_params: v must end in {self.n_visible} visible units, got {v0.shape}")
        if _batched_key(rng_key):
            if init_params is None:
                return jax.vmap(lambda k: self.init(k, num_warmup, None))(rng_key)
            return jax.vmap(lambda k, v: self.init(k, num_warmup, v))(rng_key, v0)
        if init_params is None:
            rng_key, key_v = jax.random.split(rng_key)
            v0 = bernoulli(key_v, jax.nn.sigmoid(self.params["b"]))
        return self.state_at(rng_key, v0)

    def sample(self, state: RBMGibbsState, model_args: Any = (), model_kwargs: Any = None) -> RBMGibbsState:
        """One block-Gibbs sweep: h ~ p(h | v), then v ~ p(v | h)."""
        if model_args:
            return RBMGibbs(model_args[0]).sample(state)
        if _batched_key(state.rng_key):
            return jax.vmap(lambda s: self.sample(s, model_args, model_kwargs))(state)
        rng_key, key_h, key_v = jax.random.split(state.rng_key, 3)
        h = bernoulli(key_h, jax.nn.sigmoid(state.hidden_input))
        v = bernoulli(key_v, visible_probs(self.params, h))
        return self.state_at(rng_key, v)

    def refresh(self, state: RBMGibbsState, model_args: Any = (), model_kwargs: Any = None) -> RBMGibbsState:
        """Recompute the cached hidden input and free energy at ``state``'s v under this kernel's params
        (persistent chains call this after every parameter update)."""
        if _batched_key(state.rng_key):
            return jax.vmap(lambda s: self.refresh(s, model_args, model_kwargs))(state)
        return self.state_at(state.rng_key, state.z["v"])

    def get_diagnostics_str(self, state: RBMGibbsState) -> str:
        return f"F(v) {float(jnp.mean(state.z['free_energy'])):.2f}"
