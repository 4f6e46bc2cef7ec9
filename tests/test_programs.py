"""Fits run as whole compiled programs: NumPyro's set-up is traced, not dispatched op by op, and the
caller's guide is never set up with values of a traced program."""

from __future__ import annotations

import copy
import logging

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from compilations import compilations
from numpyro.infer import Trace_ELBO
from numpyro.infer.autoguide import AutoDelta, AutoNormal

import probzoo as pz
from probzoo.infer import OrderedTraceELBO, run_svi
from probzoo.infer.programs import call_compiled, fresh_guide


def _regression(x, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    s = numpyro.sample("s", dist.LogNormal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ w, s), obs=y)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0]) + 0.5 * rng.normal(size=200)).astype(np.float32)
    return x, y


class _CountCompiles(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("Compiling")


def test_a_first_mdn_fit_compiles_a_few_programs_not_hundreds_of_operations():
    # JAX logs "Compiling ..." for every program it builds, a cache hit included, so the count is the same
    # on every machine. Evaluated eagerly, NumPyro's set-up alone compiled ~290 single operations here.
    x, y = pz.data.two_branch(n=357, seed=0)     # a data shape no other test compiles for
    handler, logger = _CountCompiles(), logging.getLogger("jax")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with jax.log_compiles(True):
            fit = pz.MDN(n_components=2).fit(x, y)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert np.isfinite(fit.losses).all()
    assert 3 <= handler.count <= 60, handler.count


def test_a_fit_with_another_seed_runs_the_training_programs_of_the_first():
    # The seed's keys are inputs of the training programs, not constants in them: a second seed (a new
    # minibatch order, new draws) compiles no training chunk of its own. SVI's runner (every model but the
    # RBM) and the RBM's CD; data shapes no other test compiles.
    x, y = pz.data.two_branch(n=331, seed=0)
    digits = pz.data.digits(seed=0)[0][:333].astype(np.float32)
    fits = {
        "MDN": lambda s: pz.MDN(hidden=(5,)).fit(x, y, num_steps=12, batch_size=33, seed=s),
        # and its diagnostic Gibbs chains: the trained weights are an input of the sampler, not constants in it
        "RBM": lambda s: pz.RBM(n_hidden=5).fit(digits, epochs=1, batch_size=37, seed=s, diagnostic_chains=2,
                                                diagnostic_samples=20),
    }
    for name, fit in fits.items():
        first = [n for n, cached in compilations(fit, 0)[1] if not cached]
        assert any("chunk" in n for n in first), (name, first)   # the first seed compiles its chunk
        again = [n for n, cached in compilations(fit, 1)[1] if not cached]
        assert not [n for n in again if "chunk" in n or "fori_collect" in n], (name, again)
    assert any("fori_collect" in n for n in first), first


def test_run_svi_leaves_the_callers_guide_untouched_and_draws_from_the_fit(data):
    x, y = data
    guide = AutoNormal(_regression)
    run = run_svi(_regression, guide, x, y, learning_rate=0.05, num_steps=1500, seed=0)
    assert guide.prototype_trace is None          # set up only inside the compiled programs
    assert run.wall_time >= run.setup_time + run.compile_time > 0 and run.run_time > 0
    draws = run.sample_posterior(jax.random.PRNGKey(1), 4000)
    assert draws["w"].shape == (4000, 2) and draws["s"].shape == (4000,)
    # the posterior of w is close to least squares; its sd is about 0.5 / sqrt(200) = 0.035
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    np.testing.assert_allclose(draws["w"].mean(0), beta, atol=0.03)
    assert 0.4 < np.median(draws["s"]) < 0.6
    # the draws follow the fitted guide: w ~ N(loc, scale), log s ~ N(loc, scale) (the guide is normal in
    # the unconstrained space); means within 4 standard errors, sds within 4 standard errors of an sd
    n = 4000
    for k, z in (("w", draws["w"]), ("s", np.log(draws["s"]))):
        loc, scale = np.asarray(run.params[f"{k}_auto_loc"]), np.asarray(run.params[f"{k}_auto_scale"])
        assert np.all(np.abs(z.mean(0) - loc) < 4 * scale / np.sqrt(n)), k
        assert np.all(np.abs(z.std(0) - scale) < 4 * scale / np.sqrt(2 * n)), k

def test_draws_and_importance_ratios_compile_at_level_one_and_give_the_default_levels_values(data, monkeypatch):
    """A guide's draws and its importance ratios are compiled with ``DRAWS_OPTIONS`` (XLA backend optimisation
    level 1, for compile time): the same values as the default level's program, to float32 rounding (LLVM's
    further passes may contract a multiply-add or reorder a sum)."""
    from probzoo.infer import programs
    from probzoo.infer.diagnostics import guide_log_ratios

    x, y = data
    run = run_svi(_regression, AutoNormal(_regression), x, y, learning_rate=0.05, num_steps=300, seed=0)
    compiled_with = []
    original = programs._call
    monkeypatch.setattr(programs, "_call", lambda fn, a, k, options: (compiled_with.append(options),
                                                                       original(fn, a, k, options))[1])
    draws = run.sample_posterior(jax.random.PRNGKey(1), 500)
    ratios = guide_log_ratios(_regression, run.guide, run.params, (x, y), num_draws=500, seed=2)
    assert compiled_with == [programs.DRAWS_OPTIONS] * 2
    monkeypatch.setattr(programs, "DRAWS_OPTIONS", None)  # the same programs at XLA's default level
    default_draws = run.sample_posterior(jax.random.PRNGKey(1), 500)
    default_ratios = guide_log_ratios(_regression, run.guide, run.params, (x, y), num_draws=500, seed=2)
    assert compiled_with[2:] == [None, None]
    for k in ("w", "s"):
        np.testing.assert_allclose(draws[k], default_draws[k], rtol=1e-5, atol=1e-6)
    # log p(theta, y) - log q(theta), about -155, sums 200 terms: 1e-3 is some 70 float32 ulps of it (equal here)
    np.testing.assert_allclose(ratios, default_ratios, rtol=0, atol=1e-3)
    assert np.ptp(ratios) > 0.1  # the draws differ: ratios that vary, not one value repeated


def test_fresh_guide_copies_the_set_up_state():
    guide = AutoNormal(_regression)
    copy = fresh_guide(guide)
    assert copy is not guide and copy._prototype_frame_full_sizes is not guide._prototype_frame_full_sizes
    x = np.ones((3, 2), np.float32)
    with numpyro.handlers.seed(rng_seed=0):
        copy(x)
    assert copy.prototype_trace is not None and guide.prototype_trace is None
    assert fresh_guide(_regression) is _regression   # a plain function holds no set-up


def test_call_compiled_traces_arrays_and_keeps_other_arguments_constant():
    def f(a, n, *, scale):
        assert isinstance(n, int)                     # a Python int stays a constant of the program
        return {"out": a * n * scale}

    out = call_compiled(f, np.arange(3.0, dtype=np.float32), 2, scale=np.float32(0.5))
    np.testing.assert_array_equal(np.asarray(out["out"]), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("num_particles", [1, 4])
def test_the_ordered_elbo_is_numpyros_elbo(data, num_particles):
    x, y = data
    guide = AutoNormal(_regression)
    params = run_svi(_regression, guide, x, y, learning_rate=0.05, num_steps=50, seed=0).params
    key = jax.random.PRNGKey(3)
    ours = OrderedTraceELBO(num_particles=num_particles).loss(key, params, _regression, fresh_guide(guide), x, y)
    ref = Trace_ELBO(num_particles=num_particles).loss(key, params, _regression, fresh_guide(guide), x, y)
    # the same terms with the same draws, added in another order: equal to float32 rounding of the sum
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-6)
    assert float(ours) != float(OrderedTraceELBO(num_particles=num_particles).loss(
        jax.random.PRNGKey(4), params, _regression, fresh_guide(guide), x, y))   # a draw of its own per key


def _with_local_latents(x, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        u = numpyro.sample("u", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(x @ w + u, 0.5), obs=y)


@pytest.mark.parametrize("model", [_regression, _with_local_latents])
def test_a_point_mass_guide_adds_its_log_density_without_evaluating_it(data, model, monkeypatch):
    """AutoDelta's sites (alone, inside Independent, inside a plate) contribute log q = 0 at their own point:
    the ELBO is NumPyro's, and Delta.log_prob (a comparison over every value) is never formed."""
    x, y = data
    guide = AutoDelta(model)
    params = run_svi(model, guide, x, y, learning_rate=0.05, num_steps=20, seed=0).params
    key = jax.random.PRNGKey(3)
    ref = Trace_ELBO().loss(key, params, model, fresh_guide(guide), x, y)

    def refuse(*args, **kwargs):
        raise AssertionError("Delta.log_prob was evaluated")

    monkeypatch.setattr(dist.Delta, "log_prob", refuse)
    ours = OrderedTraceELBO().loss(key, params, model, fresh_guide(guide), x, y)
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-6)
    with pytest.raises(AssertionError, match="Delta.log_prob"):   # an ordinary ELBO still evaluates it
        Trace_ELBO().loss(key, params, model, fresh_guide(guide), x, y)


def test_mcmc_chains_start_in_one_program_where_numpyro_starts_them(data):
    """``compiled_init``: NumPyro's HMC/NUTS ``init`` (vectorised over three chains) as one program, with the state
    NumPyro's own op-by-op ``init`` gives (the same keys, the same search for valid values). The arithmetic is
    the same but fused, so float32 results agree to rounding (one potential evaluation: ~1e-6 relative)."""
    from numpyro.infer import NUTS

    from probzoo.infer.programs import compiled_init

    x, y = data[0][:213], data[1][:213]   # a data shape no other test compiles for
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    eager_kernel, kernel = NUTS(_regression), NUTS(_regression)
    eager, eager_compiled = compilations(eager_kernel.init, keys, 50, None, (x, y), {})
    fast = compiled_init(kernel)
    state, compiled = compilations(fast.init, keys, 50, None, (x, y), {})
    assert len(eager_compiled) >= 20 and len(compiled) == 1, (len(eager_compiled), compiled)
    for name in ("w", "s"):
        np.testing.assert_allclose(state.z[name], eager.z[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state.z_grad[name], eager.z_grad[name], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state.potential_energy, eager.potential_energy, rtol=1e-5)
    np.testing.assert_allclose(state.adapt_state.step_size, eager.adapt_state.step_size, rtol=1e-4)
    assert kernel._sample_fn is None          # the caller's kernel is not set up; the copy is
    assert fast._sample_fn is not None and fast.model is _regression
    assert isinstance(fast, NUTS) and type(fast).__name__ == "NUTS"
    # a copy of the copy (NumPyro's composite kernels copy the kernels they hold) starts its chains alike
    again, again_compiled = compilations(copy.copy(compiled_init(kernel)).init, keys, 50, None, (x, y), {})
    assert len(again_compiled) <= 1
    np.testing.assert_array_equal(again.z["w"], state.z["w"])
    # inside a traced program (chains mapped over devices) it is NumPyro's init, traced with the rest
    traced = jax.jit(lambda k: compiled_init(kernel).init(k, 50, None, (x, y), {}).potential_energy)(keys)
    np.testing.assert_allclose(traced, eager.potential_energy, rtol=1e-5)
    # starting values with a non-finite potential are refused, as NumPyro refuses them outside a trace
    bad = {"w": jnp.full((3, 2), jnp.nan), "s": jnp.zeros(3)}
    with pytest.raises(RuntimeError, match="Cannot find valid initial parameters"):
        compiled_init(NUTS(_regression)).init(keys, 50, bad, (x, y), {})
    with pytest.raises(TypeError, match="kernel: expected numpyro's HMC or NUTS"):
        compiled_init(numpyro.infer.SA(_regression))


def test_mcmc_inference_data_is_what_arviz_builds_computed_as_programs(data):
    """``mcmc_inference_data`` builds the groups ``az.from_numpyro`` builds (its observed data, pointwise
    log-likelihood, sample statistics and plate-named dimensions), from compiled programs instead of ArviZ's
    op-by-op evaluation of the model: the same draws and statistics exactly, log-likelihoods to rounding."""
    from numpyro.infer import NUTS

    from probzoo.infer import run_mcmc

    x, y = data
    run = run_mcmc(NUTS(_regression), x, y, num_warmup=20, num_samples=20, num_chains=2, seed=1,
                   extra_fields=("potential_energy", "accept_prob"))
    ours, ours_compiled = compilations(pz.infer.mcmc_inference_data, run.mcmc)
    theirs, theirs_compiled = compilations(pz.infer.arviz_io.az.from_numpyro, run.mcmc)
    assert len(ours_compiled) <= 3 and len(theirs_compiled) >= 10, (ours_compiled, len(theirs_compiled))
    assert set(ours.groups()) == set(theirs.groups()) == {"posterior", "log_likelihood", "sample_stats",
                                                           "observed_data"}
    for group in ours.groups():
        a, b = getattr(ours, group), getattr(theirs, group)
        assert set(a.data_vars) == set(b.data_vars), group
        for name in a.data_vars:
            assert a[name].dims == b[name].dims, (group, name)
            if group == "log_likelihood":
                np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-5, atol=1e-5)
            else:
                np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{group} {name}")
    assert ours.log_likelihood["y"].dims == ("chain", "draw", "data")
    assert {"lp", "acceptance_rate", "diverging", "n_steps", "tree_depth"} <= set(ours.sample_stats.data_vars)
