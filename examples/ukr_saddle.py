"""UKR on the saddle y3 = y1^2 - y2^2 (articles 000 and 001), with probzoo.

Reproduces the articles' figure (observed points with the wireframe of the mapped latent grid, and the
latent space coloured by y1) and their animation of the manifold covering the data over the iterations,
for two fits:

* ``articles``: the articles' objective and update (loo=False, weight decay reg=0.1, noise fixed at 1,
  plain gradient descent with step 1.0 for 50 steps from the true 20 x 20 grid, as in article 000);
* ``loo``: probzoo's default, the leave-one-out map with MAP over the latents (Adam), here started from
  small random latents (``--init random``, as in article 001) so that the animation shows the manifold
  unfolding; ``--init pca`` starts from the scaled principal components, already close to the answer.

With ``--nuts`` it also samples the posterior over the latents of a 10 x 10 grid (N = 100) with NUTS
(2 chains) and reports r_hat / ESS of quantities that do not change under rotation/reflection of the
latents, next to the raw latents' r_hat, with a trace figure.

Run from the repository root:  python examples/ukr_saddle.py [--out examples-out/ukr_saddle] [--nuts]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import optax

import probzoo as pz
from probzoo.models.ukr import trustworthiness
from probzoo.plots import ukr as ukr_plots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="examples-out/ukr_saddle", help="folder for the PNG and GIF files")
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps of the leave-one-out MAP fit")
    parser.add_argument("--frames", type=int, default=40, help="animation frames of the leave-one-out fit")
    parser.add_argument("--init", default="random", choices=("random", "pca"), help="start of the loo fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nuts", action="store_true", help="also run NUTS on a 10 x 10 grid")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    Y, Z = pz.data.saddle(n=400, grid=True)  # the article's 20 x 20 grid
    color = Y[:, 0]
    summary = {}

    # the articles' setting: their objective, weight decay and update, from the true latent grid
    articles = pz.UKR(latent_dim=2, bandwidth=1.0, reg=0.1, loo=False, noise=1.0, init=Z).fit(
        Y, method="map", optim=optax.sgd(1.0), num_steps=50, history_every=1, seed=args.seed)
    # probzoo's default model: leave-one-out map, MAP by Adam
    every = max(1, args.steps // args.frames)
    loo = pz.UKR(latent_dim=2, bandwidth=1.0, init=args.init).fit(Y, method="map", num_steps=args.steps,
                                                                  history_every=every, seed=args.seed)

    for name, fit, step in (("articles", articles, 1), ("loo", loo, every)):
        history = fit.arrays["history"]
        figure = ukr_plots.wireframe(fit, out / f"ukr_saddle_{name}.png", color=color)
        steps = np.arange(len(history)) * step
        gif = ukr_plots.animate(Y, history, fit.model, out / f"ukr_saddle_{name}.gif", color=color,
                                steps=steps)
        still = ukr_plots.snapshots(Y, history, fit.model, out / f"ukr_saddle_{name}_steps.png",
                                    steps=steps, color=color)
        summary[name] = {
            "reconstruction_error": fit.reconstruction_error(),
            "reconstruction_error_with_own_point": fit.reconstruction_error(loo=False),
            "leave_one_out_error": fit.reconstruction_error(loo=True),
            "trustworthiness": trustworthiness(Z, fit.latents),
            "wall_time_s": fit.wall_time,
            "files": [str(figure), str(gif), str(still)],
        }
    if args.nuts:
        Ys, Zs = pz.data.saddle(n=100, grid=True)
        fit = pz.UKR(latent_dim=2, bandwidth=1.0).fit(Ys, method="nuts", seed=args.seed)
        traces = ukr_plots.nuts_traces(fit, out / "ukr_saddle_nuts_traces.png")
        figure = ukr_plots.wireframe(fit, out / "ukr_saddle_nuts.png", color=Ys[:, 0])
        summary["nuts_n100"] = {
            "reconstruction_error_highest_density_draw": fit.reconstruction_error(),
            "posterior_mean_reconstruction_error": float(fit.idata.posterior["recon_error"].mean()),
            "posterior_mean_s": float(fit.idata.posterior["s"].mean()),
            "trustworthiness": trustworthiness(Zs, fit.latents),
            "diagnostics": fit.diagnostics(), "divergences": fit.info["divergences"],
            "mean_leapfrog_steps": fit.info["mean_leapfrog_steps"], "sampling_wall_time_s": fit.wall_time,
            "files": [str(traces), str(figure)],
        }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
