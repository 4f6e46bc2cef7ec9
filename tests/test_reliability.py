"""Silent wrong answers found by trying the public API as a new user would; each failed before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.autoguide import AutoNormal

import probzoo as pz
from probzoo.infer import Fit, run_svi
from probzoo.models.base import ZooModel


def normal_model(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    with numpyro.plate("data", y.shape[0]) as idx:
        numpyro.sample("y", dist.Normal(mu, 2.0), obs=jnp.asarray(y)[idx])


class _RowCount(Fit):
    def evaluate(self, y):
        y = pz.validation.as_array(y, "y", ndim=1)
        return {"lpd": -float(np.mean(np.abs(y - self.params["mean"]))), "held_out_rows": len(y)}


class RowCounter(ZooModel):
    """A model whose fit records how many rows it was trained on (no inference: the split is under test)."""

    methods = ("a", "b")

    def __init__(self):
        self._config = {}

    def fit(self, y, method="a", seed=0, progress=False):
        y = pz.validation.as_array(y, "y", ndim=1)
        return _RowCount(self, method, {"mean": float(y.mean())}, info={"train_rows": len(y)})


def test_compare_splits_lists_and_dataframes_like_arrays():
    import pandas as pd

    y = np.random.default_rng(0).normal(size=50).astype(np.float32)
    want = pz.compare(RowCounter(), (y,), methods=["a"], seed=1)
    for as_given in (y.tolist(), pd.Series(y)):
        got = pz.compare(RowCounter(), (as_given,), methods=["a"], seed=1)
        assert got.loc["a", "held_out_rows"] == 10                  # 20 % held out, not scored in-sample
        assert got.loc["a", "lpd"] == want.loc["a", "lpd"]


def test_compare_refuses_a_method_twice_before_fitting_anything():
    with pytest.raises(ValueError, match="^methods: 'a' appears twice"):
        pz.compare(RowCounter(), (np.ones(10, np.float32),), methods=["a", "b", "a"])


def test_masked_values_are_refused_not_used_as_data():
    x, y = pz.data.heteroscedastic(n=20, seed=0)
    masked = np.ma.masked_array(y, mask=np.arange(20) == 3)
    with pytest.raises(ValueError, match=r"^y: is a masked array with 1 masked value"):
        pz.MDN(n_components=1, hidden=(4,)).fit(x, masked, num_steps=1)
    with pytest.raises(ValueError, match=r"^x: is a masked array with 20 masked value"):
        pz.validation.as_array(np.ma.masked_all((20, 1)), "x")
    # nothing masked: the data are the data
    np.testing.assert_array_equal(pz.validation.as_array(np.ma.masked_array(y), "y"), y)


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    y = np.random.default_rng(0).normal(3.0, 2.0, size=100).astype(np.float32)
    kw = dict(num_steps=20, learning_rate=0.01, chunk_size=5)
    ckpt = tmp_path / "run.ckpt"
    run_svi(normal_model, AutoNormal(normal_model), y, seed=0, checkpoint=ckpt, checkpoint_every=10, **kw)
    with pytest.raises(ValueError, match=r"^resume: .*differs in seed"):
        run_svi(normal_model, AutoNormal(normal_model), y, seed=1, resume=ckpt, **kw)
    with pytest.raises(ValueError, match=r"^resume: .*differs in data"):
        run_svi(normal_model, AutoNormal(normal_model), y + 1.0, seed=0, resume=ckpt, **kw)
    run_svi(normal_model, AutoNormal(normal_model), y, seed=0, resume=ckpt, **kw)  # the same run resumes


def test_resume_refuses_a_checkpoint_of_another_model_configuration(tmp_path):
    """Same parameter shapes, other model or settings: the checkpoint's arrays would fit, the run would not."""
    x, y = pz.data.two_branch(n=64, seed=0)
    ckpt = tmp_path / "mdn.ckpt"
    kw = dict(num_steps=20, batch_size=None, seed=0)
    pz.MDN(n_components=2, hidden=(4,)).fit(x, y, checkpoint=ckpt, checkpoint_every=10, **kw)
    with pytest.raises(ValueError, match=r"^resume: .*differs in settings"):
        pz.MDN(n_components=2, hidden=(4,), activation="tanh").fit(x, y, resume=ckpt, **kw)
    with pytest.raises(ValueError, match=r"^resume: .*differs in settings"):
        pz.MDN(n_components=2, hidden=(4,)).fit(x, y, resume=ckpt, learning_rate=0.5, **kw)
    pz.MDN(n_components=2, hidden=(4,)).fit(x, y, resume=ckpt, **kw)


