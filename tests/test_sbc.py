"""Simulation-based calibration: it passes an exact posterior and a sampler that is right, and it fails a
posterior that is too narrow (mean-field on a correlated posterior) or shifted."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers

import probzoo as pz
from probzoo.infer.engines import engine

N_OBS = 10


def normal_mean(y):
    """mu ~ N(0, 1), y_i ~ N(mu, 1): the posterior is N(sum(y) / (n + 1), 1 / (n + 1))."""
    mu = numpyro.sample("mu", dist.Normal(0, 1))
    with numpyro.plate("data", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def gaussian_2d(y, rho=0.95):
    cov = jnp.array([[1.0, rho], [rho, 1.0]])
    theta = numpyro.sample("theta", dist.Normal(0, 1).expand([2]).to_event(1))
    numpyro.sample("y", dist.MultivariateNormal(theta, cov), obs=y)


def exact_posterior_engine(shift: float):
    """An engine whose draws are the exact conjugate posterior of ``normal_mean``, moved by ``shift`` posterior
    standard deviations: the test of the test (calibrated at 0, miscalibrated away from it)."""
    def posterior(model_fn, budget, options, key, args, kwargs, num_draws):
        y = handlers.trace(handlers.seed(model_fn, 0)).get_trace(*args, **kwargs)["y"]["value"]
        n = y.shape[0]
        mean, sd = jnp.sum(y) / (n + 1), 1.0 / jnp.sqrt(n + 1.0)
        return {"mu": mean + sd * (shift + jax.random.normal(key, (num_draws,)))}

    return dataclasses.replace(engine("nuts"), name=f"exact{shift:+g}", posterior=posterior)


@pytest.fixture(scope="module")
def normal_model():
    return pz.from_numpyro(normal_mean, np.zeros(N_OBS, np.float32))


def test_the_exact_posterior_passes_and_a_shifted_one_fails(normal_model):
    """The p-value of calibrated ranks is uniform: p > 0.01 fails 1% of seeds by construction (seed 0 is one of
    the 99%; the exact draws are the same program on every processor up to float32 rounding). Half a posterior
    sd of shift moves the mean fractional rank to about 0.31: with 100 simulations p is at the floor."""
    assert pz.sbc(normal_model, exact_posterior_engine(0.0), num_simulations=100).passed(0.01)
    shifted = pz.sbc(normal_model, exact_posterior_engine(0.5), num_simulations=100)
    assert not shifted.passed(0.01) and shifted.p_values["mu"] < 0.001
    assert shifted.table().loc["mu", "mean_rank"] < 0.4


def test_nuts_on_a_conjugate_normal_passes(normal_model):
    """NUTS, one chain of 200 + 500 per simulation, thinned to 99 draws: calibrated (p > 0.01; a calibrated
    method fails 1% of the time at this level)."""
    result = pz.sbc(normal_model, "nuts", num_simulations=100, num_warmup=200, num_samples=500)
    assert result.passed(0.01), result.p_values
    assert result.ranks["mu"].shape == (100,) and 0 <= result.ranks["mu"].min() and result.ranks["mu"].max() <= 99


def test_meanfield_on_a_correlated_posterior_fails_and_fullrank_passes(tmp_path):
    """Mean-field q has the conditional variance 1 - rho^2 of each coordinate, about a third of the marginal
    sd's square here: the true values fall in q's tails, U-shaped ranks (measured: half the ranks in the outer
    tenths, p at the floor). The full-rank q is exact: calibrated."""
    m = pz.from_numpyro(gaussian_2d, np.zeros(2, np.float32))
    options = {"num_simulations": 100, "num_steps": 2_000, "num_particles": 4}
    narrow = pz.sbc(m, "meanfield", **options)
    assert not narrow.passed(0.01) and max(narrow.p_values.values()) < 0.001
    assert (narrow.table()["outer_tenths"] > 0.35).all()  # 0.2 when calibrated
    assert pz.sbc(m, "fullrank", **options).passed(0.01)
    png = narrow.figure(tmp_path / "sbc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_point_estimates_are_refused_with_the_reason(normal_model):
    with pytest.raises(ValueError, match="^method: map: simulation-based calibration does not apply: it gives "
                                         "one point"):
        pz.sbc(normal_model, "map")
    with pytest.raises(ValueError, match="^num_steps: not an option of engine 'nuts'"):
        pz.sbc(normal_model, "nuts", num_steps=10)


def test_same_seed_same_ranks(normal_model):
    a = pz.sbc(normal_model, exact_posterior_engine(0.0), num_simulations=20, seed=3)
    b = pz.sbc(normal_model, exact_posterior_engine(0.0), num_simulations=20, seed=3)
    np.testing.assert_array_equal(a.ranks["mu"], b.ranks["mu"])


def test_simulations_vectorised_or_one_after_another_give_the_same_ranks(normal_model):
    """The simulations run vectorised (vmap) or, for an engine whose work depends on the data (NUTS), one
    after another (lax.map): each simulation gets the same key and data either way. The exact posterior's
    draws are a normal draw times a scale plus a mean, so the two programs differ by float rounding only, and a
    rank moves (by one) only if a draw lies within that rounding of its true value: chance about 1e-3 over the
    3,000 comparisons, so one such move is allowed; keys or data given to the wrong simulation would move
    nearly every rank."""
    assert not engine("nuts").vectorise_posterior
    assert all(engine(name).vectorise_posterior for name in ("hmc", "sa", "barker", "meanfield", "fullrank"))
    exact = exact_posterior_engine(0.0)
    one_by_one = pz.sbc(normal_model, dataclasses.replace(exact, vectorise_posterior=False), num_simulations=30,
                        seed=5)
    vectorised = pz.sbc(normal_model, dataclasses.replace(exact, vectorise_posterior=True), num_simulations=30,
                        seed=5)
    moved = np.abs(one_by_one.ranks["mu"] - vectorised.ranks["mu"])
    assert moved.max() <= 1 and np.count_nonzero(moved) <= 1, (one_by_one.ranks["mu"], vectorised.ranks["mu"])
    assert len(set(one_by_one.ranks["mu"].tolist())) > 10  # 30 simulations, not one repeated


def test_probzoo_sbc_calibrates_on_the_models_invariant_quantities(tmp_path, capsys):
    """The MDN's configuration (hidden=(4,), one component, 100 points): mean-field over the weights gives a
    log-likelihood of the data whose true value sits too low among q's draws (measured: mean fractional rank
    0.34-0.36 over 50 and 100 simulations, p at the floor of 1/4001), and raw weights are ranked apart."""
    import json

    from probzoo.cli import main

    assert main(["sbc", "mdn", "--method", "meanfield", "--simulations", "100", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "sbc_mdn_meanfield.json").read_text())
    assert record["simulations"] == 100 and record["p_values"]["log_lik"] < 0.01
    assert len(record["ranks"]["log_lik"]) == 100 and "net/Dense_0.bias[0]" in record["ranks"]
    printed = capsys.readouterr().out
    assert "log_lik" in printed and "miscalibrated" in printed and "raw sites miscalibrated" in printed
    assert (tmp_path / "sbc_mdn_meanfield.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ukr_sbc_nuts_is_calibrated_on_the_invariants_and_meanfield_is_not(tmp_path, capsys):
    """UKR's configuration (30 saddle points, reg=1, s fixed): ranks of the rotation-invariant quantities.

    NUTS: a calibrated quantity's p-value is uniform, so it reaches the floor 1/4001 with probability 1/4001;
    all 12 stay off it but with probability 12/4001 (measured on seeds 0-2: smallest p 0.012, 0.086, 0.0062).
    Mean-field: q too narrow and too near the posterior's centre puts the true reconstruction error and latent
    norm above most of its draws (measured mean fractional ranks 0.90 and 0.95, p at the floor; a calibrated
    method's mean rank is 0.5 with standard error 0.029 over 100 simulations)."""
    import json

    from probzoo.cli import main
    from probzoo.zoo import get_entry

    config = get_entry("ukr").sbc
    model = pz.UKR(**config["model_kwargs"])
    nuts = pz.sbc(model, "nuts", num_simulations=100, data=config["data"](0), **config["budgets"]["nuts"])
    table = nuts.table()
    invariant = table[table["invariant"]]
    assert set(invariant.index) == {"recon_error", "latent_rms", *(f"pair_dist[{i}]" for i in range(10))}
    assert (invariant["p_value"] > 1.5 / 4001).all(), invariant
    assert abs(invariant.loc["latent_rms", "mean_rank"] - 0.5) < 0.1
    assert {f"x[{i}, {j}]" for i in range(30) for j in range(2)} <= set(table[~table["invariant"]].index)

    assert main(["sbc", "ukr", "--method", "meanfield", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "sbc_ukr_meanfield.json").read_text())
    assert record["p_values"]["recon_error"] < 0.001 and record["p_values"]["latent_rms"] < 0.001
    for name in ("recon_error", "latent_rms"):
        assert np.mean((np.array(record["ranks"][name]) + 0.5) / 100) > 0.75
    assert "latent_rms" in capsys.readouterr().out


def test_probzoo_sbc_says_why_it_does_not_apply(capsys):
    from probzoo.cli import main

    assert main(["sbc", "clustering_vae", "--method", "relaxed"]) == 2
    assert "amortised encoder" in capsys.readouterr().err
    assert main(["sbc", "mdn", "--method", "map"]) == 2
    assert "it gives one point" in capsys.readouterr().err
