"""Mixture density regression (article 004): an MLP maps x to a K-component Gaussian mixture over y.

``model.py`` states the model (its docstring is the generative process) and fits it; ``network.py`` holds
the network's weights and their storable forms; ``mixture.py`` the predictive mixture's algebra; ``fit.py``
the fitted model's predictions. Its zoo entry (data sets, figures, tour budgets) is ``probzoo.zoo.mdn``.
"""

from probzoo.models.mdn.fit import MDNFit
from probzoo.models.mdn.model import MDN

__all__ = ["MDN", "MDNFit"]
