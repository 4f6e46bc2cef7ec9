"""probzoo: a probabilistic-programming model zoo on NumPyro.

    import probzoo as pz
    x, y = pz.data.two_branch(n=10_000, seed=0)
    fit = pz.MDN(n_components=2).fit(x, y, method="map")
    fit.idata          # arviz.InferenceData

Every name is imported on first use, so ``import probzoo`` (and ``probzoo --help``) loads no numerical
library: JAX, NumPyro, ArviZ and scikit-learn arrive with the first model, data set or fit that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute in it; None for the module itself)
_LAZY = {
    "data": ("probzoo.data", None),
    "metrics": ("probzoo.metrics", None),
    "validation": ("probzoo.validation", None),
    "Fit": ("probzoo.infer.result", "Fit"),
    "load": ("probzoo.infer.result", "load"),
    "MDN": ("probzoo.models.mdn", "MDN"),
    "ClusteringVAE": ("probzoo.models.clustering_vae", "ClusteringVAE"),
    "UKR": ("probzoo.models.ukr", "UKR"),
    "RBM": ("probzoo.models.rbm", "RBM"),
    "compare": ("probzoo.comparison", "compare"),
    "ComparisonError": ("probzoo.comparison", "ComparisonError"),
    "sbc": ("probzoo.sbc", "sbc"),
    "engines": ("probzoo.infer.engines", "engines"),
    "from_numpyro": ("probzoo.models.numpyro_model", "from_numpyro"),
    "core": ("probzoo.core", None),
    "infer": ("probzoo.infer", None),
    "distributions": ("probzoo.distributions", None),
    "plots": ("probzoo.plots", None),
    "zoo": ("probzoo.zoo", None),
}

__all__ = ["__version__", *_LAZY]


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
