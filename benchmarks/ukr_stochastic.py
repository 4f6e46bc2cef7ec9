"""UKR's stochastic MAP against the full-gradient MAP at N = 5,000; prints JSON.

The stochastic MAP (``UKR().fit(Y, batch_size=B)``) scores B random rows a step (every kernel sum still over
all N latents), so a step costs about B / N of a full one. Each side is fitted at several budgets (the
stochastic side's learning rate decays over its budget, as its default does), and every fit is scored by
the same number: the full negative log joint -log p(Y, X, s) at its final latents, evaluated by one
compiled program. A row per fit gives its training-loop seconds (compilation excluded) and that score,
so the two sides can be compared at equal time.

    python benchmarks/ukr_stochastic.py            # about 3 minutes on 2 cores
    python benchmarks/ukr_stochastic.py --quick    # smaller budgets, to check that it runs
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.util import log_density

import probzoo as pz


def noisy_saddle(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, size=(n, 2))
    return (np.column_stack([u, u[:, 0] ** 2 - u[:, 1] ** 2]) + 0.05 * rng.normal(size=(n, 3))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    Y = noisy_saddle(args.n)
    model = pz.UKR()
    objective = jax.jit(lambda p: -log_density(model.model, (jnp.asarray(Y),), {}, p)[0])

    def score(fit) -> float:
        return float(objective({k.removesuffix("_auto_loc"): jnp.asarray(v) for k, v in fit.params.items()}))

    full_budgets = [10, 25] if args.quick else [25, 50, 100, 200, 400]
    sides = [("full gradient", None, full_budgets)]
    for batch in (500, 250):
        sides.append((f"stochastic, {batch} rows a step", batch,
                      [b * args.n // batch for b in full_budgets]))  # the same kernel work as the full budgets
    rows = []
    for label, batch, budgets in sides:
        for steps in budgets:
            fit = model.fit(Y, num_steps=steps, batch_size=batch)
            rows.append({"side": label, "batch_size": batch, "num_steps": steps,
                         "loop_s": fit.info["loop_time"], "compile_s": fit.compile_time,
                         "neg_log_joint": score(fit), "reconstruction_error": fit.info["reconstruction_error"]})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"benchmark": f"UKR MAP, noisy saddle, N = {args.n}: full-gradient vs stochastic steps",
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
