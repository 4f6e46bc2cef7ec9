"""pz.compare on a model whose posterior is known exactly: the table must rank exact above poor."""

import functools

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import NUTS
from numpyro.infer.autoguide import AutoNormal

import probzoo as pz
from probzoo.comparison import parse_method, split_methods
from probzoo.glossary import undocumented
from probzoo.infer import Fit, mcmc_inference_data, run_mcmc, run_svi, svi_inference_data
from probzoo.models.base import ZooModel
from probzoo.zoo import register_model


def scale_model(y=None, n=None):
    """log sigma ~ N(0, 1); y_i ~ N(0, sigma): the posterior of sigma is narrow and far from the prior."""
    log_sigma = numpyro.sample("log_sigma", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", n if y is None else y.shape[0]) as idx:
        numpyro.sample("y", dist.Normal(0.0, jnp.exp(log_sigma)), obs=None if y is None else jnp.asarray(y)[idx])


class ScaleFit(Fit):
    def evaluate(self, y):
        draws = self.samples["log_sigma"][:, None]
        logp = dist.Normal(0.0, np.exp(draws)).log_prob(y[None, :])
        return {"lpd": pz.metrics.mean_log_predictive_density(np.asarray(logp)), "sigma": float(np.exp(draws).mean())}


@register_model
class ScaleModel(ZooModel):
    methods = ("nuts", "poor")
    fit_class = ScaleFit

    def __init__(self):
        self._config = {}

    def fit(self, y, method="nuts", seed=0, progress=False, num_steps=3):
        if method == "nuts":
            run = run_mcmc(NUTS(scale_model), y, num_warmup=300, num_samples=300, num_chains=2, seed=seed)
            idata = mcmc_inference_data(run.mcmc)
            draws = {k: np.asarray(v) for k, v in run.mcmc.get_samples().items()}
            return ScaleFit(self, method, {}, idata=idata, samples=draws, wall_time=run.wall_time,
                            info={"mcmc": True})
        # deliberately poor: a variational fit stopped after a handful of steps, still near the prior
        guide = AutoNormal(scale_model)
        run = run_svi(scale_model, guide, y, num_steps=num_steps, learning_rate=1e-3, seed=seed)
        idata, draws = svi_inference_data(scale_model, guide, run.params, (y,), observed={"y": y},
                                          predictive_args=(None, len(y)), num_samples=300, seed=seed)
        return ScaleFit(self, method, run.params, idata=idata, samples=draws, wall_time=run.wall_time,
                        compile_time=run.compile_time)


def test_compare_ranks_exact_above_poor():
    y = np.random.default_rng(0).normal(0.0, 5.0, size=300).astype(np.float32)
    table = pz.compare(ScaleModel(), (y,), methods=["nuts", "poor"], seed=0)
    assert list(table.index) == ["nuts", "poor"]
    for col in ("wall_s", "run_s", "score_s", "lpd", "elpd_loo", "elpd_loo_se", "sigma"):
        assert np.isfinite(table[col]).all(), col
    assert np.isfinite(table.loc["nuts", ["r_hat_max", "ess_bulk_per_s"]]).all()
    assert np.isnan(table.loc["poor", "r_hat_max"])  # no chains, no r_hat
    assert table.loc["nuts", "sigma"] == pytest.approx(5.0, rel=0.1)
    assert table.loc["nuts", "lpd"] > table.loc["poor", "lpd"] + 0.5
    assert table.loc["nuts", "rank"] == 1 and table.loc["poor", "rank"] == 2
    assert table.loc["nuts", "loo_rank"] == 1
    assert table.loc["nuts", "r_hat_max"] < 1.05


def test_compare_rejects_bad_methods():
    y = np.ones(20, np.float32)
    with pytest.raises(ValueError, match="methods: unknown method 'mle' for ScaleModel; valid methods: nuts, poor"):
        pz.compare(ScaleModel(), (y,), methods=["mle"])
    with pytest.raises(ValueError, match="methods: give a non-empty list"):
        pz.compare(ScaleModel(), (y,), methods=[])


def test_compare_checks_every_method_first_and_keeps_the_finished_ones(monkeypatch):
    y = np.random.default_rng(1).normal(0.0, 2.0, size=200).astype(np.float32)
    real_fit, calls = ScaleModel.fit, []

    @functools.wraps(real_fit)
    def fit(self, *args, method="nuts", **kwargs):
        calls.append(method)
        if method == "nuts":
            raise FloatingPointError("the step size went to zero")
        return real_fit(self, *args, method=method, **kwargs)

    monkeypatch.setattr(ScaleModel, "fit", fit)
    # an option the second method's fit does not take is refused before the first method runs
    with pytest.raises(ValueError, match="^methods: nuts: epochs: not an option of ScaleModel.fit"):
        pz.compare(ScaleModel(), (y,), methods=["poor", "nuts"], budget={"poor": {}, "nuts": {"epochs": 2}})
    assert calls == []
    with pytest.raises(pz.ComparisonError, match="nuts failed after 1 finished: FloatingPointError") as caught:
        pz.compare(ScaleModel(), (y,), methods=["poor", "nuts"])
    assert calls == ["poor", "nuts"]
    assert list(caught.value.table.index) == ["poor"] and np.isfinite(caught.value.table.loc["poor", "lpd"])
    assert set(caught.value.fits) == {"poor"} and caught.value.method == "nuts"
    assert isinstance(caught.value.__cause__, FloatingPointError)


def test_the_comparison_figure_shows_what_differs_and_which_way_is_better():
    import pandas as pd

    from probzoo.comparison import figure_panels

    table = pd.DataFrame({"family": ["optimisation", "mcmc"], "lpd": [-1.2, -1.0], "floor_nll": [-1.05, -1.05],
                          "r_hat_max": [np.nan, 1.01], "coverage_90": [0.93, 0.90], "rank": [2.0, 1.0],
                          "elpd_loo": [np.nan, np.nan]}, index=["map", "nuts"])
    assert figure_panels(table) == [("lpd", "lpd (higher is better)"), ("r_hat_max", "r_hat_max (lower is better)"),
                                    ("coverage_90", "coverage_90 (closer to the target is better)")]


def test_parse_method_with_model_options():
    assert parse_method("map") == ("map", {})
    assert parse_method("map[loo=False; reg=0.1]") == ("map", {"loo": False, "reg": 0.1})
    assert parse_method("nuts[hidden=(8, 8)]") == ("nuts", {"hidden": (8, 8)})
    with pytest.raises(ValueError, match="methods: cannot read"):
        parse_method("map loo")
    with pytest.raises(ValueError, match="methods: cannot read"):
        parse_method("nuts[hidden=8")
    # the command line's list: commas inside a method's options do not split it
    assert split_methods("map, meanfield,nuts[hidden=(8, 8)],map[loo=False]") == [
        "map", "meanfield", "nuts[hidden=(8, 8)]", "map[loo=False]"]


@pytest.mark.parametrize("name, methods, per_method", [
    ("mdn", ["map", "meanfield"], "mdn_bands_per_method.png"),
    ("ukr", ["map", "map[loo=False]"], "ukr_latents_per_method.png"),
])
def test_compare_entry_draws_a_figure_per_method(tmp_path, name, methods, per_method):
    from probzoo.comparison import compare_entry
    from probzoo.zoo import get_entry

    table, figures = compare_entry(get_entry(name), methods, out_dir=tmp_path, num_steps=60, n=300)
    assert list(table.index) == methods
    assert not undocumented(table.columns)  # every column of the comparison is in the glossary
    assert [f.name for f in figures] == [f"{name}_compare.png", per_method]
    for f in figures:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5_000
