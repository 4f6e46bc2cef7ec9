"""probzoo: a probabilistic-programming model zoo on NumPyro.

    import probzoo as pz
    x, y = pz.data.two_branch(n=10_000, seed=0)
    fit = pz.MDN(n_components=2).fit(x, y, method="map")
    fit.idata          # arviz.InferenceData

Models are imported on first use, so ``import probzoo`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from probzoo import data, metrics, validation
from probzoo.infer.result import Fit, load

__version__ = "0.1.0"

_LAZY = {
    "MDN": "probzoo.models.mdn",
    "ClusteringVAE": "probzoo.models.clustering_vae",
    "UKR": "probzoo.models.ukr",
    "RBM": "probzoo.models.rbm",
    "compare": "probzoo.compare",
    "infer": "probzoo.infer",
    "distributions": "probzoo.distributions",
    "plots": "probzoo.plots",
    "zoo": "probzoo.zoo",
}

__all__ = ["Fit", "__version__", "data", "load", "metrics", "validation", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith(name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'probzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
