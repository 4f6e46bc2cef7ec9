"""UKR's default MAP fit over seeds on article 001's saddle, beside scikit-learn's manifold learners. Prints JSON.

    python benchmarks/ukr_defaults.py               # 5 seeds: about a minute on 2 cores
    python benchmarks/ukr_defaults.py --seeds 2 --n 900

Per seed s: ``pz.data.saddle(n, grid=False, seed=s)`` (latents uniform on [-1, 1]^2, y = (z1, z2, z1^2 - z2^2))
for training and ``seed=100 + s`` for held-out points; ``pz.UKR().fit(Y, seed=s)`` with every setting at its
default. Scores: the leave-one-out reconstruction error R(X) on the training points, the held-out
reconstruction error and lpd (``fit.evaluate``), and trustworthiness (k = 10) of the fitted latents and of
the held-out points' latents w.r.t. the true ones. Peers on the same training points (trustworthiness of
their 2-D embedding): PCA, Isomap (10 neighbours) and locally linear embedding (10 neighbours).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import jax
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import Isomap, LocallyLinearEmbedding

import probzoo as pz
from probzoo.models.ukr import trustworthiness


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for seed in range(args.seeds):
        Y, Z = pz.data.saddle(args.n, grid=False, seed=seed)
        Yt, Zt = pz.data.saddle(args.n, grid=False, seed=100 + seed)
        t0 = time.perf_counter()
        fit = pz.UKR().fit(Y, seed=seed)
        wall = time.perf_counter() - t0
        held = fit.evaluate(Yt, Zt)
        peers = {
            "pca": PCA(2).fit_transform(Y),
            "isomap": Isomap(n_neighbors=10, n_components=2).fit_transform(Y),
            "lle": LocallyLinearEmbedding(n_neighbors=10, n_components=2, random_state=seed).fit_transform(Y),
        }
        rows.append({"seed": seed, "loo_error": fit.info["reconstruction_error"],
                     "trustworthiness": trustworthiness(Z, fit.latents),
                     "heldout_error": held["reconstruction_error"], "heldout_lpd": held["lpd"],
                     "heldout_trustworthiness": held["trustworthiness"], "fit_s": wall,
                     **{f"{k}_trustworthiness": trustworthiness(Z, v) for k, v in peers.items()}})
        print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for key in rows[0]:
        if key == "seed":
            continue
        v = np.array([r[key] for r in rows], float)
        summary[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
                        "min": float(v.min()), "max": float(v.max())}
    print(json.dumps({"machine": {"platform": platform.platform(), "jax": jax.__version__}, "n": args.n,
                      "rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
