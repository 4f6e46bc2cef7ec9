"""Mixture density regression (article 004): an MLP maps x to a K-component Gaussian mixture over y.

``model.py`` states the model (its docstring is the generative process) and fits it; ``network.py`` holds
the network's weights and their storable forms; ``mixture.py`` the predictive mixture's algebra; ``fit.py``
the fitted model's predictions; ``catalogue.py`` the zoo entry (data sets, figures, tour budgets).
"""

from probzoo.models.mdn import catalogue  # noqa: F401  (registers the zoo entry)
from probzoo.models.mdn.fit import MDNFit
from probzoo.models.mdn.model import MDN

__all__ = ["MDN", "MDNFit"]
