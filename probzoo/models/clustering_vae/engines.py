"""The clustering VAE's own engines in ``pz.engines()``: the three ways of handling its discrete y, each run by
``ClusteringVAE.fit(X, method=NAME)``."""

from __future__ import annotations

from probzoo.core import Family
from probzoo.models.base import register_own_engines
from probzoo.models.clustering_vae.model import ClusteringVAE

register_own_engines(ClusteringVAE, ClusteringVAE.fit, {
    "relaxed": (Family.VARIATIONAL, "Trace_ELBO with y relaxed to a Concrete (Gumbel-softmax) sample",
                "the clustering VAE's discrete y"),
    "enum": (Family.VARIATIONAL, "TraceEnum_ELBO: y summed out exactly (funsor enumeration)",
             "the clustering VAE's discrete y"),
    "score": (Family.VARIATIONAL, "TraceGraph_ELBO: y sampled, score-function gradients",
              "the clustering VAE's discrete y"),
}, data=("X", "labels"))
