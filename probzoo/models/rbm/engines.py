"""The RBM's own engines in ``pz.engines()``: CD and PCD training (run by ``RBM.fit``) and the two samplers of
a trained RBM (run by ``RBMFit.sample``)."""

from __future__ import annotations

from probzoo.core import Family
from probzoo.models.base import register_own_engines
from probzoo.models.rbm.fit import RBMFit
from probzoo.models.rbm.model import RBM

register_own_engines(RBM, RBM.fit, {
    "cd": (Family.CUSTOM, "contrastive divergence CD-k: k RBMGibbs sweeps from each minibatch",
           "rows of V in [0, 1]"),
    "pcd": (Family.CUSTOM, "persistent contrastive divergence: RBMGibbs chains carried across minibatches",
            "rows of V in [0, 1]"),
}, data=("V",))
register_own_engines(RBM, RBMFit.sample, {
    "gibbs": (Family.MCMC, "RBMGibbs: block Gibbs, all h given v then all v given h",
              "a trained RBM's fit"),
    "discrete-gibbs": (Family.MCMC, "numpyro DiscreteGibbs on the RBM as a NumPyro model: single-site updates",
                       "a trained RBM's fit"),
}, accepts=RBMFit, runs_on="fit.sample(method={name!r}) on the fit of a trained pz.RBM")
