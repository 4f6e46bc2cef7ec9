"""Mixture density regression: the issue's acceptance runs, the enumerated variant and the fit's API."""

from __future__ import annotations

import time

import numpy as np
import pytest

import probzoo as pz
from probzoo.data import true_components
from probzoo.infer import arviz_io
from probzoo.models.mdn import MDN, MDNFit

GRID = np.linspace(0.2, 1.0, 81, dtype=np.float32)[:, None]


@pytest.fixture(scope="module")
def two_branch():
    x, y = pz.data.two_branch(n=10_000, seed=0)
    x_test, y_test = pz.data.two_branch(n=10_000, seed=1)
    return x, y, x_test, y_test


@pytest.fixture(scope="module")
def map2(two_branch) -> MDNFit:
    x, y, *_ = two_branch
    return MDN(n_components=2).fit(x, y)          # the defaults: what a user who passes nothing gets


@pytest.fixture(scope="module")
def map1(two_branch) -> MDNFit:
    x, y, *_ = two_branch
    return MDN(n_components=1).fit(x, y)


@pytest.fixture(scope="module")
def meanfield2(two_branch) -> MDNFit:
    x, y, *_ = two_branch
    return MDN(n_components=2).fit(x, y, method="meanfield")


# --- acceptance ---------------------------------------------------------------------------------------------

def test_two_branch_k2_map_reaches_the_true_density(map2, two_branch):
    *_, x_test, y_test = two_branch
    scores = map2.evaluate(x_test, y_test, logpdf=pz.data.two_branch_logpdf)
    floor = -np.mean(pz.data.two_branch_logpdf(x_test, y_test))
    assert scores["floor_nll"] == pytest.approx(floor)
    assert scores["nll"] == pytest.approx(-np.mean(map2.log_likelihood(x_test, y_test)), abs=1e-6)
    assert 0.0 < scores["excess_nll"] < 0.03


def test_wall_time_is_the_whole_call(two_branch):
    """A fit's wall_time is what the user waited for the call: it holds the training program's compilation, the
    training loop and the set-up programs, and everything else the call did (starting weights, predictions,
    InferenceData), so it exceeds their sum; it cannot exceed the time measured around the call."""
    x, y, *_ = two_branch
    t0 = time.perf_counter()
    fit = MDN(n_components=2, hidden=(8,)).fit(x[:2_000], y[:2_000], num_steps=150)
    call = time.perf_counter() - t0
    parts = fit.compile_time + fit.info["loop_time"] + fit.info["setup_time"]
    assert parts < fit.wall_time <= call


def test_a_map_fits_inference_data_is_built_when_read_from_the_data_it_was_fitted_to(two_branch):
    """The point's InferenceData is built on first read of fit.idata (not in the fit call), from copies of the
    data: changing the caller's arrays afterwards changes nothing in it."""
    x, y, *_ = two_branch
    x, y = x[:1_000].copy(), y[:1_000].copy()
    fit = MDN(n_components=2, hidden=(8,)).fit(x, y, num_steps=50)
    assert "_build_idata" in vars(fit)                        # not built yet
    x0, y0 = x.copy(), y.copy()
    x[:], y[:] = 5.0, -5.0
    idata = fit.idata
    np.testing.assert_array_equal(idata.constant_data["x"].values, x0)
    np.testing.assert_array_equal(idata.observed_data["y"].values, y0)
    assert fit.idata is idata and "_build_idata" not in vars(fit)
    # two programs computing the same float32 densities: equal to float32 rounding of values of order 1
    np.testing.assert_allclose(idata.log_likelihood["y"].values[0, 0], fit.log_likelihood(x0, y0), rtol=1e-5, atol=1e-5)


