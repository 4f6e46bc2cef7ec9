"""UKR: seconds per MAP gradient step and peak memory, blockwise (probzoo) vs a dense jax.grad peer.

Both sides differentiate the same objective, the negative log joint of ``pz.UKR().model`` (leave-one-out
map, learned noise), with ``jax.value_and_grad`` and take an Adam step, jit-compiled. The only difference
is how the Nadaraya-Watson map is evaluated: probzoo in row blocks with its custom VJP (O(N x block)
memory), the peer densely in one piece, differentiated by plain autodiff (O(N^2) memory, as in the
articles' code). Each (side, N) runs in its own process so that its peak resident memory
(``resource.getrusage``) is its own; sides alternate per N. The dense peer runs only where its memory,
extrapolated from the smaller N, fits comfortably in this machine's available memory. For N <= 1024 the
block covers all rows and both sides run the same dense code (the rows say which path ran). The largest
N that fits in 24 GiB is extrapolated, not measured: dense as a + b N^2 fitted to its runs, blockwise as
baseline + k block(N) N with k from the largest run. A last run measures the public entry point
``UKR().fit`` (PCA initialisation, a few SVI steps, InferenceData) at the largest N.

With ``--devices D`` probzoo's side splits the rows of its kernel sums over D devices (forced host devices
on a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` in its process), and ``--no-dense`` leaves
the dense peer out (for the large-N curve, where it cannot run). The report fits seconds per step as
a + b N^2 to probzoo's runs (the kernel sums are O(N^2) work).

    python benchmarks/ukr.py [--sizes 400 2000 5000 20000] [--steps 10]      # prints JSON
    python benchmarks/ukr.py --sizes 5000 10000 20000 50000 100000 --devices 2 --no-dense --big-steps 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GIB = 1024**3


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker_step(side: str, n: int, steps: int, devices: int = 1) -> dict:
    from functools import partial

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from numpyro.infer.util import log_density

    import probzoo as pz
    from probzoo.infer.devices import DataParallel
    from probzoo.models.ukr.kernel import auto_block_size

    Y, _ = pz.data.saddle(n=n, grid=False, seed=0)
    block = auto_block_size(n) if side == "probzoo" else n  # block_size >= N: dense, plain autodiff
    ukr = pz.UKR(block_size=block)
    model = ukr.model if devices == 1 else partial(ukr.model, parallel=DataParallel.of(devices))
    rng = np.random.default_rng(0)
    params = {"x": jnp.asarray(4.0 * rng.standard_normal((n, 2)), jnp.float32), "s": jnp.asarray(0.1)}

    def objective(p):
        return -log_density(model, (Y,), {}, p)[0]

    opt = optax.adam(0.05)

    @jax.jit
    def step(p, state):
        value, grads = jax.value_and_grad(objective)(p)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    state = opt.init(params)
    base = _rss_now()
    t0 = time.perf_counter()
    params, state, value = step(params, state)
    jax.block_until_ready(value)
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        params, state, value = step(params, state)
        jax.block_until_ready(value)
        times.append(time.perf_counter() - t0)
    path = "blockwise, custom VJP" if side == "probzoo" and block < n else "dense, autodiff"
    if devices > 1:
        path += f", rows split over {devices} devices"
    return {"side": side, "n": n, "devices": devices, "block_size": block if side == "probzoo" else None, "path": path,
            "median_step_s": float(np.median(times)), "steps_timed": steps, "first_step_s": first,
            "loss": float(value), "peak_rss_gib": _peak_rss() / GIB, "baseline_rss_gib": base / GIB,
            "peak_above_baseline_gib": (_peak_rss() - base) / GIB}


def worker_fit(n: int, steps: int) -> dict:
    import probzoo as pz

    Y, _ = pz.data.saddle(n=n, grid=False, seed=0)
    base = _rss_now()
    t0 = time.perf_counter()
    fit = pz.UKR().fit(Y, method="map", num_steps=steps)
    wall = time.perf_counter() - t0
    return {"side": "probzoo UKR().fit", "n": n, "num_steps": steps, "fit_wall_s": wall,
            "svi_run_s_per_step": fit.info["loop_time"] / steps, "svi_compile_s": fit.compile_time,
            "block_size": fit.info["block_size"], "peak_rss_gib": _peak_rss() / GIB,
            "baseline_rss_gib": base / GIB, "peak_above_baseline_gib": (_peak_rss() - base) / GIB}


def _run(args: list[str], devices: int = 1) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"} if devices > 1 else None
    out = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=False,
                         env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _available_gib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GIB
    return float("nan")


def _largest_n(ns: list[int], mem_gib: list[float], power: int, budget_gib: float = 24.0) -> int | None:
    """Fit mem = a + b N^power to the measured points and solve for the budget."""
    import numpy as np

    if len(ns) < 2:
        return None
    A = np.column_stack([np.ones(len(ns)), np.asarray(ns, float) ** power])
    (a, b), *_ = np.linalg.lstsq(A, np.asarray(mem_gib), rcond=None)
    if b <= 0:
        return None
    return int(((budget_gib - a) / b) ** (1.0 / power))


def _predict_quadratic(mem_gib: dict[int, float], n: int) -> float:
    """a + b n^2 fitted to {N: memory}."""
    import numpy as np

    ns = np.asarray(sorted(mem_gib), float)
    A = np.column_stack([np.ones(len(ns)), ns**2])
    (a, b), *_ = np.linalg.lstsq(A, np.asarray([mem_gib[k] for k in sorted(mem_gib)]), rcond=None)
    return float(a + b * n**2)


def _quadratic_time(rows: list[dict]) -> dict | None:
    """a + b N^2 fitted to the measured seconds per step, and each run's ratio to the fit."""
    import numpy as np

    rows = [r for r in rows if "median_step_s" in r]
    if len(rows) < 2:
        return None
    ns = np.asarray([r["n"] for r in rows], float)
    t = np.asarray([r["median_step_s"] for r in rows])
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones(len(ns)), ns**2]), t, rcond=None)
    return {"a_s": float(a), "b_s_per_pair": float(b),
            "measured_over_fit": {int(n): float(v / (a + b * n**2)) for n, v in zip(ns, t, strict=True)}}


