"""fit.diagnostics(): PSIS k-hat of variational fits, r_hat / ESS / ESS per gradient of MCMC fits, and what a
point estimate reports; stored in the InferenceData, so they survive save / load, and shown by pz.compare."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS

import probzoo as pz
from probzoo.infer.diagnostics import psis_khat
from probzoo.infer.mcmc import run_mcmc


def gaussian_2d(y, rho=0.95):
    """theta ~ N(0, 5^2 I), y ~ N(theta, [[1, rho], [rho, 1]]): the posterior is N(~y, ~Sigma), correlation rho."""
    cov = jnp.array([[1.0, rho], [rho, 1.0]])
    theta = numpyro.sample("theta", dist.Normal(0, 5).expand([2]).to_event(1))
    numpyro.sample("y", dist.MultivariateNormal(theta, cov), obs=y)


def standard_normal(y):
    """theta ~ N(0, I_5); y carries no information about it (a likelihood of constant mean)."""
    numpyro.sample("theta", dist.Normal(0, 1).expand([5]).to_event(1))
    numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)


Y2 = np.array([0.3, -0.2], np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_khat_separates_a_good_approximation_from_a_bad_one(seed):
    """Yao et al. (2018)'s example. Against a Gaussian posterior with correlation 0.95, the mean-field q has the
    posterior's conditional variances, 1 - rho^2 = 0.0975 in every direction, while along (1, 1) the posterior's
    variance is 1 + rho = 1.95: the ratio p / q then has a Pareto tail of shape k = 1 - 0.0975 / 1.95 = 0.95.
    The full-rank q matches the posterior (k near 0). With 100,000 guide draws PSIS fits the tail on
    3 sqrt(S) = 949 ratios, so k-hat's standard error is about (1 + k) / sqrt(949) = 0.06: 0.95 lies 4 se above
    0.7, and a fit within 0.1 of 0 lies 6 se below 0.5 (measured, 4 seeds: 0.85-0.96 and 0.09-0.13). Without
    correlation both q are exact families: k-hat < 0.5 (measured -0.05-0.04)."""
    options = {"num_steps": 3_000, "num_particles": 8, "num_draws": 100_000, "seed": seed}
    correlated = pz.from_numpyro(gaussian_2d, Y2, rho=0.95)
    good, bad = correlated.fit(method="fullrank", **options), correlated.fit(method="meanfield", **options)
    assert good.diagnostics()["khat"] < 0.5
    assert bad.diagnostics()["khat"] > 0.7
    assert bad.diagnostics()["khat_reading"] == "unreliable" and good.diagnostics()["khat_reading"] == "good"
    independent = pz.from_numpyro(gaussian_2d, Y2, rho=0.0)
    for method in ("fullrank", "meanfield"):
        assert independent.fit(method=method, **options).diagnostics()["khat"] < 0.5


def test_khat_is_recorded_in_the_inference_data_and_survives_save_and_load(tmp_path):
    fit = pz.from_numpyro(gaussian_2d, Y2).fit(method="meanfield", num_steps=500)
    group = fit.idata.variational
    assert group["log_ratio"].shape == (1_000,) and group["elbo"].shape == (500,)
    np.testing.assert_allclose(group["elbo"].values, -fit.losses)
    # the stored k-hat is the one of the stored ratios, and it is what the fit reports
    assert fit.diagnostics()["khat"] == pytest.approx(psis_khat(group["log_ratio"].values))
    assert fit.info["khat"] == pytest.approx(fit.diagnostics()["khat"])
    loaded = pz.load(fit.save(tmp_path / "meanfield"))
    assert loaded.diagnostics() == fit.diagnostics()


def test_a_point_estimate_reports_khat_as_not_applicable_with_the_reason():
    d = pz.from_numpyro(gaussian_2d, Y2).fit(method="map", num_steps=300).diagnostics()
    assert d["kind"] == "point estimate" and d["khat"] is None
    assert "not applicable" in d["khat_reason"] and "one point" in d["khat_reason"]


def test_the_gradient_count_is_numpyros_leapfrog_steps_of_warm_up_and_sampling():
    """run_mcmc counts every leapfrog step (one gradient each): warm-up as NumPyro's own warm-up phase counts
    them (the same program on the same inputs: equal), sampling as the run's ``num_steps`` field."""
    y = np.float32(0.0)
    kernel = NUTS(standard_normal)
    run = run_mcmc(kernel, y, num_warmup=200, num_samples=300, num_chains=2, seed=3, chain_method="vectorized")
    reference = MCMC(NUTS(standard_normal), num_warmup=200, num_samples=300, num_chains=2,
                     chain_method="vectorized", progress_bar=False)
    reference.warmup(jax.random.PRNGKey(3), y, collect_warmup=True, extra_fields=("num_steps",))
    np.testing.assert_array_equal(run.warmup_steps,
                                  np.asarray(reference.get_extra_fields(group_by_chain=True)["num_steps"]))
    np.testing.assert_array_equal(run.sample_steps,
                                  np.asarray(run.mcmc.get_extra_fields(group_by_chain=True)["num_steps"]))
    assert run.warmup_steps.shape == (2, 200) and run.sample_steps.shape == (2, 300)


