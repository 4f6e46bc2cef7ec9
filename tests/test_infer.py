"""The SVI/MCMC runners, InferenceData construction, Fit save/load and checkpoints on a conjugate model."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from compilations import compilations
from numpyro.infer import NUTS
from numpyro.infer.autoguide import AutoNormal

import probzoo as pz
from probzoo.infer import (
    CorruptFileError,
    Fit,
    NonFiniteLossError,
    run_mcmc,
    run_svi,
    svi_inference_data,
)
from probzoo.infer.checkpoint import load_checkpoint, save_checkpoint
from probzoo.infer.loop import run_loop
from probzoo.models.base import ZooModel
from probzoo.zoo import register_model

PRIOR_SD, NOISE_SD = 10.0, 2.0


def normal_model(y=None, n=None):
    """mu ~ N(0, 10^2); y_i | mu ~ N(mu, 2^2)."""
    mu = numpyro.sample("mu", dist.Normal(0.0, PRIOR_SD))
    with numpyro.plate("data", n if y is None else y.shape[0]) as idx:
        numpyro.sample("y", dist.Normal(mu, NOISE_SD), obs=None if y is None else jnp.asarray(y)[idx])


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).normal(3.0, NOISE_SD, size=400).astype(np.float32)


def analytic_posterior(y):
    precision = 1 / PRIOR_SD**2 + len(y) / NOISE_SD**2
    return float(y.sum() / NOISE_SD**2 / precision), float(precision**-0.5)


@register_model
class ConjugateNormal(ZooModel):
    """A zoo model for save/load tests: the conjugate Normal mean."""

    def __init__(self, prior_sd: float = PRIOR_SD):
        self._config = {"prior_sd": prior_sd}


@pytest.fixture(scope="module")
def svi_fit(data):
    guide = AutoNormal(normal_model)
    sched = optax.exponential_decay(0.05, transition_steps=500, decay_rate=0.5)
    run = run_svi(normal_model, guide, data, optim=optax.adam(sched), num_steps=4000, seed=0)
    idata, draws = svi_inference_data(normal_model, guide, run.params, (data,), observed={"y": data},
                                      predictive_args=(None, len(data)), num_samples=4000, seed=0)
    return run, idata, draws


def test_svi_recovers_the_analytic_posterior(svi_fit, data):
    run, idata, draws = svi_fit
    mean, sd = analytic_posterior(data)
    # AutoNormal's family contains the exact posterior, so only optimisation noise remains; with a
    # decayed step size it is far below 5% of a posterior sd. 4000 guide draws: sd error ~1.1%.
    assert float(run.params["mu_auto_loc"]) == pytest.approx(mean, abs=0.05 * sd)
    assert float(run.params["mu_auto_scale"]) == pytest.approx(sd, rel=0.05)
    assert draws["mu"].std() == pytest.approx(sd, rel=0.05)
    assert set(idata.groups()) >= {"posterior", "log_likelihood", "posterior_predictive", "observed_data"}
    assert idata.log_likelihood["y"].shape == (1, 4000, 400)
    assert idata.posterior_predictive["y"].shape == (1, 4000, 400)
    loo = pz.infer.arviz_io.loo(idata)
    assert np.isfinite(loo.elpd_loo)
    assert run.compile_time > 0 and run.wall_time >= run.compile_time


def test_nuts_recovers_the_analytic_posterior(data):
    run = run_mcmc(NUTS(normal_model), data, num_warmup=500, num_samples=1000, num_chains=2, seed=0)
    idata = pz.infer.mcmc_inference_data(run.mcmc, observed_site="y", predictive_args=(None, len(data)))
    mean, sd = analytic_posterior(data)
    mu = idata.posterior["mu"].values
    # ~2000 draws with ESS of several hundred: Monte Carlo error of the mean ~0.05 sd, of the sd ~3%.
    assert mu.mean() == pytest.approx(mean, abs=0.2 * sd)
    assert mu.std() == pytest.approx(sd, rel=0.12)
    assert set(idata.groups()) >= {"posterior", "log_likelihood", "posterior_predictive", "observed_data"}
    summary = pz.infer.arviz_io.summary(idata)
    assert summary.loc["mu", "r_hat"] < 1.02


def test_nuts_with_as_many_warmup_iterations_as_draws_compiles_its_loop_once():
    """Warm-up (run apart, to count its gradients) and sampling collect the same fields, so with as many
    iterations each they are one program: the sampling phase loads the warm-up's executable from the
    persistent compilation cache (which the test session turns on) instead of compiling NUTS again."""
    def model(y):  # a model of this test's own, so that no other test has compiled its programs
        w = numpyro.sample("w", dist.Normal(0.0, 3.0).expand([7]).to_event(1))
        numpyro.sample("y", dist.Normal(w.sum() * 0.61, 1.3), obs=y)

    run, compiled = compilations(run_mcmc, NUTS(model), jnp.arange(5.0), num_warmup=30, num_samples=30,
                                 num_chains=2, seed=3, extra_fields=("accept_prob",))  # a field beyond the defaults
    assert run.warmup_steps.shape == (2, 30) and run.sample_steps.shape == (2, 30)
    loops = [cached for name, cached in compiled if "fori_collect" in name]
    assert len(loops) >= 2 and loops.count(False) == 1, compiled


def test_minibatch_svi_scales_the_likelihood(data):
    guide = AutoNormal(normal_model)
    run = run_svi(normal_model, guide, data, optim=optax.adam(optax.exponential_decay(0.05, 400, 0.5)),
                  epochs=150, batch_size=40, seed=0)
    mean, sd = analytic_posterior(data)
    assert run.steps_per_epoch == 10 and run.losses.shape == (1500,)
    # with N/B scaling the minibatch ELBO has the full-data optimum; unscaled it would be 10x wider
    assert float(run.params["mu_auto_loc"]) == pytest.approx(mean, abs=0.5 * sd)
    assert float(run.params["mu_auto_scale"]) == pytest.approx(sd, rel=0.25)


@pytest.mark.reproducibility
def test_same_seed_same_result(data):
    guide = AutoNormal(normal_model)
    a = run_svi(normal_model, guide, data, num_steps=300, batch_size=50, seed=7, learning_rate=0.01)
    b = run_svi(normal_model, guide, data, num_steps=300, batch_size=50, seed=7, learning_rate=0.01)
    c = run_svi(normal_model, guide, data, num_steps=300, batch_size=50, seed=8, learning_rate=0.01)
    assert np.array_equal(a.losses, b.losses)
    assert float(a.params["mu_auto_loc"]) == float(b.params["mu_auto_loc"])
    assert not np.array_equal(a.losses, c.losses)


def test_continue_from_params(data):
    guide = AutoNormal(normal_model)
    first = run_svi(normal_model, guide, data, num_steps=2000, learning_rate=0.02, seed=0)
    more = run_svi(normal_model, guide, data, num_steps=10, learning_rate=1e-4, seed=1, init_params=first.params)
    assert float(more.params["mu_auto_loc"]) == pytest.approx(float(first.params["mu_auto_loc"]), abs=0.01)


def test_nan_guard_names_the_step():
    def exploding(y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.factor("blowup", jnp.exp(1e3 * mu**2))  # overflows to inf once |mu| grows

    guide = AutoNormal(exploding, init_scale=3.0)
    with pytest.raises(NonFiniteLossError, match=r"at step \d+ of 50"):
        run_svi(exploding, guide, num_steps=50, seed=0, chunk_size=7)


def test_the_loop_runs_a_chunk_ahead_unless_a_rule_may_stop_it():
    # without a stopping rule the next chunk is dispatched before this one's losses are read (the device does
    # not wait for the host between chunks), and a NaN still stops the run at its own chunk and step; with a
    # rule, no chunk runs after the one it stops at
    started = []

    def chunk(state, first, n):
        jax.debug.callback(lambda f: started.append(int(f)), first)
        return state + n, jnp.where(first >= 20, jnp.nan, 1.0) * jnp.ones(10)

    with pytest.raises(NonFiniteLossError, match=r"at step 21 of 50"):
        run_loop(chunk, jnp.zeros(()), total=50, chunk_size=10, identity={}, desc="loop")
    jax.effects_barrier()
    assert sorted(started) == [0, 10, 20, 30]
    started.clear()
    run = run_loop(chunk, jnp.zeros(()), total=50, chunk_size=10, identity={}, desc="loop",
                   stop=lambda state: state >= 20)
    jax.effects_barrier()
    assert sorted(started) == [0, 10] and float(run.state) == 20.0 and len(run.losses) == 20


@pytest.mark.reproducibility
def test_resume_is_exact(tmp_path, data):
    guide = AutoNormal(normal_model)
    kw = dict(num_steps=60, batch_size=50, learning_rate=0.01, seed=3, chunk_size=8)
    full = run_svi(normal_model, guide, data, **kw)
    ckpt = tmp_path / "state.ckpt"

    class Stop(Exception):
        pass

    def interrupt(step, losses, state):
        if step >= 30:
            raise Stop

    with pytest.raises(Stop):
        run_svi(normal_model, guide, data, checkpoint=ckpt, checkpoint_every=16, callback=interrupt, **kw)
    assert load_checkpoint(ckpt).step == 32  # chunks are one epoch of 8 steps; saved at 16 and 32
    resumed = run_svi(normal_model, guide, data, resume=ckpt, **kw)
    assert np.array_equal(resumed.losses, full.losses)
    for k in full.params:
        assert np.array_equal(np.asarray(resumed.params[k]), np.asarray(full.params[k]))


@pytest.mark.reproducibility
def test_stop_ends_the_run_early_with_a_checkpoint_and_resumes_to_the_same_end(tmp_path, data):
    """A stopping rule reads the state only, so a resumed run stops where the uninterrupted one did."""
    guide = AutoNormal(normal_model)

    def converged(state):  # the optimiser's step counter, a stand-in for a rule read off the state
        return int(state.optim_state[0]) >= 36

    kw = dict(num_steps=200, batch_size=50, learning_rate=0.01, seed=3, chunk_size=8, stop=converged)
    full = run_svi(normal_model, guide, data, **kw)
    assert full.losses.shape == (40,)  # the chunk (8 steps) in which the rule became true ends the run
    ckpt = tmp_path / "state.ckpt"

    class Interrupted(Exception):
        pass

    def interrupt(step, losses, state):
        if step == 16:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_svi(normal_model, guide, data, checkpoint=ckpt, checkpoint_every=16, callback=interrupt, **kw)
    resumed = run_svi(normal_model, guide, data, resume=ckpt, checkpoint=ckpt, checkpoint_every=16, **kw)
    assert load_checkpoint(ckpt).step == 40  # written when the rule stopped the run, off the 16-step grid
    assert np.array_equal(resumed.losses, full.losses)
    for k in full.params:
        assert np.array_equal(np.asarray(resumed.params[k]), np.asarray(full.params[k]))


def test_checkpoint_corruption_detected(tmp_path):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {"a": np.arange(5.0), "b": np.ones(3)}, step=4, losses=np.zeros(4))
    raw = path.read_bytes()
    (tmp_path / "trunc.ckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "trunc.ckpt")
    flipped = bytearray(raw)
    i = raw.find(np.arange(5.0).tobytes())
    flipped[i + 3] ^= 0xFF
    (tmp_path / "flip.ckpt").write_bytes(bytes(flipped))
    with pytest.raises(CorruptFileError, match="corrupt"):  # zip CRC or our SHA-256, whichever trips first
        load_checkpoint(tmp_path / "flip.ckpt")


def test_fit_save_load_round_trip(tmp_path, svi_fit):
    run, idata, draws = svi_fit
    fit = Fit(model=ConjugateNormal(), method="meanfield", params=run.params, idata=idata, losses=run.losses,
              samples={"mu": draws["mu"]}, wall_time=run.wall_time, compile_time=run.compile_time, seed=0,
              info={"num_steps": 4000})
    path = fit.save(tmp_path / "fit")
    back = pz.load(path)
    assert type(back) is Fit and isinstance(back.model, ConjugateNormal)
    assert back.model.get_config() == {"prior_sd": PRIOR_SD}
    for k, v in fit.params.items():
        assert np.array_equal(back.params[k], np.asarray(v)) and back.params[k].dtype == np.asarray(v).dtype
    assert np.array_equal(back.samples["mu"], draws["mu"])
    assert np.array_equal(back.losses, run.losses)
    assert back.info == {"num_steps": 4000} and back.wall_time == fit.wall_time
    assert back.idata.posterior["mu"].equals(idata.posterior["mu"])
    assert back.idata.log_likelihood["y"].equals(idata.log_likelihood["y"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fit.save(path)
    fit.save(path, overwrite=True)
    # a damaged file is caught by its checksum
    nc = path / "idata.nc"
    nc.write_bytes(nc.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match="idata.nc"):
        pz.load(path)


def test_summary_hides_diagnostics_for_svi(svi_fit):
    run, idata, draws = svi_fit
    fit = Fit(model=ConjugateNormal(), method="meanfield", params=run.params, idata=idata)
    assert "r_hat" not in fit.summary().columns
    fit.info["mcmc"] = True
    assert "r_hat" in fit.summary().columns


def test_parallel_chains_on_two_devices():
    code = textwrap.dedent(
        """
        import jax, numpy as np, numpyro, numpyro.distributions as dist
        from numpyro.infer import NUTS
        from probzoo.infer import run_mcmc
        def model(y):
            mu = numpyro.sample("mu", dist.Normal(0, 10))
            numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        run = run_mcmc(NUTS(model), np.ones(10, np.float32), num_warmup=50, num_samples=50, num_chains=2)
        s = run.mcmc.get_samples(group_by_chain=True)["mu"]
        print(jax.local_device_count(), run.chain_method, s.shape)
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "parallel", "(2,", "50)"]


def test_runner_argument_errors(data):
    guide = AutoNormal(normal_model)
    with pytest.raises(ValueError, match="num_steps, epochs: give exactly one"):
        run_svi(normal_model, guide, data)
    with pytest.raises(ValueError, match="batch_size: 500 exceeds"):
        run_svi(normal_model, guide, data, num_steps=2, batch_size=500)
    with pytest.raises(TypeError, match="kernel"):
        run_mcmc("nuts", data)
