"""Fits over several devices and processes (probzoo.infer.devices).

The multi-device checks run in subprocesses: JAX fixes its number of CPU devices when it starts
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``), and ``jax.distributed`` takes a process each.

Tolerances: split over devices, a minibatch's sums (the log-likelihood and every gradient) are added in
another order, so float32 results differ by rounding, about 1e-7 relative a sum; over the tens of steps
here that stays below 1e-5 in the parameters (measured: 1e-7 to 1e-6). The tests allow 1e-4 (1e-3 for the
relaxed VAE, whose Concrete samples amplify rounding, and for UKR's latents, each of whose gradients sums
hundreds of kernel terms split over the devices; measured 9e-5), far below what a wrong split gives: another
minibatch changes the loss by several per cent, and a likelihood counted once per device multiplies it.
MCMC chains are not split: each runs the same single-chain program from its own key, so their draws are
compared exactly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import probzoo as pz
from probzoo.infer.devices import resolve_devices
from probzoo.infer.mcmc import run_mcmc

FOUR_DEVICES = textwrap.dedent("""
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    import probzoo as pz

    def leaves(fit):
        return [np.asarray(a).ravel().tolist() for a in jax.tree.leaves(fit.params)]

    out = {"device_count": jax.device_count()}
    x, y = pz.data.two_branch(n=512, seed=0)
    digits = pz.data.digits(seed=0)[0].astype(np.float32)
    for d in (None, 2, 4):
        mdn = pz.MDN(hidden=(8,)).fit(x, y, num_steps=40, batch_size=64, devices=d)
        vae = pz.ClusteringVAE(n_clusters=10).fit(digits[:400], method="relaxed", epochs=1, batch_size=100,
                                                  devices=d, num_draws=1, n_reconstructions=0)
        cd = pz.RBM(n_hidden=16).fit(digits, epochs=1, devices=d, diagnostic_chains=0)
        pcd = pz.RBM(n_hidden=16).fit(digits, method="pcd", epochs=1, devices=d, diagnostic_chains=0)
        out[str(d)] = {name: {"params": leaves(f), "losses": f.losses.tolist()}
                       for name, f in (("mdn", mdn), ("vae", vae), ("cd", cd), ("pcd", pcd))}

    def regression(X, y=None):
        b = numpyro.sample("b", dist.Normal(0, 1).expand([3]).to_event(1))
        with numpyro.plate("data", X.shape[0]):
            numpyro.sample("y", dist.Normal(X @ b, 0.5), obs=y)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    Y = (X @ np.array([1.0, -1.0, 0.5]) + 0.5 * rng.normal(size=100)).astype(np.float32)
    for d in (1, 2, 4):
        for method in ("nuts", "barker"):
            f = pz.from_numpyro(regression, X, y=Y).fit(method=method, num_warmup=100, num_samples=100,
                                                        num_chains=4, devices=d)
            out[f"{method}{d}"] = {"b": np.asarray(f.idata.posterior["b"]).tolist(),
                                   "chain_method": f.info["chain_method"]}
    saddle = pz.data.saddle(n=400, seed=0)[0]
    for d in (None, 2, 4):
        f = pz.UKR().fit(saddle, num_steps=100, devices=d)
        out[str(d)]["ukr"] = {"params": leaves(f), "losses": f.losses.tolist()}
    from probzoo.infer.devices import DataParallel
    from probzoo.models.ukr.kernel import nadaraya_watson

    rng = np.random.default_rng(1)
    Xl = rng.normal(size=(500, 2)).astype(np.float32)
    Yl = rng.normal(size=(500, 3)).astype(np.float32)

    def objective(X, Y, **kw):
        f = nadaraya_watson(X, X, Y, 0.5, self_index=np.arange(500), **kw)
        return (Y - f).__pow__(2).sum()

    from probzoo.models.ukr import kernel

    dense = jax.value_and_grad(objective, argnums=(0, 1))(Xl, Yl)
    for d, tile in ((1, None), (2, None), (4, None), (1, 96), (4, 96)):
        # tile: the training points in column tiles of at most 96 (6 tiles of 88, the last padded), as at
        # N > 20,000
        kernel._COLUMN_TILE = tile or 20_000
        parallel = DataParallel(jax.devices()[:d])
        value, grads = jax.jit(jax.value_and_grad(lambda X, Y: objective(X, Y, block_size=64, parallel=parallel),
                                                  argnums=(0, 1)))(Xl, Yl)
        out[f"kernel{d}" + ("tiled" if tile else "")] = {
            "value": [float(value), float(dense[0])],
            "grad_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(grads, dense[1])),
            "grad_max": max(float(np.max(np.abs(b))) for b in dense[1])}
    kernel._COLUMN_TILE = 20_000
    rbm = pz.RBM(n_hidden=16).fit(digits, epochs=1, diagnostic_chains=0)
    for d in (1, 2, 4):
        out[f"gibbs{d}"] = rbm.sample(num_chains=4, num_samples=50, devices=d).samples["v"].tolist()

    def subsampled(X, y=None):  # HMCECS needs the observations indexed by the data plate
        b = numpyro.sample("b", dist.Normal(0, 1).expand([3]).to_event(1))
        with numpyro.plate("data", X.shape[0]) as idx:
            numpyro.sample("y", dist.Normal(X[idx] @ b, 0.5), obs=y[idx])

    f = pz.from_numpyro(subsampled, X, y=Y).fit(method="hmcecs", num_warmup=100, num_samples=100, num_chains=4,
                                                devices=4)
    out["hmcecs4"] = {"b": np.asarray(f.idata.posterior["b"]).tolist(), "chain_method": f.info["chain_method"]}
    f = pz.from_numpyro(regression, X, y=Y).fit(method="meanfield", num_steps=50, devices=4)
    out["meanfield4"] = float(f.info["final_loss"])
    f = pz.from_numpyro(regression, X, y=Y).fit(method="meanfield", num_steps=50)
    out["meanfield"] = float(f.info["final_loss"])
    errors = {}
    for name, call in {
        "batch": lambda: pz.MDN(hidden=(8,)).fit(x, y, num_steps=2, batch_size=50, devices=4),
        "chains": lambda: pz.from_numpyro(regression, X, y=Y).fit(method="nuts", num_chains=2, devices=4),
        "too_many": lambda: pz.MDN(hidden=(8,)).fit(x, y, num_steps=2, devices=8),
    }.items():
        try:
            call()
        except ValueError as err:
            errors[name] = str(err)
    out["errors"] = errors
    print("RESULT " + json.dumps(out))
