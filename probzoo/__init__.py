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
from probzoo.cache import enable_compilation_cache
from probzoo.infer.result import Fit, load

# compiled programs persist across processes (see probzoo.cache; off with PROBZOO_COMPILATION_CACHE=0)
enable_compilation_cache()

__version__ = "0.1.0"

# public name -> (module, attribute in it; None for the module itself)
_LAZY = {
    "MDN": ("probzoo.models.mdn", "MDN"),
    "ClusteringVAE": ("probzoo.models.clustering_vae", "ClusteringVAE"),
    "UKR": ("probzoo.models.ukr", "UKR"),
    "RBM": ("probzoo.models.rbm", "RBM"),
    "compare": ("probzoo.comparison", "compare"),
    "engines": ("probzoo.infer.engines", "engines"),
    "from_numpyro": ("probzoo.models.numpyro_model", "from_numpyro"),
    "core": ("probzoo.core", None),
    "infer": ("probzoo.infer", None),
    "distributions": ("probzoo.distributions", None),
    "plots": ("probzoo.plots", None),
    "zoo": ("probzoo.zoo", None),
}

__all__ = ["Fit", "__version__", "data", "load", "metrics", "validation", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'probzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