def test_ess_per_gradient_of_nuts_on_a_standard_normal():
    """On N(0, I_5) NUTS's draws are nearly independent (bulk ESS per draw about 0.8-1.3 over 1,000 draws) and
    each iteration takes a tree of mostly 3 or 7 leapfrog steps: ESS per gradient lies between 0.5 and 2 over the
    gradients spent per kept draw, and it is exactly bulk ESS over the gradient count
    recorded in the InferenceData (warm-up and sampling)."""
    fit = pz.from_numpyro(standard_normal, np.float32(0.0)).fit(method="nuts", num_warmup=300, num_samples=500,
                                                                num_chains=2, seed=0)
    d = fit.diagnostics()
    warm = fit.idata.warmup_sample_stats["n_steps"].values
    steps = fit.idata.sample_stats["n_steps"].values
    assert warm.shape == (2, 300) and steps.shape == (2, 500)
    assert d["grad_evals"] == int(warm.sum() + steps.sum()) == fit.info["grad_evals"]
    assert d["ess_per_grad"] == pytest.approx(d["ess_bulk_min"] / d["grad_evals"])
    draws = 1_000
    per_draw = d["grad_evals"] / draws  # gradients per kept draw, warm-up included
    assert 0.5 / per_draw < d["ess_per_grad"] < 2.0 / per_draw
    assert 2 <= steps.mean() <= 15  # trees of 3 or 7 steps mostly, a few deeper
    assert d["divergences"] == 0 and d["read_on"] == "raw sites" and d["r_hat_max"] < 1.05


def test_fixed_cost_samplers_count_their_gradients():
    """BarkerMH takes one gradient an iteration; SA none (gradient-free: ESS per gradient is undefined)."""
    m = pz.from_numpyro(standard_normal, np.float32(0.0))
    barker = m.fit(method="barker", num_warmup=100, num_samples=200, num_chains=2).diagnostics()
    assert barker["grad_evals"] == 2 * (100 + 200)
    sa = m.fit(method="sa", num_warmup=100, num_samples=200, num_chains=2).diagnostics()
    assert sa["grad_evals"] == 0 and sa["ess_per_grad"] is None


def test_invariants_and_raw_sites_are_diagnosed_apart():
    """A model that names invariant quantities is judged on them; the raw sites are reported too, labelled."""
    Y, _ = pz.data.saddle(25, grid=True)
    fit = pz.UKR().fit(Y, method="nuts", num_warmup=50, num_samples=50, num_chains=2, max_tree_depth=4,
                       map_steps=200)
    d = fit.diagnostics()
    assert d["read_on"] == "invariant quantities"
    invariant = {k for k, q in d["quantities"].items() if q["invariant"]}
    assert invariant == set(fit.diagnostic_sites) and not d["quantities"]["x"]["invariant"]
    assert d["r_hat_max"] == max(d["quantities"][k]["r_hat_max"] for k in invariant)
    assert d["ess_tail_min"] == min(d["quantities"][k]["ess_tail_min"] for k in invariant)
    # warm-up's leapfrog steps are counted (NUTS within Gibbs for the noise s)
    assert d["grad_evals"] > fit.idata.sample_stats["n_steps"].values.sum() > 0


def test_compare_shows_khat_and_ess_per_gradient():
    m = pz.from_numpyro(gaussian_2d, Y2)
    table = pz.compare(m, methods=["map", "meanfield", "nuts"],
                       budget={"map": {"num_steps": 300}, "meanfield": {"num_steps": 1_000},
                               "nuts": {"num_warmup": 100, "num_samples": 100, "num_chains": 2}})
    assert np.isnan(table.loc["map", "khat"]) and np.isfinite(table.loc["meanfield", "khat"])
    assert np.isfinite(table.loc["nuts", "ess_per_grad"]) and np.isnan(table.loc["meanfield", "ess_per_grad"])
    assert table.loc["nuts", "divergences"] >= 0


def test_summary_carries_the_fit_level_diagnostics():
    m = pz.from_numpyro(gaussian_2d, Y2)
    fit = m.fit(method="meanfield", num_steps=500)
    assert fit.summary().attrs["diagnostics"]["khat"] == fit.diagnostics()["khat"]
    assert m.fit(method="map", num_steps=200).summary().attrs["diagnostics"]["kind"] == "point estimate"


@pytest.mark.parametrize("shape", [0.3, 0.8])
def test_psis_khat_recovers_a_known_pareto_tail(shape):
    """Ratios drawn from a Pareto with tail shape k (numpy's Lomax with a = 1 / k, plus 1): PSIS's estimate
    from 100,000 draws fits 3 sqrt(S) = 949 tail ratios, standard error about (1 + k) / sqrt(949) <= 0.06;
    within 0.2 of k. Non-finite ratios (a degenerate q) read as infinite."""
    ratios = np.random.default_rng(0).pareto(1.0 / shape, 100_000) + 1.0
    assert psis_khat(np.log(ratios)) == pytest.approx(shape, abs=0.2)
    assert psis_khat(np.array([0.0, 1.0, np.nan, 2.0, 3.0, 4.0])) == float("inf")
