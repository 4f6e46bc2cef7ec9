"""Mixture density regression on the source article's two toy problems (article 004), with probzoo.

The article fits a 64-64 ReLU network with a mixture-of-Normals head by maximum likelihood:
problem 1 (y ~ N(x, x)) with one component, problem 2 (1/2 N(x, 0.01) + 1/2 N(-x, x)) with one component
(which fails) and with two (which works). It plots the data with predicted samples and the predicted mean
and standard deviation against the truth, and could not read out each component's mean and standard
deviation. This script draws all of those figures, each component's mean, standard deviation and weight
as functions of x, and the predictive band of a Bayesian (meanfield) network, and prints held-out
negative log-likelihoods next to the true density's (the floor).

    python examples/mdn_regression.py [--out examples-out/mdn_regression] [--article-budget]

``--article-budget`` trains as the article does (5 epochs of batch 32, Adam at 1e-3) instead of probzoo's
default budget.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import probzoo as pz
from probzoo.plots import mdn as plots

PROBLEMS = {"heteroscedastic": (pz.data.heteroscedastic, pz.data.heteroscedastic_logpdf),
            "two_branch": (pz.data.two_branch, pz.data.two_branch_logpdf)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples-out/mdn_regression")
    ap.add_argument("--n", type=int, default=10_000, help="training points per problem (the article: 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--article-budget", action="store_true", help="5 epochs, batch 32, Adam 1e-3 (as the article)")
    args = ap.parse_args()
    out = Path(args.out)
    budget = {}
    if args.article_budget:
        budget = {"num_steps": 5 * (args.n // 32), "batch_size": 32, "learning_rate": 1e-3, "schedule": "constant"}

    runs = [("heteroscedastic", 1, "map"), ("two_branch", 1, "map"), ("two_branch", 2, "map"),
            ("two_branch", 2, "meanfield")]
    rows = []
    for problem, K, method in runs:
        make, logpdf = PROBLEMS[problem]
        x, y = make(n=args.n, seed=args.seed)
        x_test, y_test = make(n=10_000, seed=args.seed + 1)
        fit = pz.MDN(n_components=K).fit(x, y, method=method, seed=args.seed, **budget)
        tag = f"mdn_{problem}_K{K}_{method}"
        # the article's figures: data with predictive samples (200 evenly spaced x, as the article), mean and sd
        grid = np.linspace(0.1, 1.0, 200, dtype=np.float32)[:, None]
        plots.data_and_samples(fit, grid, _article_points(problem, grid, args.seed), out / f"{tag}_samples.png",
                               seed=args.seed)
        plots.mean_std(fit, out / f"{tag}_mean_std.png", dataset=problem)
        # what the article could not do: every component's curves (bands over posterior draws if Bayesian)
        plots.components(fit, out / f"{tag}_components.png", dataset=problem)
        if method == "meanfield":
            plots.predictive_band(fit, x[:2_000], y[:2_000], out / f"{tag}_band.png")
        scores = fit.evaluate(x_test, y_test, logpdf=logpdf)
        rows.append({"problem": problem, "K": K, "method": method, "heldout_nll": scores["nll"],
                     "floor_nll": scores["floor_nll"], "excess_nll": scores["excess_nll"],
                     "coverage_90": scores["coverage_90"], "train_s": fit.wall_time})
        print(f"{problem:16s} K={K} {method:9s} held-out NLL {scores['nll']:+.4f}  floor {scores['floor_nll']:+.4f}  "
              f"excess {scores['excess_nll']:.4f}  90% coverage {scores['coverage_90']:.3f}  "
              f"train {fit.wall_time:.1f}s", flush=True)
    (out / "mdn_results.json").write_text(json.dumps(rows, indent=1))
    print(f"figures and mdn_results.json in {out}")


def _article_points(problem: str, grid: np.ndarray, seed: int) -> np.ndarray:
    """One y per grid x from the true process, as the article's scatter of 200 evenly spaced x."""
    rng = np.random.default_rng(seed + 2)
    x = grid[:, 0].astype(np.float64)
    if problem == "heteroscedastic":
        y = rng.normal(x, x)
    else:
        y = np.where(rng.random(len(x)) < 0.5, rng.normal(x, 0.01), rng.normal(-x, x))
    return y.astype(np.float32)


if __name__ == "__main__":
    main()
