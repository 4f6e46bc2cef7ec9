"""Inference runners (the shared training loop, SVI, MCMC), the Fit result and InferenceData construction."""

from probzoo.cache import enable_compilation_cache

# Every compiled program of probzoo is built by this package, so the persistent compilation cache is
# set up here, before the first one (see probzoo.cache; off with PROBZOO_COMPILATION_CACHE=0).
enable_compilation_cache()

from probzoo.infer.checkpoint import CorruptFileError  # noqa: E402
from probzoo.infer.loop import LoopRun, NonFiniteLossError, run_loop  # noqa: E402
from probzoo.infer.mcmc import MCMCRun, run_mcmc  # noqa: E402
from probzoo.infer.posterior import guide_draws, mcmc_inference_data, svi_inference_data  # noqa: E402
from probzoo.infer.result import Fit, load  # noqa: E402
from probzoo.infer.svi import OrderedTraceELBO, SVIRun, run_svi  # noqa: E402

__all__ = [
    "CorruptFileError",
    "Fit",
    "LoopRun",
    "MCMCRun",
    "NonFiniteLossError",
    "OrderedTraceELBO",
    "RBMGibbs",
    "SVIRun",
    "guide_draws",
    "load",
    "mcmc_inference_data",
    "run_loop",
    "run_mcmc",
    "run_svi",
    "svi_inference_data",
]


def __getattr__(name: str) -> object:
    # pz.infer.RBMGibbs is the public name of the RBM's block-Gibbs kernel, which lives with its model
    # (probzoo.models.rbm.gibbs); imported on first use, as this package knows no model by name.
    if name == "RBMGibbs":
        from probzoo.models.rbm.gibbs import RBMGibbs

        return RBMGibbs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
