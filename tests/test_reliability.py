"""Silent wrong answers found by trying the public API as a new user would; each failed before its fix."""

from __future__ import annotations

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
