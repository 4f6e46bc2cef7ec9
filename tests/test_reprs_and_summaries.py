"""What a REPL shows: short reprs of every public object, the loss per epoch, the summary of a point."""

import numpy as np
import pytest

import probzoo as pz
from probzoo.infer import run_mcmc, run_svi
from probzoo.infer.engines import registered
from probzoo.zoo import entries


@pytest.fixture(scope="module")
def mdn_map():
    x, y = pz.data.two_branch(n=300, seed=0)
    return pz.MDN(n_components=2, hidden=(4,)).fit(x, y, num_steps=40, batch_size=100, seed=0)


def test_the_loss_is_reported_per_epoch(mdn_map):
    spe = mdn_map.info["steps_per_epoch"]
    assert spe == 3 and mdn_map.losses.shape == (40,)  # 13 epochs of 3 minibatches and one step of a 14th
    per_epoch = mdn_map.epoch_losses
    assert per_epoch.shape == (14,)
    np.testing.assert_allclose(per_epoch[:13], mdn_map.losses[:39].reshape(13, 3).mean(axis=1), rtol=1e-6)
    assert per_epoch[13] == pytest.approx(mdn_map.losses[39])
    # the repr's final loss is the last epoch's mean, not the last minibatch's
    full = pz.MDN(n_components=2, hidden=(4,)).fit(*pz.data.two_branch(n=300, seed=0), num_steps=39,
                                                   batch_size=100, seed=0)
    assert f"final_loss={full.epoch_losses[-1]:.4g}" in repr(full)
    assert full.epoch_losses[-1] == pytest.approx(full.losses[-3:].mean())
    assert full.epoch_losses[-1] != pytest.approx(full.losses[-1], rel=1e-4)


def test_a_point_estimate_summarises_as_its_point(mdn_map):
    table = mdn_map.summary()
    assert list(table.columns) == ["value"]  # no sd column of zeros, no r_hat of one draw
    assert len(table) == mdn_map.model.num_weights(1)
    post = mdn_map.idata.posterior
    name = next(iter(post.data_vars))
    first = np.asarray(post[name].values).reshape(-1)[0]
    index = f"[{', '.join(['0'] * (post[name].ndim - 2))}]" if post[name].ndim > 2 else ""
    assert table.loc[name + index, "value"] == pytest.approx(float(first))
    assert mdn_map.is_point_estimate


def test_every_public_object_has_a_short_repr(mdn_map):
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(0, 0.1, (64, 32)).astype(np.float32), "b": np.zeros(64, np.float32),
              "c": np.zeros(32, np.float32)}
    rbm_fit = pz.RBM(n_hidden=32).from_params(params)
    chains = rbm_fit.sample(num_chains=2, num_samples=200, num_warmup=10, seed=0)

    y = rng.normal(size=50).astype(np.float32)

    def model(y):
        import numpyro
        import numpyro.distributions as dist

        mu = numpyro.sample("mu", dist.Normal(0, 1))
        with numpyro.plate("data", y.shape[0]):
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    from numpyro.infer import NUTS
    from numpyro.infer.autoguide import AutoNormal

    svi_run = run_svi(model, AutoNormal(model), y, num_steps=5, seed=0)
    mcmc_run = run_mcmc(NUTS(model), y, num_warmup=10, num_samples=10, num_chains=1, seed=0)
    objects = [mdn_map, mdn_map.model, rbm_fit, chains, svi_run, mcmc_run, pz.from_numpyro(model, y),
               *registered().values(), *entries().values()]
    for obj in objects:
        text = repr(obj)
        assert len(text) <= 240 and "\n" not in text, text
        assert "array(" not in text, text