def test_two_branch_k2_recovers_each_branch(map2):
    pred, truth = map2.predict(GRID), true_components("two_branch", GRID)
    assert set(pred) == {"weights", "means", "stds"} and all(v.shape == (81, 2) for v in pred.values())
    # component 0 is the lower branch N(-x, x), component 1 the upper N(x, 0.01): ascending mean order
    np.testing.assert_allclose(pred["means"], truth["means"], atol=0.05)
    np.testing.assert_allclose(pred["stds"], truth["stds"], atol=0.05)
    np.testing.assert_allclose(pred["weights"], 0.5, atol=0.05)
    np.testing.assert_allclose(pred["weights"].sum(1), 1.0, atol=1e-5)


def test_k1_reproduces_the_articles_failure_on_two_branch(map1, map2, two_branch):
    *_, x_test, y_test = two_branch
    nll1 = map1.evaluate(x_test, y_test, logpdf=pz.data.two_branch_logpdf)["excess_nll"]
    nll2 = map2.evaluate(x_test, y_test, logpdf=pz.data.two_branch_logpdf)["excess_nll"]
    assert nll1 > 1.0 > 0.03 > nll2
    # a single Gaussian can only match the mixture's mean 0 and its spread
    p = map1.predict(GRID)
    np.testing.assert_allclose(p["means"][:, 0], 0.0, atol=0.1)
    assert np.all(p["stds"][:, 0] > GRID[:, 0])


def test_meanfield_intervals_are_calibrated_and_carry_epistemic_spread(meanfield2, two_branch):
    *_, x_test, y_test = two_branch
    lo, hi = meanfield2.interval(x_test, 0.9)
    coverage = np.mean((y_test >= lo) & (y_test <= hi))
    assert 0.85 <= coverage <= 0.95
    assert meanfield2.evaluate(x_test, y_test)["coverage_90"] == pytest.approx(coverage)
    draws = meanfield2.predict(GRID, draws=True)["means"]
    assert draws.shape == (100, 81, 2)
    assert np.all(draws.std(0) > 1e-4)            # the weights are uncertain, so are the curves


def test_loo_and_compare_rank_k2_above_k1(map1, map2, meanfield2):
    for fit in (map1, map2, meanfield2):
        assert fit.idata.log_likelihood["y"].shape[-1] == 10_000
    assert float(arviz_io.loo(map2.idata).elpd_loo) > float(arviz_io.loo(map1.idata).elpd_loo) + 5_000
    table = arviz_io.compare({"K=1": map1.idata, "K=2": map2.idata})
    assert list(table.index) == ["K=2", "K=1"]
    loo = arviz_io.loo(meanfield2.idata)
    assert float(loo.elpd_loo) > float(arviz_io.loo(map1.idata).elpd_loo) + 5_000
    assert np.isfinite(float(loo.se)) and 0 < float(loo.p_loo) < map2.model.num_weights()


# --- the enumerated variant -----------------------------------------------------------------------------------

def test_enumerated_and_closed_form_mixture_have_the_same_log_likelihood(map2, two_branch):
    from numpyro import handlers
    from numpyro.contrib.funsor import enum
    from numpyro.contrib.funsor import log_density as enum_log_density
    from numpyro.infer.util import log_density

    *_, x_test, y_test = two_branch
    x, y = x_test[:2_000], y_test[:2_000]
    weights = {k: v[0] for k, v in map2._draws.items()}
    closed, _ = log_density(handlers.seed(MDN(2).model, 0), (x, y), {}, weights)
    enumerated, _ = enum_log_density(enum(handlers.seed(MDN(2, enumerated=True).model, 0), -2), (x, y), {},
                                     weights)
    assert float(enumerated) == pytest.approx(float(closed), rel=1e-5)
    # and both are the fit's per-point log-likelihood summed, plus the Normal prior on the weights
    from scipy.stats import norm
    log_prior = sum(norm.logpdf(np.asarray(v), 0.0, 1.0).sum() for v in weights.values())
    assert float(closed) == pytest.approx(map2.log_likelihood(x, y).sum() + log_prior, rel=1e-5)


