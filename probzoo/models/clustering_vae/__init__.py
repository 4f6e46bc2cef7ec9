"""The clustering VAE y -> z -> x of article 002 (and its semi-supervised form with a few labels).

``model.py`` states the model and guide (the generative process in its docstring) and fits them; ``nets.py``
holds the encoders; ``objective.py`` the three ELBOs for the discrete y (relaxed, enum, score); ``fit.py`` the
fitted model (``ClusteringVAEFit``); ``engines.py`` registers the three as the model's own engines. Its zoo
entry (data sets, figures, tour budgets) is ``probzoo.zoo.clustering_vae``.
"""

from probzoo.models.clustering_vae import engines  # noqa: F401  (registers the model's own engines)
from probzoo.models.clustering_vae.fit import ClusteringVAEFit
from probzoo.models.clustering_vae.model import ClusteringVAE
from probzoo.models.clustering_vae.objective import elbo_loss

__all__ = ["ClusteringVAE", "ClusteringVAEFit", "elbo_loss"]
