"""Benchmark of fits over several devices (``devices=``); prints JSON.

JAX fixes its number of CPU devices when it starts, so the measurements run in a child process started
with ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` (``--devices``, default 2: one per core of
a 2-core machine). In that one process, one device and D devices are timed alternately on the same data:

- seconds per epoch (the training loop's own time, compilation excluded) of the clustering VAE (relaxed,
  the 5,000 MNIST images, batch 100), the MDN (default network, 10,000 two_branch points, batch 128) and
  the RBM's CD-1 (784-500, the 5,000 MNIST images, batch 64), as the ratio one device / D devices;
- NUTS with 4 chains on the MDN (hidden=(8,), 1,000 points): the whole fit's wall time and the ESS per
  second of its invariant quantities, chains split over the D devices (``devices=D``, "sharded") against
  NumPyro's "vectorized" and "sequential" chains on one device.

    python benchmarks/scale.py               # about 20 minutes on 2 cores (NUTS's three runs most of it)
    python benchmarks/scale.py --quick       # smaller budgets, to check that it runs

On a CPU the forced host devices share the machine's cores: a speed-up above 1 needs the work of one
device to leave cores idle (XLA already spreads a large matrix product over every core).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import probzoo as pz

    D, quick, repeats = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
    images = pz.data.mnist()[0][:1000 if quick else 5000]
    x, y = pz.data.two_branch(n=2000 if quick else 10_000, seed=0)
    epochs = 1 if quick else 3

    def per_epoch(fit, n_epochs):
        return fit.info["loop_time"] / n_epochs

    def mdn(devices):
        fit = pz.MDN().fit(x, y, num_steps=epochs * (len(x) // 128), batch_size=128, devices=devices)
        return per_epoch(fit, epochs)

    def vae(devices):
        fit = pz.ClusteringVAE().fit(images, method="relaxed", epochs=epochs, batch_size=100, devices=devices,
                                     num_draws=1, n_reconstructions=0)
        return per_epoch(fit, epochs)

    def rbm(devices):
        fit = pz.RBM(n_hidden=100 if quick else 500).fit(images, epochs=epochs, batch_size=64, devices=devices,
                                                          diagnostic_chains=0)
        return per_epoch(fit, epochs)

    rows = {}
    for name, run in (("mdn_epoch_s", mdn), ("vae_epoch_s", vae), ("rbm_cd1_epoch_s", rbm)):
        times = {1: [], D: []}
        for _ in range(repeats):  # alternated, so a slow spell of the machine hits both
            for d in (None, D):
                times[1 if d is None else D].append(run(d))
        one, many = float(np.median(times[1])), float(np.median(times[D]))
        rows[name] = {"one_device": one, f"{D}_devices": many, "speedup": one / many}

    xs, ys = pz.data.two_branch(n=1000, seed=1)
    budget = {"num_warmup": 100 if quick else 500, "num_samples": 100 if quick else 500, "num_chains": 4}
    nuts = {}
    for label, opts in (("sharded", {"devices": D}), ("vectorized", {"chain_method": "vectorized"}),
                        ("sequential", {"chain_method": "sequential"})):
        t0 = time.perf_counter()
        fit = pz.MDN(hidden=(8,)).fit(xs, ys, method="nuts", **budget, **opts)
        wall = time.perf_counter() - t0
        d = fit.diagnostics()
        ess = min(v for k, v in d.items() if k.startswith("ess_bulk") and isinstance(v, float))
        nuts[label] = {"wall_s": wall, "ess_bulk_min": ess, "ess_per_s": ess / wall,
                       "chain_method": fit.info["chain_method"]}
    for label in nuts:
        nuts[label]["wall_vs_vectorized"] = nuts[label]["wall_s"] / nuts["vectorized"]["wall_s"]
    rows["nuts_4_chains"] = nuts
    print("RESULT " + json.dumps(rows))
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2, help="host devices of the child process (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timings per configuration (median reported)")
    parser.add_argument("--quick", action="store_true", help="smaller budgets, to check that it runs")
    args = parser.parse_args()
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={args.devices}"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(args.devices), "1" if args.quick else "0",
                           str(args.repeats)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr[-4000:])
    result = json.loads(next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    print(json.dumps({"devices": args.devices, "cpu_count": os.cpu_count(), "quick": args.quick, **result},
                     indent=1))


if __name__ == "__main__":
    main()