def test_responsibilities_agree_with_infer_discrete(map2):
    x, y = pz.data.two_branch(n=400, seed=7)
    resp = map2.responsibilities(x, y)
    assert resp.shape == (400, 2)
    np.testing.assert_allclose(resp.sum(1), 1.0, atol=1e-5)
    z = map2.assign(x, y)                                   # infer_discrete, temperature 0
    np.testing.assert_array_equal(z, resp.argmax(1))
    # points on the upper line y = x (within 3 sd = 0.03) belong to component 1
    upper = np.abs(y - x[:, 0]) < 0.03
    assert upper.sum() > 150 and np.mean(resp[upper, 1] > 0.5) > 0.95
    sampled = map2.assign(x, y, temperature=1, seed=0)     # one draw per point from its responsibilities
    sure = resp.max(1) > 0.999
    np.testing.assert_array_equal(sampled[sure], resp[sure].argmax(1))
    assert abs(sampled.mean() - resp[:, 1].mean()) < 0.075  # 3 standard errors for 400 points


# --- the predictive distribution -------------------------------------------------------------------------------

def test_quantiles_invert_the_cdf_and_match_samples(map2):
    x = np.array([[0.3], [0.6], [0.9]], np.float32)
    q = map2.quantiles(x, (0.05, 0.25, 0.5, 0.75, 0.95))
    assert q.shape == (5, 3) and np.all(np.diff(q, axis=0) > 0)
    for level, row in zip((0.05, 0.25, 0.5, 0.75, 0.95), q, strict=True):
        np.testing.assert_allclose(map2.cdf(x, row), level, atol=1e-4)
    s = map2.sample(x, num_samples=20_000, seed=0)
    assert s.shape == (20_000, 3)
    np.testing.assert_allclose(np.quantile(s, [0.05, 0.25, 0.75, 0.95], axis=0), q[[0, 1, 3, 4]], atol=0.03)
    np.testing.assert_array_equal(s, map2.sample(x, num_samples=20_000, seed=0))
    lo, hi = map2.interval(x, 0.9)
    np.testing.assert_allclose(lo, q[0], atol=1e-5)
    np.testing.assert_allclose(hi, q[4], atol=1e-5)
    np.testing.assert_allclose(map2.mean(x), s.mean(0), atol=0.03)
    np.testing.assert_allclose(map2.std(x), s.std(0), atol=0.03)


def test_bayesian_log_likelihood_averages_the_density_over_draws(meanfield2):
    from scipy.special import logsumexp
    from scipy.stats import norm

    x, y = pz.data.two_branch(n=50, seed=11)
    p = meanfield2.predict(x, draws=True)
    per_draw = logsumexp(np.log(p["weights"]) + norm.logpdf(y[None, :, None], p["means"], p["stds"]), axis=-1)
    expected = logsumexp(per_draw, axis=0) - np.log(per_draw.shape[0])
    np.testing.assert_allclose(meanfield2.log_likelihood(x, y), expected, rtol=1e-4, atol=1e-4)
    assert np.all(meanfield2.log_likelihood(x, y) > per_draw.min(0) - 1e-4)


def test_scales_stay_above_the_floor_and_finite_on_far_inputs(map2):
    far = np.array([[-50.0], [0.0], [1e3]], np.float32)
    p = map2.predict(far)
    assert all(np.all(np.isfinite(v)) for v in p.values())
    assert np.all(p["stds"] >= map2.model.min_scale)
    assert np.all(np.isfinite(map2.log_likelihood(far, np.array([1e3, 0.0, -1e3], np.float32))))


# --- training machinery ------------------------------------------------------------------------------------------