""")


def _run(script: str, *args: str, timeout: float = 420) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def four_devices() -> dict:
    return _run(FOUR_DEVICES)


def _max_diff(a: list, b: list) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("fit", "tol"), [("mdn", 1e-4), ("vae", 1e-3), ("cd", 1e-4), ("pcd", 1e-4), ("ukr", 1e-3)])
def test_one_two_and_four_devices_give_the_same_fit(four_devices, fit, tol):
    assert four_devices["device_count"] == 4
    one = four_devices["None"][fit]
    for d in ("2", "4"):
        other = four_devices[d][fit]
        assert _max_diff(one["params"], other["params"]) < tol, (fit, d)
        np.testing.assert_allclose(other["losses"], one["losses"], rtol=10 * tol, err_msg=f"{fit} on {d}")
    # and the fit did move: the parameters after training are not where a wrong run would leave them
    assert _max_diff(one["params"], four_devices["4"][fit]["params"]) < 0.1 * max(
        float(np.max(np.abs(np.asarray(p)))) for p in one["params"])


@pytest.mark.parametrize("method", ["nuts", "barker"])
def test_chains_split_over_devices_draw_the_same_values(four_devices, method):
    one = np.asarray(four_devices[f"{method}1"]["b"])
    assert one.shape == (4, 100, 3)
    assert four_devices[f"{method}1"]["chain_method"] == "sharded"
    for d in ("2", "4"):
        np.testing.assert_array_equal(np.asarray(four_devices[f"{method}{d}"]["b"]), one)
    # the chains are distinct chains (their own keys), and they found the posterior of the regression
    assert not np.array_equal(one[0], one[1])
    np.testing.assert_allclose(one.reshape(-1, 3).mean(axis=0), [1.0, -1.0, 0.5], atol=0.2)


@pytest.mark.parametrize("devices", ["1", "2", "4", "1tiled", "4tiled"])
def test_ukr_kernel_sums_split_by_rows_equal_the_dense_ones(four_devices, devices):
    # N = 500 rows over 4 devices: padded to 125 a device; objective and gradient as the dense evaluation's,
    # with the training points in one column tile and in six (the online softmax across tiles)
    kernel = four_devices[f"kernel{devices}"]
    assert kernel["value"][0] == pytest.approx(kernel["value"][1], rel=1e-5)
    assert kernel["grad_diff"] < 1e-5 * kernel["grad_max"]


def test_the_rbm_gibbs_chains_and_hmcecs_split_over_devices(four_devices):
    one = np.asarray(four_devices["gibbs1"])
    assert one.shape == (4, 50, 64) and not np.array_equal(one[0], one[1])
    for d in ("2", "4"):
        np.testing.assert_array_equal(np.asarray(four_devices[f"gibbs{d}"]), one)
    hmcecs = four_devices["hmcecs4"]
    assert hmcecs["chain_method"] == "sharded"
    np.testing.assert_allclose(np.asarray(hmcecs["b"]).reshape(-1, 3).mean(axis=0), [1.0, -1.0, 0.5], atol=0.2)


def test_a_generic_svi_engine_splits_the_data_plate(four_devices):
    assert four_devices["meanfield4"] == pytest.approx(four_devices["meanfield"], rel=1e-4)


def test_what_the_devices_cannot_split_is_refused(four_devices):
    errors = four_devices["errors"]
    assert errors["batch"].startswith("batch_size: 50 cannot be split evenly over 4 devices")
    assert errors["chains"].startswith("num_chains: 2 cannot be split evenly over 4 devices")
    assert errors["too_many"].startswith("devices: 8 devices asked for, 4 available")


def test_the_devices_argument_is_checked():
    assert resolve_devices(None) is None
    assert len(resolve_devices("all")) == len(resolve_devices(1)) == 1
    x, y = pz.data.two_branch(n=64, seed=0)
    with pytest.raises(ValueError, match=r'^devices: expected None, a number of devices or "all"'):
        pz.MDN(hidden=(4,)).fit(x, y, num_steps=2, devices="al")
    with pytest.raises(TypeError, match="^devices: "):
        pz.MDN(hidden=(4,)).fit(x, y, num_steps=2, devices=True)
    with pytest.raises(ValueError, match="^devices: 2 devices asked for, 1 available"):
        pz.MDN(hidden=(4,)).fit(x, y, num_steps=2, devices=2)
    with pytest.raises(ValueError, match="^chain_method: 'parallel' with devices"):
        from numpyro.infer import NUTS

        run_mcmc(NUTS(lambda: None), chain_method="parallel", devices=1)


WORKER = textwrap.dedent("""
    import json, sys
    import jax
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import numpy as np
    import probzoo as pz
    x, y = pz.data.two_branch(n=512, seed=0)
    fit = pz.MDN(hidden=(8,)).fit(x, y, num_steps=40, batch_size=64, devices="all",
                                  checkpoint=f"{out}/checkpoint", checkpoint_every=20)
    fit.save(f"{out}/fit-{pid}")
    print("RESULT " + json.dumps({"devices": jax.device_count(), "local": jax.local_device_count(),
                                  "params": [np.asarray(a).ravel().tolist() for a in jax.tree.leaves(fit.params)]}))
""")


def test_two_processes_fit_as_one_process_on_two_devices(four_devices, tmp_path: Path):
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(pid), port, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for pid in (0, 1)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads(next(ln for ln in out.splitlines() if ln.startswith("RESULT "))[7:]))
    finally:
        for p in procs:
            p.kill()
    assert [r["devices"] for r in results] == [2, 2] and [r["local"] for r in results] == [1, 1]
    assert _max_diff(results[0]["params"], results[1]["params"]) == 0.0  # every process ends with the same fit
    assert _max_diff(results[0]["params"], four_devices["2"]["mdn"]["params"]) < 1e-4
    # only process 0 wrote files: its saved fit and the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "fit-0"]
    assert pz.load(tmp_path / "fit-0").params.keys() == pz.MDN(hidden=(8,)).fit(
        *pz.data.two_branch(n=64, seed=0), num_steps=1).params.keys()
