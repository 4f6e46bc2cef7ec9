"""Inference runners (SVI, MCMC), the Fit result and InferenceData construction."""

from probzoo.infer.checkpoint import CorruptFileError
from probzoo.infer.gibbs import RBMGibbs
from probzoo.infer.mcmc import MCMCRun, run_mcmc
from probzoo.infer.posterior import guide_draws, mcmc_inference_data, svi_inference_data
from probzoo.infer.result import Fit, load
from probzoo.infer.svi import NonFiniteLossError, OrderedTraceELBO, SVIRun, run_svi

__all__ = [
    "CorruptFileError",
    "Fit",
    "MCMCRun",
    "NonFiniteLossError",
    "OrderedTraceELBO",
    "RBMGibbs",
    "SVIRun",
    "guide_draws",
    "load",
    "mcmc_inference_data",
    "run_mcmc",
    "run_svi",
    "svi_inference_data",
]