def test_save_and_load_give_the_same_predictions(map2, tmp_path):
    path = map2.save(tmp_path / "fit")
    loaded = pz.load(path)
    assert isinstance(loaded, MDNFit) and loaded.model.get_config() == map2.model.get_config()
    x, y = pz.data.two_branch(n=100, seed=4)
    np.testing.assert_array_equal(loaded.log_likelihood(x, y), map2.log_likelihood(x, y))
    np.testing.assert_array_equal(loaded.predict(x)["stds"], map2.predict(x)["stds"])
    assert "posterior" in loaded.idata.groups() and "net.Dense_0.kernel" in loaded.idata.posterior


# --- input checks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("enumerated", [False, True])
def test_data_are_checked_once_not_at_every_step(enumerated):
    # fit refuses x or y that are not finite numbers (test_bad_data_and_methods); every value the model then
    # scores is real, so none of its distributions repeats NumPyro's support check (a mask and a select per
    # site) at every step of every fit
    from numpyro import handlers

    x, y = pz.data.two_branch(n=50, seed=0)
    trace = handlers.trace(handlers.seed(MDN(2, hidden=(4,), enumerated=enumerated).model, 0)).get_trace(
        x[:, None], y)
    scored = []
    for site in trace.values():
        if site["type"] == "sample":
            fn = site["fn"]
            while hasattr(fn, "base_dist"):  # Independent / expanded: the distribution that scores the value
                fn = fn.base_dist
            scored += [fn, *(getattr(fn, part) for part in ("mixing_distribution", "component_distribution")
                             if hasattr(fn, part))]
    assert len(scored) == (6 if enumerated else 7)
    assert not any(fn._validate_args for fn in scored), [type(fn).__name__ for fn in scored if fn._validate_args]


def test_bad_data_and_methods(map2):
    x, y = pz.data.two_branch(n=50, seed=0)
    model = MDN(2)
    with pytest.raises(ValueError, match="^x, y: mismatched lengths"):
        model.fit(x, y[:-1])
    bad = x.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="^x: contains 1 NaN"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match="^y: contains"):
        model.fit(x, np.where(np.arange(50) == 0, np.inf, y))
    with pytest.raises(ValueError, match="^method: unknown value 'mle'"):
        model.fit(x, y, method="mle")
    with pytest.raises(TypeError, match="^y: expected real numbers"):
        model.fit(x, y.astype(str))
    with pytest.raises(ValueError, match="^y: expected 1 dimensions"):
        model.fit(x, y[:, None])
    with pytest.raises(ValueError, match="^x: expected 1 column"):
        map2.predict(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="^q: quantile levels"):
        map2.quantiles(x, 1.5)
    with pytest.raises(ValueError, match="^num_steps"):
        model.fit(x, y, num_steps=0)
    with pytest.warns(UserWarning, match="^min_scale"), pytest.raises(ValueError, match="^num_steps"):
        MDN(2, min_scale=0.1).fit(x, 0.01 * y, num_steps=0)   # warns about the floor before it checks the budget


# --- zoo registration ----------------------------------------------------------------------------------------------

def test_zoo_entry_reports_metrics_and_figures(map2, tmp_path):
    from probzoo.zoo import get_entry

    entry = get_entry("mdn")
    assert entry.model_class is MDN and entry.default_data == "two_branch"
    assert set(entry.datasets) == {"two_branch", "heteroscedastic"}
    # its own three methods, then every other engine of the registry
    assert entry.methods == ("map", "meanfield", "nuts", "laplace", "lowrank", "fullrank", "flow", "hmc", "sa",
                             "barker", "hmcecs")
    assert entry.model_options("heteroscedastic")["n_components"] == 1
    data, extras = entry.datasets["two_branch"](0)
    np.testing.assert_array_equal(data[1], pz.data.two_branch(n=10_000, seed=0)[1])
    metrics, figures = entry.report(map2, data, extras, tmp_path)
    assert metrics["excess_nll"] < 0.03 and np.isfinite(metrics["lpd"])
    assert len(figures) == 3
    for f in figures:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5_000
