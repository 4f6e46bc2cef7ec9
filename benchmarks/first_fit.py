"""Time to a first result: ``import probzoo``, ``probzoo --help`` and a first default MDN fit, each in a
fresh process, as a new user meets them.

Three states of JAX's persistent compilation cache (probzoo.cache): ``off`` (every program compiled,
as on a machine where the cache is switched off), ``cold`` (the first process with an empty cache
folder, which also fills it) and ``warm`` (the next process, loading the programs). The target is a first
fit within 2x its training time plus 3 s; ``budget_ratio`` is the fit call's wall time over that
budget (<= 1 meets it). Medians over ``--repeats`` fresh processes per state.

    python benchmarks/first_fit.py [--repeats 3] [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

FIT = """
import time
t0 = time.perf_counter()
import probzoo as pz
t1 = time.perf_counter()
x, y = pz.data.two_branch(n={n}, seed=0)
t2 = time.perf_counter()
fit = pz.MDN(n_components=2).fit(x, y)
t3 = time.perf_counter()
import json
print(json.dumps({{"import_s": t1 - t0, "fit_call_s": t3 - t2, "wall_time": fit.wall_time,
                  "train_s": fit.info["loop_time"], "compile_s": fit.compile_time}}))
"""


def _env(cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR",
                                                              "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")}
    env["PROBZOO_COMPILATION_CACHE"] = cache
    return env


def _fit(n: int, cache: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", FIT.format(n=n)], capture_output=True, text=True, check=True,
                         env=_env(cache))
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["budget_ratio"] = row["fit_call_s"] / (2 * row["train_s"] + 3.0)
    return row


def _help_s(cache: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "probzoo", "--help"], capture_output=True, check=True, env=_env(cache))
    return time.perf_counter() - t0


def median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.median([r[k] for r in rows])), 3) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    off, cold, warm = [], [], []
    for _ in range(args.repeats):
        off.append(_fit(args.n, "0"))
        with tempfile.TemporaryDirectory() as folder:
            cold.append(_fit(args.n, folder))
            warm.append(_fit(args.n, folder))
    report = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "n": args.n, "repeats": args.repeats,
        "mdn_first_fit": {"off": median(off), "cold": median(cold), "warm": median(warm)},
        "probzoo_help_s": round(float(np.median([_help_s("0") for _ in range(args.repeats)])), 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
