"""Article 002 with probzoo: clustering MNIST with the y -> z -> x VAE, without labels and with 100 labels,
and the 2-D toy.

    python examples/clustering_vae_mnist.py                     # full budget (see docs/clustering_vae.md)
    python examples/clustering_vae_mnist.py --epochs 5 --quick  # a smoke run
    python examples/clustering_vae_mnist.py --method relaxed --latent-dim 10 --encoder conv  # the best scores

Writes into --out (default examples-out/clustering_vae_mnist), for the unsupervised ("unsup") and the
semi-supervised ("semi") runs: originals above reconstructions, a 10 x 10 grid of images generated per
cluster (z ~ p(z | y), x = mean of p(x | z)), the latent scatter coloured by the true digit and the prior
p(z | y) scatter (with a 2-D latent space) and the loss curve; for the toy: the clustering and points
generated per cluster. Prints the scores as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import probzoo as pz
from probzoo import plots
from probzoo.plots import clustering_vae as cplots


def article_figures(fit, X: np.ndarray, t: np.ndarray, out: Path, tag: str) -> list[Path]:
    figs = [cplots.reconstructions(X[:10], fit.reconstruct(X[:10]), out / f"{tag}_reconstructions.png")]
    grid = np.stack([fit.generate(k, 10, seed=k) for k in range(fit.model.n_clusters)])
    figs.append(cplots.generated_grid(grid, out / f"{tag}_generated.png"))
    if fit.model.latent_dim == 2:  # the scatters draw the latent plane itself
        figs.append(cplots.latent_scatter(fit.embed(X), t, out / f"{tag}_latent.png"))
        figs.append(cplots.prior_scatter(fit, out / f"{tag}_prior.png"))
    figs.append(plots.loss_curve(fit.losses, out / f"{tag}_loss.png", title=f"negative ELBO ({tag}, {fit.method})"))
    return figs


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="examples-out/clustering_vae_mnist")
    p.add_argument("--method", default="enum", choices=["relaxed", "enum"])
    p.add_argument("--encoder", default="mlp", choices=["mlp", "conv"])
    p.add_argument("--latent-dim", type=int, default=2, help="dimension of z (2 as in the article)")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's default budget")
    p.add_argument("--labels-per-class", type=int, default=10, help="semi-supervised run: 10 x 10 = 100 labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1,000 images and a small toy run")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = {} if args.epochs is None else {"epochs": args.epochs}
    results: dict = {}

    X, t = pz.data.mnist(seed=args.seed, n=1000 if args.quick else None)
    model = pz.ClusteringVAE(n_clusters=10, latent_dim=args.latent_dim, encoder=args.encoder)

    t0 = time.perf_counter()
    fit = model.fit(X, method=args.method, seed=args.seed, progress=True, **budget)
    results["unsupervised"] = {**fit.evaluate(X, t, num_samples=4), "seconds": time.perf_counter() - t0,
                               "seconds_per_epoch": fit.info["seconds_per_epoch"], "epochs": fit.info["epochs"]}
    article_figures(fit, X, t, out, "unsup")

    labels = pz.data.few_labels(t, args.labels_per_class, args.seed)
    t0 = time.perf_counter()
    semi = model.fit(X, labels=labels, method=args.method, seed=args.seed, progress=True, **budget)
    unl = labels < 0
    pred = semi.predict(X[unl])
    results["semi_supervised"] = {
        "n_labels": int((~unl).sum()),
        "accuracy_unlabelled": float(np.mean(pred == t[unl])),  # cluster k is class k: no matching
        "nmi_unlabelled": pz.metrics.nmi(t[unl], pred),
        "seconds": time.perf_counter() - t0,
    }
    article_figures(semi, X, t, out, "semi")

    Xb, tb = pz.data.blobs(n=1500, seed=args.seed)
    toy = pz.ClusteringVAE(n_clusters=3, latent_dim=2, likelihood="normal").fit(
        Xb, method=args.method, seed=args.seed, epochs=10 if args.quick else 50)
    results["toy"] = toy.evaluate(Xb, tb, num_samples=4)
    cplots.toy_clusters(Xb, toy.predict(Xb), out / "toy_clusters.png")
    cplots.toy_generated(toy, out / "toy_generated.png")

    print(json.dumps(results, indent=1))
    (out / "scores.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
