"""Time to a first result: ``import probzoo``, ``probzoo --help`` and a first default MDN fit, each in a
fresh process, as a new user meets them.

Three states of JAX's persistent compilation cache (probzoo.cache): ``off`` (every program compiled,
as on a machine where the cache is switched off), ``cold`` (the first process with an empty cache
folder, which also fills it) and ``warm`` (the next process, loading the programs). The target is a first
fit within 2x its training time plus 3 s; ``budget_ratio`` is the fit call's wall time over that
budget (<= 1 meets it). Medians over ``--repeats`` fresh processes per state.

Peers, with ``--peer-python`` (a Python interpreter that has PyTorch and/or TensorFlow Probability; each peer
runs where its framework imports, and is reported as absent otherwise): article 004's network (1 -> 64 -> 64
ReLU -> a 2-component Gaussian mixture) on the same 10,000 points, in a fresh process per run, timed from the
framework's import to the trained model, at the article's budget (5 epochs of batch 32, Adam 1e-3): Keras with
TensorFlow Probability's ``MixtureNormal`` layer as in the article, and the same network and mixture negative
log-likelihood written in PyTorch. probzoo is timed at that budget too, next to its own default.

    python benchmarks/first_fit.py [--repeats 3] [--n 10000] [--peer-python /path/to/python]
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
from pathlib import Path

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


ARTICLE_FIT = """
import time
t0 = time.perf_counter()
import probzoo as pz
t1 = time.perf_counter()
x, y = pz.data.two_branch(n={n}, seed=0)
t2 = time.perf_counter()
fit = pz.MDN(n_components=2).fit(x, y, num_steps=5 * ({n} // 32), batch_size=32, learning_rate=1e-3,
                                 schedule="constant")
t3 = time.perf_counter()
import json
print(json.dumps({{"total_s": t3 - t0 - (t2 - t1), "train_s": fit.info["loop_time"]}}))
"""

# The peers read the data from a .npy file (the same 10,000 points) and time from their framework's import on.
TORCH_FIT = """
import time
t0 = time.perf_counter()
import json, math
import numpy as np
import torch
torch.manual_seed(0)
xy = np.load({path!r})
x, y = torch.from_numpy(xy[:, :1]), torch.from_numpy(xy[:, 1])
K = 2
net = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                          torch.nn.Linear(64, 3 * K))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)

def nll(out, y):  # the mixture's negative log-likelihood, as TFP's MixtureNormal parametrises it
    logits, mu, s = out[:, :K], out[:, K:2 * K], torch.nn.functional.softplus(out[:, 2 * K:])
    log_n = -0.5 * ((y[:, None] - mu) / s) ** 2 - torch.log(s) - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(torch.log_softmax(logits, -1) + log_n, -1).mean()

t1 = time.perf_counter()
for epoch in range(5):
    perm = torch.randperm(len(x))
    for i in range(0, len(x) - 31, 32):
        idx = perm[i:i + 32]
        opt.zero_grad()
        loss = nll(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
t2 = time.perf_counter()
print(json.dumps({{"total_s": t2 - t0, "train_s": t2 - t1, "final_loss": float(loss)}}))
"""

KERAS_TFP_FIT = """
import time
t0 = time.perf_counter()
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras
tfpl = tfp.layers
tf.random.set_seed(0)
xy = np.load({path!r})
K = 2
model = keras.Sequential([keras.layers.InputLayer(input_shape=(1,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(tfpl.MixtureNormal.params_size(K, (1,))),
                          tfpl.MixtureNormal(K, (1,))])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=lambda y, q: -q.log_prob(y))
t1 = time.perf_counter()
history = model.fit(xy[:, :1], xy[:, 1:], epochs=5, batch_size=32, verbose=0)
t2 = time.perf_counter()
print(json.dumps({{"total_s": t2 - t0, "train_s": t2 - t1, "final_loss": float(history.history["loss"][-1])}}))
"""


def _script(code: str, python: str = sys.executable, cache: str = "0") -> dict[str, float]:
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, env=_env(cache))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


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
    ap.add_argument("--peer-python", default=None, help="a Python with torch and/or tensorflow_probability")
    args = ap.parse_args()
    peers = {}
    if args.peer_python:
        peers = {name: code for name, code, module in (("pytorch", TORCH_FIT, "torch"),
                                                       ("keras_tfp", KERAS_TFP_FIT, "tensorflow_probability"))
                 if _has(args.peer_python, module)}
    off, cold, warm, article, peer_rows = [], [], [], [], {name: [] for name in peers}
    with tempfile.TemporaryDirectory() as data_dir:
        data = Path(data_dir) / "two_branch.npy"
        _script(f"import numpy as np, probzoo as pz; np.save({str(data)!r}, np.column_stack("
                f"pz.data.two_branch(n={args.n}, seed=0)).astype(np.float32)); print('{{}}')")
        for _ in range(args.repeats):  # interleaved: every contender once per round
            off.append(_fit(args.n, "0"))
            with tempfile.TemporaryDirectory() as folder:
                cold.append(_fit(args.n, folder))
                warm.append(_fit(args.n, folder))
            with tempfile.TemporaryDirectory() as folder:
                article.append({f"{state}_{k}": v for state in ("cold", "warm")
                                for k, v in _script(ARTICLE_FIT.format(n=args.n), cache=folder).items()})
            for name, code in peers.items():
                peer_rows[name].append(_script(code.format(path=str(data)), python=args.peer_python))
    report = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "n": args.n, "repeats": args.repeats,
        "mdn_first_fit": {"off": median(off), "cold": median(cold), "warm": median(warm)},
        "probzoo_help_s": round(float(np.median([_help_s("0") for _ in range(args.repeats)])), 3),
        # article 004's budget (5 epochs of batch 32), from the import on, in a fresh process each; probzoo with an
        # empty compilation cache (cold) and the same cache again (warm)
        "article_budget": {"probzoo": median(article),
                           **{name: median(rows) for name, rows in peer_rows.items()}},
        "peers_absent": [name for name in ("pytorch", "keras_tfp") if name not in peers],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
