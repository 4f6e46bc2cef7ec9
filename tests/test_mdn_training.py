"""Mixture density regression: runs that need no shared fit (the heteroscedastic problem, the enumerated
variant's training, checkpoint / resume, NUTS on a small network, bad hyper-parameters)."""

from __future__ import annotations

import numpy as np
import optax
import pytest

import probzoo as pz
from probzoo.infer import arviz_io
from probzoo.models.mdn import MDN

GRID = np.linspace(0.2, 1.0, 81, dtype=np.float32)[:, None]


def test_heteroscedastic_k1_mean_and_std_follow_x():
    x, y = pz.data.heteroscedastic(n=10_000, seed=0)
    fit = MDN(n_components=1).fit(x, y)
    np.testing.assert_allclose(fit.mean(GRID), GRID[:, 0], atol=0.05)
    np.testing.assert_allclose(fit.std(GRID), GRID[:, 0], atol=0.05)
    p = fit.predict(GRID)
    np.testing.assert_allclose(p["means"][:, 0], fit.mean(GRID), rtol=1e-5)
    np.testing.assert_allclose(p["weights"], 1.0)


def test_enumerated_training_follows_the_closed_form_exactly():
    x, y = pz.data.two_branch(n=1_024, seed=3)
    kw = {"num_steps": 16, "seed": 5}                   # 2 epochs of the default batch of 128
    closed = MDN(2).fit(x, y, **kw)
    enumerated = MDN(2, enumerated=True).fit(x, y, **kw)
    np.testing.assert_allclose(enumerated.losses, closed.losses, rtol=1e-4)
    for k, v in closed._draws.items():
        np.testing.assert_allclose(enumerated._draws[k], v, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("shape", ["three", "switch", "fan", "crossing"])
def test_default_map_fit_runs_until_converged_and_reaches_the_true_density(shape):
    """The default MAP budget stops on convergence: within 0.03 nats of the true density's held-out NLL on
    problems it was not tuned on (10,000 points; the fixed 10 epochs of before ended 0.07-0.08 nats above
    on "three"). The held-out mean's Monte Carlo error is about 0.002 nats at 10,000 points; the fits land
    at 0.003-0.011 over seeds 0-2 on three, switch and fan. Crossing branches need the longest: on this
    data set fits of seeds 0-11 land at 0.007-0.024 (the one-epoch plateau rule of before stopped 0.040 above
    on these training points with seed 0), so another processor's rounding, which changes the trajectory as
    a seed does, stays below 0.03."""
    x, y = pz.data.branches(shape, 10_000, seed=0)
    xt, yt = pz.data.branches(shape, 10_000, seed=1)
    fit = MDN(n_components=2 if shape == "switch" else 3).fit(x, y)
    assert fit.info["schedule"] == "plateau" and fit.info["converged"] is True
    assert fit.info["num_steps"] < fit.info["max_steps"] == 78 * 200  # stopped by convergence, not the cap
    assert fit.info["num_steps"] == len(fit.losses)
    assert fit.evaluate(xt, yt, logpdf=lambda x, y: pz.data.branches_logpdf(shape, x, y))["excess_nll"] < 0.03


def test_budget_cap_and_fixed_budgets_are_respected():
    x, y = pz.data.two_branch(n=1_280, seed=0)  # 10 minibatches of 128 an epoch
    capped = MDN(2).fit(x, y, num_steps=40, schedule="plateau")  # far too few steps to converge
    assert len(capped.losses) == 40 and capped.info["converged"] is False and capped.info["max_steps"] == 40
    fixed = MDN(2).fit(x, y, num_steps=35)  # a given budget: exactly that many steps, along a cosine
    assert len(fixed.losses) == 35 and fixed.info["schedule"] == "cosine" and fixed.info["converged"] is None
    with pytest.raises(ValueError, match="^schedule"):
        MDN(2).fit(x, y, schedule="step")
    with pytest.raises(ValueError, match="^schedule: 'plateau' does not apply when optim is given"):
        MDN(2).fit(x, y, schedule="plateau", optim=optax.sgd(1e-3))


def test_a_minibatch_plateau_fit_runs_and_reports_a_round_at_a_time():
    # the rule changes its state only at a round's end (5 epochs), so the loop asks it once a round: the
    # callback (and progress, checkpoints) come every 100 steps here, and the fit ends on a round's end
    x, y = pz.data.two_branch(n=2_560, seed=0)  # 20 minibatches of 128 an epoch
    steps = []
    fit = MDN(2, hidden=(8,)).fit(x, y, num_steps=400, schedule="plateau",
                                  callback=lambda step, losses, state: steps.append(step))
    assert steps == list(range(100, len(fit.losses) + 1, 100)) and len(fit.losses) % 100 == 0


@pytest.mark.reproducibility
def test_checkpoint_resume_is_exact_and_runs_are_reproducible(tmp_path):
    x, y = pz.data.two_branch(n=1_280, seed=2)
    kw = {"num_steps": 100, "seed": 3}                  # 10 epochs of batch 128, run in 2 chunks of 5
    full = MDN(2).fit(x, y, **kw)
    ckpt = tmp_path / "mdn.ckpt"

    def stop(step, losses, state):
        if step >= 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        MDN(2).fit(x, y, checkpoint=ckpt, checkpoint_every=50, callback=stop, **kw)
    resumed = MDN(2).fit(x, y, resume=ckpt, **kw)
    # the interrupted run repeated the first half exactly (same seed, same result) and the resumed one the rest
    for k, v in full._draws.items():
        np.testing.assert_array_equal(np.asarray(resumed._draws[k]), np.asarray(v))
    np.testing.assert_array_equal(resumed.losses, full.losses)
    assert len(full.losses) == 100


def test_nuts_on_a_small_network():
    x, y = pz.data.heteroscedastic(n=200, seed=0)
    model = MDN(n_components=1, hidden=(4,))
    fit = model.fit(x, y, method="nuts", num_warmup=100, num_samples=100, num_chains=2, max_tree_depth=6,
                    chain_method="sequential")
    assert fit.is_mcmc and fit.samples["net"]["Dense_0.kernel"].shape == (200, 1, 4)
    assert fit.idata.posterior.sizes["chain"] == 2
    assert np.isfinite(arviz_io.loo(fit.idata).elpd_loo)
    # 200 points with sd = x: near x = 1 the data pin the mean down only to about +-0.2, so check [0.2, 0.8]
    g = np.linspace(0.2, 0.8, 4, dtype=np.float32)
    np.testing.assert_allclose(fit.mean(g), g, atol=0.2)
    assert np.all(np.isfinite(fit.summary()["r_hat"]))
    # convergence is read on quantities no relabelling of hidden units changes: they agree across chains
    assert fit.diagnostic_sites == ["log_lik", "mean_curve"]
    post = fit.idata.posterior
    assert post["log_lik"].shape == (2, 100) and post["mean_curve"].shape == (2, 100, 16)
    ll = fit.idata.log_likelihood["y"].values
    np.testing.assert_allclose(post["log_lik"].values, ll.sum(-1), rtol=1e-5)
    # Two chains of 100 draws on a network posterior do not reliably reach one mode (over seeds 0-5 r_hat of
    # log_lik is 1.01-1.59), so no fixed bound on it would be a property of the code. What holds on every
    # seed is the reason for reading invariants: the raw weights, whose hidden units the chains label
    # differently, look far worse (max r_hat 1.98-2.77 on the same seeds).
    rhat_raw = max(float(np.nanmax(v.values)) for k, v in arviz_io.az.rhat(fit.idata).items() if k.startswith("net"))
    assert float(arviz_io.rhat(fit.idata, var_names=["log_lik"])["log_lik"]) < rhat_raw
    np.testing.assert_allclose(post["mean_curve"].values.mean((0, 1)), fit.mean(fit.arrays["x_reference"][
        np.linspace(0, 199, 16).astype(int)]), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="hidden"):
        MDN(2).fit(x, y, method="nuts")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [({"n_components": 0}, ValueError, "n_components"), ({"n_components": 1.5}, TypeError, "n_components"),
     ({"hidden": (64, 0)}, ValueError, "hidden"), ({"hidden": "64"}, TypeError, "hidden"),
     ({"activation": "sigmoidal"}, ValueError, "activation"), ({"min_scale": 0.0}, ValueError, "min_scale"),
     ({"prior_scale": -1.0}, ValueError, "prior_scale"), ({"enumerated": 1}, TypeError, "enumerated")],
)
def test_bad_hyper_parameters(kwargs, error, name):
    with pytest.raises(error, match=f"^{name}"):
        MDN(**kwargs)
