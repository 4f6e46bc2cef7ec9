"""Reproducibility across interpreters: the same seed gives the same fit in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import probzoo as pz


@pytest.mark.reproducibility
def test_the_same_seed_gives_the_same_fit_in_another_process(tmp_path):
    """Bit-identical parameters and loss trace from a fresh interpreter (new compilation, its own
    string-hash salt): probzoo sums the ELBO's site terms in sorted order (``OrderedTraceELBO``), not in
    the order of a Python set of names, which the salt would change."""
    X, _ = pz.data.mnist(n=300, seed=0)
    np.save(tmp_path / "X.npy", X)
    code = (
        "import sys, numpy as np, jax, probzoo as pz\n"
        "X = np.load(sys.argv[1])\n"
        "fit = pz.ClusteringVAE(latent_dim=3, hidden=(64, 32)).fit(X, method='relaxed', epochs=2, seed=7)\n"
        "np.savez(sys.argv[2], losses=fit.losses, *[np.asarray(a) for a in jax.tree.leaves(fit.params)])\n"
    )
    # the other process has its own string-hash salt, so NumPyro builds the ELBO's terms in another order:
    # its training programs are compiled afresh (only the small eager operations come from the shared cache)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "X.npy"), str(tmp_path / "out.npz")], check=True,
                   capture_output=True, timeout=300, env=env)
    here = pz.ClusteringVAE(latent_dim=3, hidden=(64, 32)).fit(X, method="relaxed", epochs=2, seed=7)
    other = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(other["losses"], here.losses)
    leaves = jax.tree.leaves(here.params)
    assert len(other.files) == len(leaves) + 1
    for i, a in enumerate(leaves):
        np.testing.assert_array_equal(other[f"arr_{i}"], np.asarray(a))
