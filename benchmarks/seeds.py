"""A fit with another seed against the same fit with the same seed again, in one process.

A seed sweep, or a comparison over seeds, fits one model on one data set many times. Each fit below is made
three times in a fresh process with an empty compilation cache: seed 0 (everything compiled), then seed 1
(another seed) and seed 0 again (the same seed: every program served by the in-process and persistent caches).
Reported per model: the fit call's wall time and the fit's ``compile_time`` for each, and ``ratio`` = another
seed's fit call over the same seed's. A run's random keys are inputs of its compiled programs, so another seed
should cost what the same seed does (ratio near 1); a program that held its seed as a constant would be
compiled again for every seed.

    python benchmarks/seeds.py [--repeats 3]
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

FITS = {
    "mdn_map": "pz.MDN(n_components=2).fit(x, y, num_steps=400, batch_size=100, seed=SEED)",
    "mdn_meanfield": "pz.MDN(n_components=2).fit(x, y, method='meanfield', num_steps=400, batch_size=100, seed=SEED)",
    "clustering_vae_relaxed": "pz.ClusteringVAE(n_clusters=10).fit(digits[:500], method='relaxed', epochs=2, "
                              "batch_size=100, seed=SEED)",
    "rbm_cd": "pz.RBM(n_hidden=16).fit(digits, epochs=2, seed=SEED)",
}

SCRIPT = """
import json, time
import numpy as np
import probzoo as pz
x, y = pz.data.two_branch(n=2000, seed=0)
digits = pz.data.digits(seed=0)[0].astype(np.float32)
out = {{}}
for label, seed in (("first", 0), ("another_seed", 1), ("same_seed", 0)):
    t0 = time.perf_counter()
    fit = {fit}
    out[label] = {{"fit_call_s": time.perf_counter() - t0, "compile_s": fit.compile_time}}
print("RESULT " + json.dumps(out))
"""


def run(fit: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PROBZOO_COMPILATION_CACHE": cache}
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        done = subprocess.run([sys.executable, "-c", SCRIPT.format(fit=fit.replace("SEED", "seed"))],
                              capture_output=True, text=True, check=True, env=env)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    results = {}
    for name, fit in FITS.items():
        rows = [run(fit) for _ in range(args.repeats)]
        med = {label: {k: float(np.median([r[label][k] for r in rows])) for k in rows[0][label]}
               for label in rows[0]}
        med["ratio"] = med["another_seed"]["fit_call_s"] / med["same_seed"]["fit_call_s"]
        results[name] = med
        print(f"# {name}: first {med['first']['fit_call_s']:.2f} s, another seed "
              f"{med['another_seed']['fit_call_s']:.2f} s (compile {med['another_seed']['compile_s']:.2f}), same seed "
              f"{med['same_seed']['fit_call_s']:.2f} s (compile {med['same_seed']['compile_s']:.2f})",
              file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "seeds", "repeats": args.repeats, "fits": FITS, "results": results,
                      "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}, indent=1))


if __name__ == "__main__":
    main()
