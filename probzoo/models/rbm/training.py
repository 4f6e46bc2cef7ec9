"""Contrastive divergence (CD-k) and persistent CD as chunks of the shared training loop: the optimiser, the
training state and one epoch of updates whose negative phase runs the block-Gibbs kernel.

Centring (Montavon & Müller 2012; with moving-average offsets, Melchior, Fischer & Wiskott 2016) writes the
energy around offsets mu (visible) and lambda (hidden),

    E(v, h) = -(v - mu) W (h - lambda) - b_c.(v - mu) - c_c.(h - lambda),

the same family of models (b = b_c - W lambda, c = c_c - W^T mu up to a constant), and takes the gradient
steps in the centred coordinates (W, b_c, c_c), where the gradient of W no longer carries the mean
activities: <(v - mu)(h - lambda)^T>_data - <...>_model. The parameters stay stored in the usual form, so
everything that reads them (Gibbs, log Z, scores) is unchanged; the offsets follow the data's mean visible
and hidden activities as exponential moving averages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from probzoo.infer.devices import DataParallel
from probzoo.models.rbm.gibbs import RBMGibbs, RBMGibbsState
from probzoo.models.rbm.pseudo_likelihood import pl_terms_from_hidden_input

CENTRING_RATE = 0.01  # the offsets' moving-average rate per update (Melchior et al. 2016's sliding factor)


class Offsets(NamedTuple):
    """The centring offsets: mu for the visible units, lambda for the hidden ones."""

    visible: jax.Array
    hidden: jax.Array


class RBMTrainState(NamedTuple):
    """What one training step updates: parameters, the optimiser's state, (PCD) the persistent chains and
    (centring) the offsets."""

    params: dict[str, jax.Array]
    opt_state: Any
    chains: RBMGibbsState | None
    offsets: Offsets | None = None


def moments(v: jax.Array, h: jax.Array, weights: jax.Array | None = None) -> tuple[jax.Array, ...]:
    """E[v h^T], E[v], E[h] over the rows (uniform, or ``weights`` summing to one)."""
    if weights is None:
        return v.T @ h / v.shape[0], jnp.mean(v, axis=0), jnp.mean(h, axis=0)
    return (v * weights[:, None]).T @ h, weights @ v, weights @ h


def nll_gradient(data: tuple[jax.Array, ...], model: tuple[jax.Array, ...],
                 offsets: Offsets | None = None) -> dict[str, jax.Array]:
    """The negative log-likelihood's gradient, E_model[-dE] - E_data[-dE], from each phase's moments; with
    ``offsets`` in the centred coordinates (W, b_c, c_c): W's part is the difference of
    E[(v - mu)(h - lambda)^T], the biases' parts the differences of E[v] and E[h]."""
    dvh, dv, dh = (m - d for m, d in zip(model, data, strict=True))
    gW = dvh
    if offsets is not None:
        gW = dvh - jnp.outer(dv, offsets.hidden) - jnp.outer(offsets.visible, dh)
    return {"W": gW, "b": dv, "c": dh}


def centred(params: dict[str, jax.Array], offsets: Offsets) -> dict[str, jax.Array]:
    """(W, b, c) -> the centred coordinates (W, b_c = b + W lambda, c_c = c + W^T mu)."""
    W = params["W"]
    return {"W": W, "b": params["b"] + W @ offsets.hidden, "c": params["c"] + offsets.visible @ W}


def uncentred(params: dict[str, jax.Array], offsets: Offsets) -> dict[str, jax.Array]:
    """The centred coordinates -> (W, b = b_c - W lambda, c = c_c - W^T mu): :func:`centred`'s inverse."""
    W = params["W"]
    return {"W": W, "b": params["b"] - W @ offsets.hidden, "c": params["c"] - offsets.visible @ W}


def optimizer(learning_rate: float, momentum: float, weight_decay: float) -> optax.GradientTransformation:
    """SGD on the negative log-likelihood gradient, with momentum and L2 weight decay on W (not biases)."""
    parts = []
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay, mask={"W": True, "b": False, "c": False}))
    parts.append(optax.sgd(learning_rate, momentum=momentum if momentum > 0 else None))
    return optax.chain(*parts)


def make_chunk(tx: optax.GradientTransformation, method: str, k: int, batch_size: int, n_data: int,
                parallel: DataParallel | None = None) -> Callable:
    """One epoch of CD / PCD updates as a chunk of the shared training loop (which lays its chunks out in
    whole epochs): ``chunk(state, V, key_data, first, n)`` runs the epoch that starts at step ``first`` (its
    minibatches and draws from ``key_data`` folded with the epoch: an input, so that every seed runs the same
    compiled program) and returns the losses, -n_visible x each minibatch's mean log sigmoid(F(v~) - F(v)),
    the pseudo-likelihood's scale. With ``parallel`` each minibatch's rows (and PCD's persistent chains) are
    split over its devices."""
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
        data, model = moments(v0, ph_pos), moments(chains.z["v"], ph_neg)
        grads = nll_gradient(data, model, st.offsets)
        offsets = st.offsets
        if offsets is None:
            updates, opt_state = tx.update(grads, st.opt_state, st.params)
            params = optax.apply_updates(st.params, updates)
        else:  # the step in the centred coordinates, then the offsets move towards this batch's means
            here = centred(st.params, offsets)
            updates, opt_state = tx.update(grads, st.opt_state, here)
            params = uncentred(optax.apply_updates(here, updates), offsets)
            offsets = Offsets(*(o + CENTRING_RATE * (m - o) for o, m in zip(offsets, data[1:], strict=True)))
        # the batch's mean log sigmoid(F(v~) - F(v)), at the parameters its gradient was taken at
        pl = jnp.mean(pl_terms_from_hidden_input(st.params, v0, positive.hidden_input, key_pl))
        return RBMTrainState(params, opt_state, chains if method == "pcd" else None, offsets), pl

    def chunk(st: RBMTrainState, V: jax.Array, key_data: jax.Array, first: jax.Array, n: jax.Array):
        key_perm, key_steps = jax.random.split(jax.random.fold_in(key_data, first // spe))
        batches = jax.random.permutation(key_perm, n_data)[: spe * batch_size].reshape(spe, batch_size)
        keys = jax.random.split(key_steps, spe)
        st, pl = jax.lax.scan(lambda s, inp: step(s, V[split(inp[0])], inp[1]), st, (batches, keys))
        return st, (-V.shape[1] * pl).astype(jnp.float32)

    return chunk
