"""The clustering VAE's cluster accuracy over seeds, beside k-means on the same pixels. Prints JSON.

    python benchmarks/clustering_vae_defaults.py                       # 5 seeds, MNIST and digits: about 40 min
    python benchmarks/clustering_vae_defaults.py --data digits --seeds 3
    python benchmarks/clustering_vae_defaults.py --preset article --model latent_dim=10
    python benchmarks/clustering_vae_defaults.py --mnist-path /path/to/mnist.npz   # the full 70,000 images
    python benchmarks/clustering_vae_defaults.py --data mnist --runs labels --preset article \
        --model encoder="'conv'" latent_dim=10 augment=2 consistency=10.0 --method relaxed   # about 40 min
    python benchmarks/clustering_vae_defaults.py --data mnist --runs labels --preset semi_supervised \
        --method relaxed                                                # 10 labels per class: about 42 min

Per seed s: ``pz.data.mnist(seed=s)`` (5,000 images, or the file given) or ``pz.data.digits(seed=s)``
(1,797 8x8 images), ``pz.ClusteringVAE(preset=PRESET).fit(X, seed=s)`` with every other setting at its
default (method "enum", 100 epochs), unsupervised (accuracy after Hungarian matching, adjusted Rand index,
NMI and clusters used, on every row) and with 10 labels per class (chosen with the seed; accuracy
on the unlabelled rows, cluster k = class k, no matching). ``fit_s`` is the fit call's wall time, pretraining
and compilation included. The peer: scikit-learn's k-means (n_init=10) on the same rows and seed.
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import time
import warnings

import jax
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import probzoo as pz
from probzoo import metrics


def scores(t: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": metrics.cluster_accuracy(t, pred), "ari": float(adjusted_rand_score(t, pred)),
            "nmi": metrics.nmi(t, pred), "clusters_used": int(np.unique(pred).size)}


def summarise(rows: list[dict], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows], float)
        out[k] = {"median": float(np.median(v)), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1
                  else None, "min": float(v.min()), "max": float(v.max())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--data", nargs="+", default=["mnist", "digits"], choices=["mnist", "digits"])
    ap.add_argument("--preset", default="clustering")
    ap.add_argument("--model", nargs="*", default=[], metavar="NAME=VALUE", help="model options over the preset's")
    ap.add_argument("--epochs", type=int, default=None, help="the fit's epochs (default: the fit's default)")
    ap.add_argument("--labels-per-class", type=int, default=10, help="semi-supervised runs on MNIST (0: none)")
    ap.add_argument("--runs", nargs="+", default=["unsupervised", "labels"], choices=["unsupervised", "labels"])
    ap.add_argument("--method", default=None, help="the fit's method (default: the fit's default, enum)")
    ap.add_argument("--mnist-path", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    options = {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.model)}
    report: dict = {"machine": {"platform": platform.platform(), "jax": jax.__version__},
                    "preset": args.preset, "model": options, "epochs": args.epochs, "method": args.method,
                    "results": {}}
    for data in args.data:
        runs = [("unsupervised", 0)] + ([("labels", args.labels_per_class)] if args.labels_per_class else [])
        runs = [(kind, per_class) for kind, per_class in runs if kind in args.runs]
        for kind, per_class in runs:
            rows = []
            for seed in range(args.seeds):
                if data == "mnist":
                    X, t = pz.data.mnist(path=args.mnist_path, seed=seed)
                else:
                    X, t = pz.data.digits(seed=seed)
                labels = pz.data.few_labels(t, per_class, seed) if per_class else None
                t0 = time.perf_counter()
                budget = {} if args.epochs is None else {"epochs": args.epochs}
                if args.method is not None:
                    budget["method"] = args.method
                fit = pz.ClusteringVAE(preset=args.preset, **options).fit(X, labels, seed=seed, **budget)
                row = {"seed": seed, "fit_s": time.perf_counter() - t0,
                       "pretrain_s": fit.info.get("pretrain_time", 0.0)}
                pred = fit.predict(X)
                if labels is None:
                    row.update(scores(t, pred))
                    row["kmeans"] = scores(t, KMeans(10, n_init=10, random_state=seed).fit_predict(X))
                else:
                    u = labels < 0
                    row["accuracy_unlabelled"] = float(np.mean(pred[u] == t[u]))
                rows.append(row)
                print(json.dumps({"data": data, "kind": kind, **row}), flush=True)
            keys = ("accuracy", "ari", "nmi", "clusters_used", "fit_s") if kind == "unsupervised" else (
                "accuracy_unlabelled", "fit_s")
            summary = summarise(rows, keys)
            if kind == "unsupervised":
                summary["kmeans"] = summarise([r["kmeans"] for r in rows], ("accuracy", "ari", "nmi"))
            report["results"][f"{data}/{kind}"] = {"rows": rows, "summary": summary}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