def test_boolean_flags_refuse_strings():
    with pytest.raises(TypeError, match="^grid: expected True or False, got str 'False'"):
        pz.data.saddle(n=16, grid="False")
    with pytest.raises(TypeError, match="^binarize: expected True or False"):
        pz.data.digits(binarize="False")
    assert pz.data.saddle(n=16, grid=np.bool_(True))[0].shape == (16, 3)


def test_load_names_its_argument():
    with pytest.raises(TypeError, match="^path: expected a folder path"):
        pz.load(123)


def test_metrics_refuse_nan_and_empty_input_and_match_sparse_label_ids():
    with pytest.raises(ValueError, match="^log_lik_draws: contains NaN"):
        pz.metrics.mean_log_predictive_density(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="^log_lik_draws: "):
        pz.metrics.mean_log_predictive_density(np.zeros((0, 3)))
    assert pz.metrics.mean_log_predictive_density(np.array([[-np.inf, 0.0], [0.0, 0.0]])) == pytest.approx(
        0.5 * np.log(0.5))                                        # a zero-probability draw is a value
    true = np.array([0, 0, 2**40, 2**40, 7])
    pred = np.array([5, 5, 0, 0, 0])
    assert pz.metrics.cluster_accuracy(true, pred) == pytest.approx(4 / 5)   # 2 x 2 table, not 2^40 wide


# --- saved fits ------------------------------------------------------------------------------------------------
def _rbm_fit(seed=0):
    """A saved-fit candidate that costs no training: an RBM from given weights."""
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(0, 0.1, (6, 3)).astype(np.float32), "b": np.zeros(6, np.float32),
              "c": np.zeros(3, np.float32)}
    return pz.RBM(n_hidden=3).from_params(params)


def _same_fit(a, b):
    for key in ("W", "b", "c"):
        np.testing.assert_array_equal(np.asarray(a.params[key]), np.asarray(b.params[key]))
    assert a.model.get_config() == b.model.get_config()


def test_meta_json_is_under_its_own_checksum(tmp_path):
    path = _rbm_fit().save(tmp_path / "fit")
    meta = (path / "meta.json").read_bytes()
    at = meta.index(b'"n_hidden": 3') + len(b'"n_hidden": ')
    (path / "meta.json").write_bytes(meta[:at] + bytes([meta[at] ^ 1]) + meta[at + 1:])  # 3 -> 2: one bit
    with pytest.raises(pz.infer.CorruptFileError, match=r"meta.json fails its checksum"):
        pz.load(path)


