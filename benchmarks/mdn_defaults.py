"""The MDN's default MAP fit on problems it was not tuned on: held-out NLL above the true density's, over
seeds. Prints JSON.

    python benchmarks/mdn_defaults.py                 # 5 seeds x 5 problems: about 2 minutes on 2 cores
    python benchmarks/mdn_defaults.py --seeds 2
    python benchmarks/mdn_defaults.py --fixed-steps 780     # the former default: 10 epochs along a cosine

Problems: ``pz.data.branches`` ("three", "switch", "fan", "crossing"; 1-D conditional mixtures with
branches of sd 0.02-0.05) and article 004's two_branch (sd 0.01 and a widening branch), 10,000 training
points (seed s) and 10,000 held-out points (seed 100 + s); ``pz.MDN(n_components=K)`` with K the true
number of components and every other setting at its default (MAP, until converged).
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

PROBLEMS = {"three": 3, "switch": 2, "fan": 3, "crossing": 3, "two_branch": 2}


def problem(name: str, n: int, seed: int):
    if name == "two_branch":
        return pz.data.two_branch(n, seed=seed), pz.data.two_branch_logpdf
    return pz.data.branches(name, n, seed=seed), lambda x, y: pz.data.branches_logpdf(name, x, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--fixed-steps", type=int, default=None, help="a fixed budget (cosine) instead of the default")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for name, k in PROBLEMS.items():
        for seed in range(args.seeds):
            (x, y), logpdf = problem(name, 10_000, seed)
            (xt, yt), _ = problem(name, 10_000, 100 + seed)
            t0 = time.perf_counter()
            budget = {} if args.fixed_steps is None else {"num_steps": args.fixed_steps}
            fit = pz.MDN(n_components=k).fit(x, y, seed=seed, **budget)
            wall = time.perf_counter() - t0
            rows.append({"problem": name, "seed": seed, "excess_nll": fit.evaluate(xt, yt, logpdf=logpdf)["excess_nll"],
                         "steps": fit.info["num_steps"], "converged": fit.info["converged"],
                         "loop_s": fit.info["loop_time"], "fit_call_s": wall})
    summary = {}
    for name in PROBLEMS:
        r = [row for row in rows if row["problem"] == name]
        ex = np.array([row["excess_nll"] for row in r])
        summary[name] = {"excess_nll_mean": float(ex.mean()), "excess_nll_sd": float(ex.std(ddof=1)) if len(ex) > 1
                         else None, "excess_nll_min": float(ex.min()), "excess_nll_max": float(ex.max()),
                         "steps_median": float(np.median([row["steps"] for row in r])),
                         "loop_s_median": float(np.median([row["loop_s"] for row in r])),
                         "fit_call_s_median": float(np.median([row["fit_call_s"] for row in r]))}
    print(json.dumps({"machine": {"platform": platform.platform(), "jax": jax.__version__}, "rows": rows,
                      "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
