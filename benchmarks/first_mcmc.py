"""Time to a first MCMC fit in a fresh process: probzoo's NUTS against the same chains run with NumPyro and turned
into InferenceData by ArviZ, as a user of those two libraries would write it.

Two models: a Bayesian linear regression (3 coefficients, 100 points) brought in with ``pz.from_numpyro``, and
the MDN with one hidden layer of 8 units on 500 ``two_branch`` points (NUTS over its 50 weights). Each contender
runs in a new Python process, probzoo with an empty compilation cache (its default cache, on a first run;
NumPyro alone keeps none), so every program it needs is compiled, as in a user's first session: ``fit_s`` is the
fit call with its InferenceData (probzoo's ``fit`` and ``fit.idata``; NumPyro's ``MCMC.run`` and
``az.from_numpyro``), ``total_s`` adds the imports. probzoo's fit also starts each chain apart, counts the
gradients, and draws the posterior predictive (the MDN). Medians over ``--repeats`` rounds, contenders
interleaved within a round.

    python benchmarks/first_mcmc.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

BUDGET = {"regression": {"num_warmup": 500, "num_samples": 500, "num_chains": 4},
          "mdn": {"num_warmup": 200, "num_samples": 200, "num_chains": 2}}

MODELS = """
import numpy as np
import numpyro
import numpyro.distributions as dist

def regression(X, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("y", dist.Normal(X @ b, 0.5), obs=y)

rng = np.random.default_rng(0)
X = rng.normal(size=(100, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -1.0, 0.5]) + 0.5 * rng.normal(size=100)).astype(np.float32)
"""

PROBZOO = """
import time
t0 = time.perf_counter()
import json
import probzoo as pz
{models}
t1 = time.perf_counter()
if {which!r} == "regression":
    fit = pz.from_numpyro(regression, X, y=Y).fit(method="nuts", seed=0, **{budget})
else:
    x, y = pz.data.two_branch(n=500, seed=0)
    fit = pz.MDN(n_components=2, hidden=(8,)).fit(x, y, method="nuts", seed=0, **{budget})
idata = fit.idata
t2 = time.perf_counter()
print(json.dumps({{"total_s": t2 - t0, "fit_s": t2 - t1}}))
"""

NUMPYRO = """
import time
t0 = time.perf_counter()
import json
import jax
import arviz as az
from numpyro.infer import MCMC, NUTS
{models}
t1 = time.perf_counter()
if {which!r} == "regression":
    model, args, kwargs = regression, (X,), {{"y": Y}}
else:
    import probzoo as pz
    x, y = pz.data.two_branch(n=500, seed=0)
    model, args, kwargs = pz.MDN(n_components=2, hidden=(8,)).mixture_model, (x, y), {{}}
budget = {budget}
mcmc = MCMC(NUTS(model), num_warmup=budget["num_warmup"], num_samples=budget["num_samples"],
            num_chains=budget["num_chains"], chain_method="vectorized", progress_bar=False)
mcmc.run(jax.random.PRNGKey(0), *args, **kwargs)
idata = az.from_numpyro(mcmc)
t2 = time.perf_counter()
print(json.dumps({{"total_s": t2 - t0, "fit_s": t2 - t1}}))
"""


def _run(code: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR",
                                                              "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")}
    with tempfile.TemporaryDirectory() as cache:
        env["PROBZOO_COMPILATION_CACHE"] = cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.median([r[k] for r in rows])), 2) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows: dict[str, dict[str, list]] = {m: {"probzoo": [], "numpyro_arviz": []} for m in BUDGET}
    for r in range(args.repeats):
        for which, budget in BUDGET.items():
            contenders = [("probzoo", PROBZOO), ("numpyro_arviz", NUMPYRO)]
            for name, code in contenders if r % 2 == 0 else contenders[::-1]:
                rows[which][name].append(_run(code.format(models=MODELS, which=which, budget=budget)))
    report = {"benchmark": "first_mcmc", "repeats": args.repeats, "budgets": BUDGET,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "processor": platform.processor() or platform.machine()}}
    for which, by in rows.items():
        p, n = median(by["probzoo"]), median(by["numpyro_arviz"])
        report[which] = {"probzoo": p, "numpyro_arviz": n, "fit_ratio": round(p["fit_s"] / n["fit_s"], 2)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
