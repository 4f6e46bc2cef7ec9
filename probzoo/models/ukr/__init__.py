"""Unsupervised kernel regression (articles 000 and 001) as a NumPyro model: MAP or NUTS over the latents.

``model.py`` states the model (its docstring is the generative process) and fits it; ``kernel.py`` is the
blockwise log-space Nadaraya-Watson map; ``projection.py`` places held-out points in the latent space and
scores them; ``fit.py`` the fitted model (``UKRFit``, and the trustworthiness score); its zoo entry (data sets,
figures, tour budgets) is ``probzoo.zoo.ukr``.
"""

from probzoo.models.ukr.fit import UKRFit, trustworthiness
from probzoo.models.ukr.model import UKR

__all__ = ["UKR", "UKRFit", "trustworthiness"]
