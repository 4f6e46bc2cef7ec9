"""Benchmark of the clustering VAE on the 5,000 MNIST images; prints JSON.

Seconds per epoch (compilation excluded) for method relaxed / enum x encoder mlp / conv, and the cluster
accuracy / NMI of each after a fixed budget. With ``--peer-python`` (a Python that has PyTorch) the
article's PyTorch model (its conv encoder/decoder with BatchNorm, Gumbel-softmax y, beta = 8) is timed
on the same images, batch size and thread count, interleaved with the probzoo runs; the report gives
medians and the ratio probzoo / PyTorch per configuration.

    python benchmarks/clustering_vae.py --peer-python /path/to/venv-with-torch/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

PEER = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(int(sys.argv[3]))
    torch.manual_seed(0)
    X = torch.from_numpy(np.load(sys.argv[1])).view(-1, 1, 28, 28)
    epochs, K, zd, tau, beta, bs = int(sys.argv[2]), 10, 2, 0.5, 8.0, 100

    class Qz_xy(nn.Module):  # the article's q(z | x, y)
        def __init__(self):
            super().__init__()
            self.conv_e = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
                                        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2))
            self.fc1, self.fc2 = nn.Linear(128 * 49, 40), nn.Linear(128 * 49, K)
            self.fc = nn.Sequential(nn.Linear(40 + K, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
                                    nn.Linear(1024, 2 * zd))
        def forward(self, x, y):
            h = self.conv_e(x).view(-1, 128 * 49)
            out = self.fc(torch.cat([self.fc1(h), self.fc2(h) * y], 1))
            mu, logvar = out[:, :zd], out[:, zd:]
            return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar

    class Qy_x(nn.Module):  # the article's q(y | x)
        def __init__(self):
            super().__init__()
            self.c1 = nn.Sequential(nn.Conv2d(1, 64, 4, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
            self.c2 = nn.Sequential(nn.Conv2d(64, 128, 4, padding=2), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2))
            self.fc = nn.Sequential(nn.Linear(7 * 7 * 128, 256), nn.Dropout(0.4), nn.ReLU(), nn.Linear(256, K),
                                    nn.Softmax(dim=1))
        def forward(self, x):
            return self.fc(self.c2(self.c1(x)).flatten(1))

    class Pz_y(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(K, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
                                    nn.Linear(1024, 2 * zd))
        def forward(self, y):
            out = self.fc(y)
            return out[:, :zd], out[:, zd:]

    class Px_z(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(zd, 40)
            self.fc_d = nn.Sequential(nn.Linear(40, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
                                      nn.Linear(1024, 128 * 49), nn.LeakyReLU(0.2))
            self.conv_d = nn.Sequential(nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
                                        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())
        def forward(self, z):
            return self.conv_d(self.fc_d(self.fc(z)).view(-1, 128, 7, 7))

    qz, qy, pz, px = Qz_xy(), Qy_x(), Pz_y(), Px_z()
    opt = torch.optim.Adam([*qz.parameters(), *qy.parameters(), *pz.parameters(), *px.parameters()], lr=1e-3)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(X))
        for i in range(len(X) // bs):
            x = X[perm[i * bs:(i + 1) * bs]]
            pi = qy(x)
            g = -torch.log(-torch.log(torch.rand_like(pi) + 1e-20))
            y = F.softmax((torch.log(pi + 1e-20) + g) / tau, dim=1)
            z, mu, logvar = qz(x, y)
            recon = F.binary_cross_entropy(px(z), x, reduction="sum")
            kl_cat = (pi * torch.log(pi + 1e-20) - pi * np.log(1.0 / K)).sum()
            mu2, logvar2 = pz(y)
            kl_gauss = -0.5 * torch.sum(1 + logvar - logvar2 - logvar.exp() / logvar2.exp()
                                        - (mu2 - mu) ** 2 / logvar2.exp())
            loss = recon + kl_cat + beta * kl_gauss
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"epoch_seconds": times}))
''')


def run_peer(python: str, data_path: str, epochs: int, threads: int) -> list[float]:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(PEER)
        script = fh.name
    try:
        out = subprocess.run([python, script, data_path, str(epochs), str(threads)], capture_output=True, text=True,
                             check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    finally:
        os.unlink(script)
    return json.loads(out.stdout.strip().splitlines()[-1])["epoch_seconds"][1:]  # the first epoch warms up


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="relaxed-mlp,enum-mlp,relaxed-conv,enum-conv")
    p.add_argument("--timing-epochs", type=int, default=1, help="epochs per timing run (after compilation)")
    p.add_argument("--timing-rows", type=int, default=1000,
                   help="rows per timing run; seconds per epoch are scaled to the 5,000 images (same batch size)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing runs per configuration")
    p.add_argument("--budget-epochs", type=int, default=10, help="epochs for the accuracy / NMI figures")
    p.add_argument("--budget-configs", default="relaxed-mlp,enum-mlp", help="configurations trained for the budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer-python", default=None, help="a python with torch, for the article's PyTorch model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-budget", action="store_true", help="timings only")
    args = p.parse_args(argv)

    import probzoo as pz

    X, t = pz.data.mnist(seed=args.seed)
    Xt = X[: args.timing_rows]
    scale = len(X) // 100 / (len(Xt) // 100)  # steps per epoch on 5,000 rows / on the timing rows
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    models = {c: pz.ClusteringVAE(encoder=c.split("-")[1]) for c in configs}
    timings: dict[str, list[float]] = {c: [] for c in configs}
    peer_times: list[float] = []
    data_path = None
    if args.peer_python:
        fd, data_path = tempfile.mkstemp(suffix=".npy")
        os.close(fd)
        np.save(data_path, Xt)
    try:
        for _ in range(args.repeats):
            if data_path:
                peer = run_peer(args.peer_python, data_path, args.timing_epochs + 1, args.threads)
                peer_times += [s * scale for s in peer]
            for c in configs:
                fit = models[c].fit(Xt, method=c.split("-")[0], epochs=args.timing_epochs, seed=args.seed,
                                    num_draws=1, n_reconstructions=0)
                timings[c].append(fit.info["loop_time"] / args.timing_epochs * scale)
    finally:
        if data_path:
            Path(data_path).unlink(missing_ok=True)

    report: dict = {"data": "pz.data.mnist(): 5,000 images", "batch_size": 100, "seed": args.seed,
                    "timing_epochs": args.timing_epochs, "timing_rows": len(Xt), "repeats": args.repeats,
                    "threads": args.threads,
                    "seconds_per_epoch": {}, "budget": {}}
    peer_med = float(np.median(peer_times)) if peer_times else None
    if peer_med is not None:
        report["seconds_per_epoch"]["pytorch_article_conv"] = {"median": peer_med, "runs": peer_times}
    for c in configs:
        med = float(np.median(timings[c]))
        row = {"median": med, "runs": timings[c]}
        if peer_med:
            row["ratio_to_pytorch"] = med / peer_med
        report["seconds_per_epoch"][c] = row
    if not args.skip_budget:
        for c in [c.strip() for c in args.budget_configs.split(",") if c.strip()]:
            epochs = args.budget_epochs
            models.setdefault(c, pz.ClusteringVAE(encoder=c.split("-")[1]))
            t0 = time.perf_counter()
            fit = models[c].fit(X, method=c.split("-")[0], epochs=epochs, seed=args.seed)
            scores = fit.evaluate(X, t, num_samples=4)
            report["budget"][c] = {"epochs": epochs, "seconds": time.perf_counter() - t0,
                                   **{k: scores[k] for k in ("accuracy", "nmi", "elbo", "lpd", "clusters_used")}}
    json.dump(report, sys.stdout, indent=1)
    print()
    return report


if __name__ == "__main__":
    main()
