"""Bernoulli restricted Boltzmann machine (article 003): CD-k / PCD training through a block-Gibbs MCMC kernel.

``energy.py`` is the math (energy, free energy, conditionals); ``model.py`` states the model as a NumPyro
model (its docstring is the generative process) and trains it; ``gibbs.py`` is the block-Gibbs kernel
``RBMGibbs`` (also ``pz.infer.RBMGibbs``); ``training.py`` one CD / PCD epoch as a chunk of the shared loop;
``pseudo_likelihood.py`` and ``partition.py`` (exact and AIS log Z) score it; ``fit.py`` the trained model
(``RBMFit``); ``engines.py`` registers cd, pcd, gibbs and discrete-gibbs as the model's own engines. Its zoo
entry (data sets, figures, tour budgets) is ``probzoo.zoo.rbm``.
"""

from probzoo.models.rbm import engines  # noqa: F401  (registers the model's own engines)
from probzoo.models.rbm.fit import RBMFit
from probzoo.models.rbm.gibbs import RBMGibbs, RBMGibbsState
from probzoo.models.rbm.model import RBM, rbm_guide, rbm_model
from probzoo.models.rbm.partition import (
    LogPartition,
    ais_log_partition,
    base_rate,
    base_rate_log_likelihood,
    log_partition_exact,
    raise_log_likelihood,
)
from probzoo.models.rbm.pseudo_likelihood import pseudo_likelihood_terms
from probzoo.models.rbm.training import RBMTrainState

__all__ = [
    "RBM",
    "LogPartition",
    "RBMFit",
    "RBMGibbs",
    "RBMGibbsState",
    "RBMTrainState",
    "ais_log_partition",
    "base_rate",
    "base_rate_log_likelihood",
    "log_partition_exact",
    "pseudo_likelihood_terms",
    "raise_log_likelihood",
    "rbm_guide",
    "rbm_model",
]
