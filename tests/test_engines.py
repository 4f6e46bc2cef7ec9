"""The generic inference engines on a user's NumPyro model (``pz.from_numpyro``), against exact answers.

Bayesian linear regression with known noise and a correlated design has a Gaussian posterior with a
known mean and covariance; every tolerance below is a multiple of the Monte Carlo error of the draws
being checked (or, for point estimates, of the optimiser's precision on a deterministic objective).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import probzoo as pz
from probzoo.infer import arviz_io

SIGMA, TAU = 1.0, 2.0


def regression(X, y=None):
    """beta ~ N(0, tau^2 I); y_i ~ N(x_i . beta, sigma^2)."""
    beta = numpyro.sample("beta", dist.Normal(0.0, TAU).expand([X.shape[1]]).to_event(1))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("y", dist.Normal(jnp.asarray(X) @ beta, SIGMA), obs=y)


def regression_indexed(X, y=None):
    """The same model, its observations indexed by the data plate (for subsampling engines)."""
    beta = numpyro.sample("beta", dist.Normal(0.0, TAU).expand([X.shape[1]]).to_event(1))
    with numpyro.plate("data", X.shape[0]) as idx:
        numpyro.sample("y", dist.Normal(jnp.asarray(X)[idx] @ beta, SIGMA), obs=None if y is None else y[idx])


def mixture_with_discrete_latent(y):
    z = numpyro.sample("z", dist.Bernoulli(0.5))
    numpyro.sample("y", dist.Normal(2.0 * z, 1.0), obs=y)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    n = 40
    # correlated columns: corr(x1, x2) = 0.9, so the posterior of (beta1, beta2) is strongly anti-correlated
    L = np.linalg.cholesky(np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 1.0]]))
    X = (rng.standard_normal((n, 3)) @ L.T).astype(np.float32)
    beta = np.array([1.0, -0.5, 0.25])
    y = (X @ beta + SIGMA * rng.standard_normal(n)).astype(np.float32)
    Xd = X.astype(np.float64)
    precision = Xd.T @ Xd / SIGMA**2 + np.eye(3) / TAU**2
    cov = np.linalg.inv(precision)
    mean = cov @ Xd.T @ y.astype(np.float64) / SIGMA**2
    assert cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]) < -0.8  # the posterior is far from mean-field
    return X, y, mean, cov, precision


def _moments(fit):
    b = np.asarray(fit.samples["beta"], np.float64)
    return b.mean(0), np.cov(b.T), len(b)


def _check_gaussian(fit, mean, cov, ess):
    """Mean within 5 Monte Carlo standard errors (sd / sqrt(ESS)); each variance within 5 x sqrt(2 / ESS)
    relative; each correlation within 5 x (1 - rho^2) / sqrt(ESS)."""
    m, c, _ = _moments(fit)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(m - mean) < 5 * sd / np.sqrt(ess)), (m, mean)
    np.testing.assert_allclose(np.diag(c), np.diag(cov), rtol=5 * np.sqrt(2 / ess))
    rho, rho_hat = cov / np.outer(sd, sd), c / np.outer(np.sqrt(np.diag(c)), np.sqrt(np.diag(c)))
    assert np.all(np.abs(rho_hat - rho) <= 5 * (1 - rho**2) / np.sqrt(ess) + 1e-9), (rho_hat, rho)


@pytest.mark.parametrize("method", ["nuts", "hmc"])
def test_mcmc_engines_recover_the_exact_posterior(problem, method):
    X, y, mean, cov, _ = problem
    fit = pz.from_numpyro(regression, X, y=y).fit(method=method, num_warmup=500, num_samples=1_000, seed=1)
    assert fit.is_mcmc and fit.idata.posterior["beta"].shape == (4, 1_000, 3)
    ess = float(np.min(arviz_io.ess(fit.idata, var_names=["beta"])["beta"].values))
    assert ess > 400
    _check_gaussian(fit, mean, cov, ess)
    assert fit.info["divergences"] == 0
    assert {"posterior", "log_likelihood", "observed_data", "sample_stats"} <= set(fit.idata.groups())


@pytest.mark.parametrize("method", ["fullrank", "laplace"])
def test_gaussian_approximations_recover_the_exact_posterior(problem, method):
    """A Gaussian family contains the posterior, so the fit is exact up to optimisation: 20,000 draws make
    the Monte Carlo error small enough (ESS = draws) to see an optimiser that stopped short."""
    X, y, mean, cov, _ = problem
    # 16 particles per ELBO gradient: with one, the gradient noise leaves the scales a few per cent off
    fit = pz.from_numpyro(regression, X, y=y).fit(method=method, num_particles=16, num_draws=20_000, seed=2)
    assert not fit.is_mcmc and fit.idata.posterior["beta"].shape == (1, 20_000, 3)
    _check_gaussian(fit, mean, cov, 20_000)


def test_meanfield_recovers_the_mean_and_the_conditional_variances(problem):
    """The KL(q || p)-optimal factorised Gaussian of a Gaussian posterior has the exact mean and the
    variances 1 / diag(precision): the conditional variances, smaller than the marginals."""
    X, y, mean, cov, precision = problem
    fit = pz.from_numpyro(regression, X, y=y).fit(method="meanfield", num_particles=16, num_draws=20_000, seed=3)
    m, c, n = _moments(fit)
    mf_var = 1.0 / np.diag(precision)
    assert np.all(mf_var[:2] < 0.2 * np.diag(cov)[:2])  # the test can tell the two apart
    assert np.all(np.abs(m - mean) < 5 * np.sqrt(mf_var / n))
    np.testing.assert_allclose(np.diag(c), mf_var, rtol=5 * np.sqrt(2 / n))
    assert np.all(np.abs(c[np.triu_indices(3, 1)]) < 5 * np.sqrt(mf_var.max() ** 2 / n))  # independent


def test_map_returns_the_mode(problem):
    X, y, mean, cov, _ = problem
    fit = pz.from_numpyro(regression, X, y=y).fit(method="map", seed=0)
    # a deterministic objective (no sampling in the AutoDelta ELBO): Adam ends at the mode to 1e-3 sd
    np.testing.assert_allclose(fit.params["beta_auto_loc"], mean, atol=1e-3 * np.sqrt(np.diag(cov)).min())
    assert fit.info["point_estimate"] and fit.samples["beta"].shape == (1, 3)


def test_other_mcmc_engines_sample_the_posterior(problem):
    """SA, BarkerMH and HMCECS at short budgets: means within 5 Monte Carlo standard errors (their own ESS)."""
    X, y, mean, cov, _ = problem
    m = pz.from_numpyro(regression_indexed, X, y=y)
    budgets = {"sa": dict(num_warmup=4_000, num_samples=4_000), "barker": dict(num_warmup=1_000, num_samples=1_000),
               "hmcecs": dict(num_warmup=300, num_samples=500, num_chains=2, subsample_size=20)}
    sd = np.sqrt(np.diag(cov))
    for method, budget in budgets.items():
        fit = m.fit(method=method, seed=4, **budget)
        # NumPyro runs these kernels' chains one at a time; the engine maps one compiled chain over them
        assert fit.info["chain_method"] == "vectorized", method
        ess = float(np.min(arviz_io.ess(fit.idata, var_names=["beta"])["beta"].values))
        b = np.asarray(fit.samples["beta"], np.float64)
        assert ess > 30, (method, ess)
        assert np.all(np.abs(b.mean(0) - mean) < 5 * sd / np.sqrt(ess)), (method, b.mean(0), mean, ess)


def test_engines_refuse_models_and_options_they_cannot_take(problem):
    X, y, *_ = problem
    discrete = pz.from_numpyro(mixture_with_discrete_latent, np.array([0.3, 2.1], np.float32))
    with pytest.raises(ValueError, match="^method: nuts: latent site 'z' is discrete"):
        discrete.fit(method="nuts")
    assert "nuts" not in discrete.methods and "meanfield" not in discrete.methods
    m = pz.from_numpyro(regression, X, y=y)
    with pytest.raises(ValueError, match="^num_steps: not an option of engine 'nuts'"):
        m.fit(method="nuts", num_steps=100)
    with pytest.raises(ValueError, match="^num_warmup: not an option of engine 'meanfield'"):
        m.fit(method="meanfield", num_warmup=100)
    with pytest.raises(ValueError, match="^method: unknown engine 'gradient_descent'"):
        m.fit(method="gradient_descent")
    with pytest.raises(ValueError, match=r"^method: hmcecs: .* index the observations by the plate"):
        m.fit(method="hmcecs")
    assert "hmcecs" not in m.methods and "hmcecs" in pz.from_numpyro(regression_indexed, X, y=y).methods
    table = pz.engines()
    assert {"map", "laplace", "meanfield", "lowrank", "fullrank", "flow", "nuts", "hmc", "sa", "barker",
            "hmcecs"} <= set(table.index)
    assert table.loc["nuts", "family"] == "mcmc" and table.loc["fullrank", "family"] == "variational"


def test_compare_a_bound_model_without_data_and_round_trip_a_fit(problem, tmp_path):
    X, y, *_ = problem
    m = pz.from_numpyro(regression, X, y=y)
    table = pz.compare(m, methods=["nuts", "meanfield", "map"], seed=0,
                       budget={"nuts": {"num_warmup": 300, "num_samples": 300, "num_chains": 2},
                               "meanfield": {"num_steps": 2_000, "num_draws": 400}})
    assert list(table.index) == ["nuts", "meanfield", "map"]
    assert list(table["family"]) == ["mcmc", "variational", "optimisation"]
    assert np.isfinite(table["lpd"]).all()                      # 8 of the 40 rows held out of the "data" plate
    assert np.isfinite(table.loc[["nuts", "meanfield"], "elpd_loo"]).all()
    assert np.isfinite(table.loc["nuts", "r_hat_max"]) and np.isnan(table.loc["meanfield", "r_hat_max"])
    with pytest.raises(ValueError, match="^methods: nuts: latent site 'z' is discrete"):
        pz.compare(pz.from_numpyro(mixture_with_discrete_latent, np.array([0.3], np.float32)), methods=["nuts"])

    fit = m.fit(method="fullrank", num_steps=1_000, num_draws=200, seed=5)
    back = pz.load(fit.save(tmp_path / "fit"))
    np.testing.assert_array_equal(back.samples["beta"], fit.samples["beta"])
    assert back.model.model is regression                        # the function is importable by name
    np.testing.assert_array_equal(back.model.args[0], X)
    assert back.evaluate(X[:5], y=y[:5]) == fit.evaluate(X[:5], y=y[:5])
    assert set(back.summary().index) == {"beta[0]", "beta[1]", "beta[2]"}


# the engines not checked against the exact posterior above, at a small budget
SMALL = {"lowrank": {"num_steps": 1_000}, "flow": {"num_steps": 1_000}}


@pytest.mark.parametrize("method", sorted(SMALL))
def test_the_other_variational_engines_run_on_a_user_model(problem, method):
    """A held-out lpd within 0.2 nats per point of the exact posterior predictive's (the posterior is
    Gaussian: a fitted low-rank Gaussian or flow predicts nearly as well), and an InferenceData with the
    posterior, the pointwise log-likelihood and the observed data."""
    X, y, mean, cov, _ = problem
    train, test = pz.from_numpyro(regression_indexed, X, y=y).split(test_size=0.25, seed=0)
    assert method in train.methods
    fit = train.fit(method=method, seed=0, **SMALL[method])
    assert {"posterior", "log_likelihood", "observed_data"} <= set(fit.idata.groups())
    assert fit.idata.log_likelihood["y"].shape[-1] == 30 and fit.idata.observed_data["y"].shape == (30,)
    lpd = fit.evaluate(*test.args, **test.kwargs)["lpd"]
    Xt, yt = np.asarray(test.args[0], np.float64), np.asarray(test.kwargs["y"], np.float64)
    Xtr, ytr = np.asarray(train.args[0], np.float64), np.asarray(train.kwargs["y"], np.float64)
    P = Xtr.T @ Xtr / SIGMA**2 + np.eye(3) / TAU**2
    C = np.linalg.inv(P)
    m = C @ Xtr.T @ ytr / SIGMA**2
    var = SIGMA**2 + np.einsum("ij,jk,ik->i", Xt, C, Xt)  # exact predictive: N(x.m, sigma^2 + x C x)
    exact = np.mean(-0.5 * np.log(2 * np.pi * var) - 0.5 * (yt - Xt @ m) ** 2 / var)
    assert np.isfinite(lpd) and abs(lpd - exact) < 0.2, (lpd, exact)


def test_engines_page_table_is_the_generated_one():
    from pathlib import Path

    from probzoo.infer.engines import markdown_table

    page = (Path(__file__).resolve().parents[1] / "docs" / "engines.md").read_text()
    assert markdown_table() in page


def _code_blocks(name: str) -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_adding_an_engine_page_runs(problem):
    from probzoo.infer import engines

    (block,) = _code_blocks("adding-an-engine.md")
    try:
        exec(compile(block, "adding-an-engine.md", "exec"), {})
        X, y, mean, cov, _ = problem
        fit = pz.from_numpyro(regression, X, y=y).fit(method="rank1", num_particles=16, num_draws=4_000, seed=0)
        assert fit.info["family"] == "variational"
        # for a Gaussian posterior the optimal Gaussian's mean is the exact mean, whatever its covariance
        assert np.all(np.abs(fit.samples["beta"].mean(0) - mean) < 0.1 * np.sqrt(np.diag(cov)))
    finally:
        engines._REGISTRY.pop("rank1", None)


def test_the_adding_a_model_page_runs():
    (block,) = _code_blocks("adding-a-model.md")
    scope: dict = {}
    exec(compile(block, "adding-a-model.md", "exec"), scope)
    fit, m = scope["fit"], scope["m"]
    assert "hmcecs" not in m.methods  # theta lives in the data plate
    assert m.split() is None          # so no held-out rows either: compare scores it by LOO
    # the classic eight-schools posterior: mu about 4.4 (sd 3.3)
    assert abs(float(fit.samples["mu"].mean()) - 4.4) < 1.0


def _squared(y=None):
    """mu ~ N(0, 3), y_i ~ N(mu^2, 0.5): a posterior with two separated modes, mu near +2 and near -2."""
    mu = numpyro.sample("mu", dist.Normal(0, 3))
    with numpyro.plate("data", 20):
        numpyro.sample("y", dist.Normal(mu**2, 0.5), obs=y)


def test_chains_start_apart_so_that_r_hat_sees_two_modes():
    y = (4.0 + 0.5 * np.random.default_rng(0).normal(size=20)).astype(np.float32)
    fit = pz.from_numpyro(_squared, y=y).fit(method="nuts", num_warmup=200, num_samples=200, num_chains=4, seed=1)
    assert fit.info["chain_starts"].startswith("uniform in (-2, 2)")
    chain_means = np.asarray(fit.idata.posterior["mu"]).mean(axis=1)
    # each chain stays in the mode it started near; started apart, they find both, and r_hat says they disagree
    # (chains started from one point would all find the same mode and report r_hat near 1)
    assert (chain_means > 1.5).any() and (chain_means < -1.5).any()
    assert fit.diagnostics()["r_hat_max"] > 1.5


def test_a_zoo_model_gives_each_chain_its_own_start():
    from probzoo.infer.engines import chain_starts

    x, y = pz.data.two_branch(n=64, seed=0)
    bound = pz.MDN(hidden=(4,)).bind(x, y)
    _, starts, how = chain_starts(bound, seed=3, num_chains=3)
    assert how == "the model's own starting values, one set per chain"
    for site, values in starts.items():  # chain c at the model's starting values for seed 3 + c
        for c in range(3):
            np.testing.assert_allclose(values[c], np.asarray(bound.init_values(3 + c)[site]), rtol=1e-6, atol=1e-6)
    assert any(not np.allclose(v[0], v[1]) for v in starts.values())  # the random weights differ by chain
    # UKR: each chain's latents are the starting latents turned by a rotation or reflection of their own
    Y = pz.data.saddle(n=100, seed=0)[0]
    _, starts, how = chain_starts(pz.UKR().bind(Y), seed=0, num_chains=3)
    assert how == "the model's own starting values, turned for each chain"
    x0, x1, x2 = (np.asarray(starts["x"][c]) for c in range(3))
    assert not np.allclose(x0, x1) and not np.allclose(x1, x2)
    gram = x0 @ x0.T  # a rotation keeps every inner product of the latents
    np.testing.assert_allclose(x1 @ x1.T, gram, atol=1e-4 * np.abs(gram).max())
    np.testing.assert_allclose(x2 @ x2.T, gram, atol=1e-4 * np.abs(gram).max())
