"""Contrastive divergence (CD-k) and persistent CD as chunks of the shared training loop: the optimiser, the
training state and one epoch of updates whose negative phase runs the block-Gibbs kernel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from probzoo.infer.devices import DataParallel
from probzoo.models.rbm.gibbs import RBMGibbs, RBMGibbsState
from probzoo.models.rbm.pseudo_likelihood import pl_terms_from_hidden_input


class RBMTrainState(NamedTuple):
    """What one training step updates: parameters, the optimiser's state and (PCD) the persistent chains."""

    params: dict[str, jax.Array]
    opt_state: Any
    chains: RBMGibbsState | None


def optimizer(learning_rate: float, momentum: float, weight_decay: float) -> optax.GradientTransformation:
    """SGD on the negative log-likelihood gradient, with momentum and L2 weight decay on W (not biases)."""
    parts = []
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay, mask={"W": True, "b": False, "c": False}))
    parts.append(optax.sgd(learning_rate, momentum=momentum if momentum > 0 else None))
    return optax.chain(*parts)


def make_chunk(tx: optax.GradientTransformation, method: str, k: int, batch_size: int, n_data: int,
                key_data: jax.Array, parallel: DataParallel | None = None) -> Callable:
    """One epoch of CD / PCD updates as a chunk of the shared training loop (which lays its chunks out in
    whole epochs): ``chunk(state, V, first, n)`` runs the epoch that starts at step ``first`` and returns the
    losses, -n_visible x each minibatch's mean log sigmoid(F(v~) - F(v)), the pseudo-likelihood's scale.
    With ``parallel`` each minibatch's rows (and PCD's persistent chains) are split over its devices."""
    spe = n_data // batch_size
    split = (lambda rows: rows) if parallel is None else parallel.split

    def step(st: RBMTrainState, v0: jax.Array, key: jax.Array):
        key_gibbs, key_pl = jax.random.split(key)
        kernel = RBMGibbs(st.params)
        positive = kernel.state_at(key_gibbs, v0)
        # negative phase: k block-Gibbs sweeps of the kernel, from the data (CD) or the persistent chains
        chains = positive if method == "cd" else kernel.refresh(jax.tree.map(split, st.chains))
        chains = jax.lax.fori_loop(0, k, lambda _, s: kernel.sample(s), chains)
        ph_pos = jax.nn.sigmoid(positive.hidden_input)
        ph_neg = jax.nn.sigmoid(chains.hidden_input)
        v_neg = chains.z["v"]
        n_neg = v_neg.shape[0]
        # gradient of the negative log-likelihood: E_model[-dE] - E_data[-dE]
        grads = {
            "W": v_neg.T @ ph_neg / n_neg - v0.T @ ph_pos / batch_size,
            "b": jnp.mean(v_neg, axis=0) - jnp.mean(v0, axis=0),
            "c": jnp.mean(ph_neg, axis=0) - jnp.mean(ph_pos, axis=0),
        }
        updates, opt_state = tx.update(grads, st.opt_state, st.params)
        params = optax.apply_updates(st.params, updates)
        # the batch's mean log sigmoid(F(v~) - F(v)), at the parameters its gradient was taken at
        pl = jnp.mean(pl_terms_from_hidden_input(st.params, v0, positive.hidden_input, key_pl))
        return RBMTrainState(params, opt_state, chains if method == "pcd" else None), pl

    def chunk(st: RBMTrainState, V: jax.Array, first: jax.Array, n: jax.Array):
        key_perm, key_steps = jax.random.split(jax.random.fold_in(key_data, first // spe))
        batches = jax.random.permutation(key_perm, n_data)[: spe * batch_size].reshape(spe, batch_size)
        keys = jax.random.split(key_steps, spe)
        st, pl = jax.lax.scan(lambda s, inp: step(s, V[split(inp[0])], inp[1]), st, (batches, keys))
        return st, (-V.shape[1] * pl).astype(jnp.float32)

    return chunk