def test_overwrite_never_leaves_the_path_without_a_loadable_fit(tmp_path, monkeypatch):
    from probzoo.infer import atomic

    old, new = _rbm_fit(0), _rbm_fit(1)
    path = old.save(tmp_path / "fit")
    # a failure while writing the new fit: the old one stays, no temporary folder stays
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        new.save(path, overwrite=True)
    monkeypatch.undo()
    _same_fit(pz.load(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]
    # where the system cannot swap two folders atomically, a writer killed between its two renames leaves
    # the old fit under a backup name; the next load (or save) puts it back
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    renames = []
    real_rename = os.rename

    def second_rename_fails(src, dst):  # an ordinary error (not a kill): the writer puts the old fit back itself
        renames.append((src, dst))
        if len(renames) == 2:
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", second_rename_fails)
    with pytest.raises(OSError, match="disk full"):
        new.save(path, overwrite=True)
    monkeypatch.setattr(os, "rename", real_rename)
    _same_fit(pz.load(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]
    renames.clear()

    def rename_then_die(src, dst):
        renames.append((src, dst))
        if len(renames) >= 2:
            raise KeyboardInterrupt  # stands for SIGKILL: no later rename (nor any clean-up) runs in the writer
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        new.save(path, overwrite=True)
    monkeypatch.setattr(os, "rename", real_rename)
    assert not path.exists()
    backup = renames[0][1]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    Path(backup).rename(Path(str(backup).replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-")))  # its writer died
    _same_fit(pz.load(path), old)
    new.save(path, overwrite=True)
    _same_fit(pz.load(path), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


def test_save_cleans_up_after_killed_writers_and_never_replaces_other_folders(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    for leftover in (f".fit.probzoo-tmp-{dead}-0a1b2c3d", f".other.probzoo-tmp-{dead}-0a1b2c3d"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "arrays.npz").write_bytes(b"half written")
    live = tmp_path / f".fit.probzoo-tmp-{os.getpid()}-0a1b2c3d"   # a save still running in this process
    live.mkdir()
    _rbm_fit().save(tmp_path / "fit")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["fit", f".other.probzoo-tmp-{dead}-0a1b2c3d", live.name])  # only the dead writer's, only this path's
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("a user's file")
    with pytest.raises(FileExistsError, match=r"^path: .* is not a saved probzoo fit; refusing to replace it"):
        _rbm_fit().save(work, overwrite=True)
    assert (work / "notes.txt").read_text() == "a user's file"


def test_checkpoint_header_is_under_its_checksum(tmp_path):
    from probzoo.infer.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "state.ckpt"
    save_checkpoint(path, {"w": np.ones(3, np.float32)}, step=40, losses=np.zeros(40), seed=7)
    assert load_checkpoint(path).step == 40
    with np.load(path) as z:
        arrays = dict(z.items())
    arrays["header"] = np.frombuffer(bytes(arrays["header"]).replace(b'"step": 40', b'"step": 50'), np.uint8)
    np.savez(path, **arrays)
    path.with_suffix(".ckpt.npz").rename(path)
    with pytest.raises(pz.infer.CorruptFileError, match=r"header of .* fails its checksum"):
        load_checkpoint(path)


# --- crashes on valid input, bounds -----------------------------------------------------------------------------
def test_mdn_trains_on_targets_of_any_spread():
    x, y = pz.data.two_branch(n=400, seed=0)
    for scale in (1e3, 1e6):
        fit = pz.MDN(n_components=2, hidden=(16,)).fit(x, y * scale, num_steps=60, seed=0)
        assert np.all(np.isfinite(fit.losses))
        means = fit.predict(x[:20])["means"]
        assert np.all(np.isfinite(means)) and np.all(np.abs(means) < 10 * scale * np.abs(y).max())


def test_frozen_sampler_reports_undefined_diagnostics_not_a_crash():
    V = np.zeros((64, 16), np.float32)
    V[:, 8:] = 1.0                          # one pattern: a huge learning rate saturates every unit
    with pytest.warns(UserWarning, match="chains never moved"):
        fit = pz.RBM(n_hidden=8).fit(V, epochs=3, learning_rate=50.0, batch_size=16, diagnostic_samples=20)
    assert np.isnan(fit.info["free_energy_ess"]) and np.isnan(fit.info["free_energy_r_hat"])


def test_seeds_and_integer_budgets_have_upper_bounds():
    x, y = pz.data.two_branch(n=20, seed=0)
    with pytest.raises(ValueError, match=r"^seed: must be <= 4294967295, got 18446744073709551616"):
        pz.MDN().fit(x, y, seed=2**64)
    with pytest.raises(ValueError, match=r"^seed: must be <= 4294967295"):
        pz.data.two_branch(n=20, seed=2**32)
    with pytest.raises(ValueError, match=r"^k: must be <= 2147483647, got 2147483648"):
        pz.RBM(n_hidden=2).fit(np.ones((8, 4), np.float32), k=2**31)
    assert pz.data.two_branch(n=5, seed=2**32 - 1)[0].shape == (5, 1)