def _largest_n_blockwise(rows: list[dict], budget_gib: float = 24.0) -> dict | None:
    """Blockwise memory is baseline + k block(N) tile(N) + c N: a block's rows times its column tile (at most
    20,000 training points; 64 rows a block from N > 65,536 on, so that term stops growing there) and the
    O(N) arrays (latents, data, their gradients and optimiser state). k and c are fitted by least squares to
    the measured runs' peaks above baseline; the largest N is where the fitted peak reaches the budget."""
    import numpy as np

    from probzoo.models.ukr.kernel import auto_block_size, column_tile

    if len(rows) < 2:
        return None
    A = np.asarray([[auto_block_size(r["n"]) * column_tile(r["n"]), r["n"]] for r in rows], float)
    peaks = np.asarray([r["peak_above_baseline_gib"] * GIB for r in rows])
    (k, c), *_ = np.linalg.lstsq(A, peaks, rcond=None)
    baseline = max(rows, key=lambda r: r["n"])["baseline_rss_gib"] * GIB
    if c <= 0:
        return {"largest_n": None, "reason": "no O(N) growth measurable in these runs", "bytes_per_block_entry": k}

    def peak(n: int) -> float:
        return (baseline + k * auto_block_size(n) * column_tile(n) + c * n) / GIB

    lo, hi = rows[-1]["n"], rows[-1]["n"]
    while peak(hi) < budget_gib:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 1000):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if peak(mid) < budget_gib else (lo, mid)
    largest = max(rows, key=lambda r: r["n"])
    pairs_per_s = largest["n"] ** 2 / largest["median_step_s"]
    return {"largest_n": lo, "bytes_per_block_entry": float(k), "bytes_per_point": float(c),
            "seconds_per_step_at_that_n (N^2 scaling of the largest run's rate)": lo**2 / pairs_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[400, 2000, 5000, 20000])
    parser.add_argument("--steps", type=int, default=10,
                        help="timed steps per (side, N) for 2000 < N <= 5000 (5x that for N <= 2000)")
    parser.add_argument("--big-steps", type=int, default=3, help="timed steps per side for N > 5000")
    parser.add_argument("--fit-steps", type=int, default=3, help="SVI steps of the UKR().fit run at the largest N")
    parser.add_argument("--devices", type=int, default=1, help="devices probzoo's side splits its rows over")
    parser.add_argument("--no-dense", action="store_true", help="leave the dense peer out")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = worker_fit(int(rest[0]), int(rest[1])) if kind == "fit" else \
            worker_step(kind, int(rest[0]), int(rest[1]), int(rest[2]) if len(rest) > 2 else 1)
        print(json.dumps(result))
        return

    rows, dense_mem = [], {}
    for n in sorted(args.sizes):
        steps = args.big_steps if n > 5000 else (args.steps if n > 2000 else 5 * args.steps)
        blockwise = _run(["probzoo", str(n), str(steps), str(args.devices)], args.devices)
        rows.append(blockwise)
        if args.no_dense:
            continue
        predicted = _predict_quadratic(dense_mem, n) if len(dense_mem) >= 2 else None
        limit = 0.5 * _available_gib()
        if predicted is not None and predicted > limit:
            rows.append({"side": "dense", "n": n, "skipped": True,
                         "reason": f"extrapolated peak {predicted:.1f} GiB above the {limit:.1f} GiB allowed "
                                   "(half of this machine's available memory)",
                         "extrapolated_peak_above_baseline_gib": predicted})
        else:
            dense = _run(["dense", str(n), str(steps)])
            rows.append(dense)
            if "peak_above_baseline_gib" in dense:
                dense_mem[n] = dense["peak_above_baseline_gib"]
                if "median_step_s" in blockwise:
                    blockwise["dense_over_probzoo_time"] = dense["median_step_s"] / blockwise["median_step_s"]
                    blockwise["dense_over_probzoo_memory"] = (dense["peak_above_baseline_gib"]
                                                              / blockwise["peak_above_baseline_gib"])
    fit_row = None if args.no_dense else _run(["fit", str(max(args.sizes)), str(args.fit_steps)])
    measured = [r for r in rows if r.get("side") == "probzoo" and "peak_rss_gib" in r]
    dense_ns = sorted(dense_mem)
    dense_total = [next(r["peak_rss_gib"] for r in rows if r.get("side") == "dense" and r.get("n") == k
                        and "peak_rss_gib" in r) for k in dense_ns]
    report = {
        "benchmark": "UKR MAP gradient step (value_and_grad of the negative log joint + Adam), saddle data, D=3, M=2",
        "machine": {"cpu_count": os.cpu_count(), "mem_available_gib_at_end": _available_gib()},
        "rows": rows,
        "public_fit": fit_row,
        "probzoo seconds per step = a + b N^2 (least squares on its runs)": _quadratic_time(measured),
        "largest_n_in_24_gib (extrapolated from the measured peak RSS)": {
            "dense (peak = a + b N^2, fitted on the dense runs)": _largest_n(dense_ns, dense_total, 2),
            "probzoo blockwise (peak = baseline + k block(N) tile(N) + c N, k and c fitted to its runs)":
                _largest_n_blockwise(sorted(measured, key=lambda r: r["n"])),
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
