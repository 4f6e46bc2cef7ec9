"""The restricted Boltzmann machine: block-Gibbs kernel, exact and AIS partition functions, CD/PCD
training on MNIST, checkpoint/resume, the generic-sampler comparison and bad input."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import numpyro
import pytest
from numpyro.infer.mcmc import MCMCKernel
from scipy.special import logsumexp
from scipy.stats import chisquare

import probzoo as pz
from probzoo.glossary import undocumented
from probzoo.infer import arviz_io
from probzoo.models import rbm as R


def random_params(m: int, n: int, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": (scale * rng.normal(size=(m, n))).astype(np.float32),
            "b": rng.normal(size=m).astype(np.float32), "c": rng.normal(size=n).astype(np.float32)}


def all_states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)), dtype=np.float64)


def brute_force(params: dict[str, np.ndarray]) -> tuple[float, np.ndarray, np.ndarray]:
    """log Z, the visible states and log p(v) by summing exp(-E) over every (v, h) in float64."""
    W, b, c = (np.asarray(params[k], np.float64) for k in ("W", "b", "c"))
    V, H = all_states(W.shape[0]), all_states(W.shape[1])
    neg_e = V @ W @ H.T + (V @ b)[:, None] + (H @ c)[None, :]  # -E(v, h)
    log_z = float(logsumexp(neg_e))
    return log_z, V, logsumexp(neg_e, axis=1) - log_z


@pytest.fixture(scope="module")
def mnist():
    X, _ = pz.data.mnist()
    return X


@pytest.fixture(scope="module")
def rbm16(mnist):
    """A 784-16 RBM trained with CD-1 on binarised MNIST (4,500 images; 500 held out)."""
    Xb = (mnist > 0.5).astype(np.float32)
    fit = pz.RBM(n_hidden=16).fit(Xb[:4500], method="cd", epochs=10, diagnostic_chains=0)
    return fit, Xb[4500:]


# --- the energy, free energy and conditionals -------------------------------------------------------------
def test_free_energy_and_conditionals_match_brute_force():
    p = random_params(5, 3, seed=1)
    fit = pz.RBM(n_hidden=3).from_params(p)
    W, b, c = (np.asarray(p[k], np.float64) for k in ("W", "b", "c"))
    V, H = all_states(5), all_states(3)
    neg_e = V @ W @ H.T + (V @ b)[:, None] + (H @ c)[None, :]
    # F(v) = -log sum_h exp(-E(v, h))
    np.testing.assert_allclose(fit.free_energy(V), -logsumexp(neg_e, axis=1), rtol=1e-5, atol=1e-5)
    # E(v, h) for paired rows
    np.testing.assert_allclose(fit.energy(V[:8], H), -neg_e[np.arange(8), np.arange(8)], rtol=1e-5, atol=1e-5)
    # p(h_j = 1 | v) from the joint
    p_h = np.exp(neg_e - logsumexp(neg_e, axis=1, keepdims=True))  # p(h | v), (v, h)
    np.testing.assert_allclose(fit.hidden_probs(V), p_h @ H, rtol=1e-5, atol=1e-6)
    p_v = np.exp(neg_e - logsumexp(neg_e, axis=0, keepdims=True))  # p(v | h), (v, h)
    np.testing.assert_allclose(fit.visible_probs(H), p_v.T @ V, rtol=1e-5, atol=1e-6)


# --- the kernel ----------------------------------------------------------------------------------------
@pytest.mark.reproducibility
def test_rbm_gibbs_runs_under_numpyro_mcmc_with_vectorized_chains():
    p = random_params(6, 4, seed=2)
    kernel = pz.infer.RBMGibbs(p)
    assert isinstance(kernel, MCMCKernel) and kernel.model is None and kernel.sample_field == "z"
    runs = {}
    for method in ("vectorized", "sequential"):
        mcmc = numpyro.infer.MCMC(pz.infer.RBMGibbs(p), num_warmup=5, num_samples=50, num_chains=3,
                                  chain_method=method, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(0))
        runs[method] = mcmc.get_samples(group_by_chain=True)
    s = runs["vectorized"]
    assert s["v"].shape == (3, 50, 6) and s["free_energy"].shape == (3, 50)
    assert set(np.unique(np.asarray(s["v"]))) <= {0.0, 1.0}
    fit = pz.RBM(n_hidden=4).from_params(p)
    np.testing.assert_allclose(s["free_energy"], fit.free_energy(np.asarray(s["v"]).reshape(-1, 6)).reshape(3, 50),
                               rtol=1e-5, atol=1e-5)
    assert not np.array_equal(s["v"][0], s["v"][1])  # chains are independent
    # mapping itself over the batch of keys gives exactly the chains of running them one by one
    np.testing.assert_array_equal(runs["vectorized"]["v"], runs["sequential"]["v"])
    idata = arviz_io.from_mcmc(mcmc)
    assert np.isfinite(float(arviz_io.rhat(idata)["free_energy"]))


def test_parameters_given_to_mcmc_run_replace_the_kernels_own():
    # every pixel's bias is -20 in the kernel's own parameters and +20 in those handed to MCMC.run: the draws
    # follow the latter (a pixel comes out wrong with probability sigmoid(-20) = 2e-9); with jit_model_args one
    # compiled sampler serves both sets
    off = {"W": np.zeros((6, 3), np.float32), "b": np.full(6, -20.0, np.float32), "c": np.zeros(3, np.float32)}
    on = {**off, "b": np.full(6, 20.0, np.float32)}
    mcmc = numpyro.infer.MCMC(pz.infer.RBMGibbs(off), num_warmup=2, num_samples=20, num_chains=2,
                              chain_method="vectorized", jit_model_args=True, progress_bar=False)
    for params, value in ((on, 1.0), (off, 0.0)):
        mcmc.run(jax.random.PRNGKey(0), {k: jax.numpy.asarray(v) for k, v in params.items()})
        assert np.all(np.asarray(mcmc.get_samples()["v"]) == value), value


def test_tiny_rbm_visible_frequencies_match_exact_probabilities():
    p = random_params(4, 3, seed=0)
    _, V, logp = brute_force(p)
    fit = pz.RBM(n_hidden=3).from_params(p)
    draws = fit.sample(num_chains=100, num_samples=1_000, thinning=5, num_warmup=20, seed=0)
    assert draws.is_mcmc and draws.idata is not None
    v = draws.samples["v"].reshape(-1, 4)
    codes = v @ (2.0 ** np.arange(3, -1, -1))  # itertools.product order: first unit is the high bit
    counts = np.bincount(codes.astype(int), minlength=16)
    probs = np.exp(logp) / np.exp(logp).sum()
    assert chisquare(counts, probs * counts.sum()).pvalue > 0.01
    # the test has power: the same counts reject an RBM whose visible biases are off by 0.3
    wrong = dict(p, b=p["b"] + 0.3)
    _, _, logp_wrong = brute_force(wrong)
    probs_wrong = np.exp(logp_wrong) / np.exp(logp_wrong).sum()
    assert chisquare(counts, probs_wrong * counts.sum()).pvalue < 1e-6


def _equations(jaxpr):
    """Every equation of ``jaxpr``, those of the programs it calls (a jitted function's) included."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            if isinstance(param, jax.extend.core.ClosedJaxpr):
                yield from _equations(param.jaxpr)


def test_bernoulli_draws_two_per_hash_with_the_right_frequencies_and_no_pairing():
    """The samplers' Bernoulli draws (probzoo.models.rbm.draws) take both words of each threefry hash, computed
    in one pass: the first half of a row from the first word, the second half from the second. Over n rows of
    2m units with probabilities spread over (0, 1): every unit's frequency within 5 standard errors of its p,
    and the two units that share a hash (j and j + m) uncorrelated within 5 standard errors of a correlation
    (1 / sqrt(n)).
    """
    from probzoo.models.rbm.draws import bernoulli

    n, m = 20_000, 50
    p = np.linspace(0.02, 0.98, 2 * m, dtype=np.float32)
    draws = np.asarray(bernoulli(jax.random.PRNGKey(0), np.broadcast_to(p, (n, 2 * m))))
    assert draws.dtype == np.float32 and set(np.unique(draws)) == {0.0, 1.0}
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(draws.mean(axis=0) - p) < 5 * se), np.max(np.abs(draws.mean(axis=0) - p) / se)
    pairs = np.array([np.corrcoef(draws[:, j], draws[:, j + m])[0, 1] for j in range(m)])
    assert np.all(np.abs(pairs) < 5 / np.sqrt(n)), np.max(np.abs(pairs)) * np.sqrt(n)
    # another key draws another sample; the same key the same one
    again = np.asarray(bernoulli(jax.random.PRNGKey(0), np.broadcast_to(p, (n, 2 * m))))
    other = np.asarray(bernoulli(jax.random.PRNGKey(1), np.broadcast_to(p, (n, 2 * m))))
    assert np.array_equal(draws, again) and not np.array_equal(draws, other)
    # one hash for every two draws (an odd row length rounds up), where jax.random.bernoulli spends one a draw:
    # the 20 rounds (a rotation each) run straight, over arrays of half a row
    for shape, hashes in (((64, 784), (64, 392)), ((3, 5), (3, 3))):
        jaxpr = jax.make_jaxpr(bernoulli)(jax.random.PRNGKey(0), np.full(shape, 0.5, np.float32))
        rotations = [e.outvars[0].aval.shape for e in _equations(jaxpr.jaxpr) if e.primitive.name == "shift_left"]
        assert rotations == [hashes] * 20, rotations
    # the hash is threefry-2x32-20 word for word: Random123's known answers, and JAX's own primitive
    from jax.extend.random import threefry2x32_p

    from probzoo.models.rbm.draws import threefry2x32

    for key, count, expected in (((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
                                 ((2**32 - 1,) * 2, (2**32 - 1,) * 2, (0x1CB996FC, 0xBB002BE7)),
                                 ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))):
        words = threefry2x32(tuple(np.uint32(key)), tuple(np.uint32(count)))
        assert tuple(int(w) for w in words) == expected
    k1, k2, x1, x2 = np.random.default_rng(0).integers(0, 2**32, (4, 1000), dtype=np.uint32)
    ours = jax.jit(threefry2x32)((k1, k2), (x1, x2))
    for a, b in zip(ours, threefry2x32_p.bind(k1, k2, x1, x2), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # keys of another generator fall back to JAX's own draws; more draws than 32-bit counters are refused
    rbg = np.asarray(bernoulli(jax.random.key(0, impl="rbg"), np.full((4000,), 0.25, np.float32)))
    assert abs(rbg.mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 4000)
    with pytest.raises(ValueError, match="^p: "):
        jax.eval_shape(bernoulli, jax.random.PRNGKey(0), jax.ShapeDtypeStruct((2**16, 2**17 + 2), np.float32))


# --- partition function ----------------------------------------------------------------------------------
def test_exact_log_partition_equals_brute_force():
    for m, n in ((6, 4), (4, 6)):  # enumerates the hidden, then the visible layer
        p = random_params(m, n, seed=3)
        log_z, V, logp = brute_force(p)
        assert R.log_partition_exact(p) == pytest.approx(log_z, abs=1e-4)
        assert R.log_partition_exact(p, chunk_bits=2) == pytest.approx(log_z, abs=1e-4)  # several chunks
    p = random_params(6, 4, seed=3)
    log_z, V, logp = brute_force(p)
    fit = pz.RBM(n_hidden=4).from_params(p)
    ll = fit.log_likelihood(V, method="exact")
    np.testing.assert_allclose(ll, logp, atol=1e-4)
    assert np.exp(ll).sum() == pytest.approx(1.0, abs=1e-4)
    assert fit.log_partition("exact") == (pytest.approx(log_z, abs=1e-4), 0.0)


def test_ais_matches_exact_log_partition_of_trained_784_16(rbm16):
    fit, _ = rbm16
    exact = fit.log_partition("exact")
    ais = fit.log_partition("ais", num_runs=100, num_betas=3_000, seed=0)
    assert ais.se > 0
    assert abs(ais.estimate - exact.estimate) < 1.0
    assert abs(ais.estimate - exact.estimate) < 3 * ais.se


@pytest.fixture(scope="module")
def rbm_digits20():
    """A 64-20 RBM trained with PCD on scikit-learn's binarised 8x8 digits (1,500 images; 297 held out)."""
    D, _ = pz.data.digits(seed=0, binarize=True)
    fit = pz.RBM(n_hidden=20).fit(D[:-297], method="pcd", epochs=20, batch_size=32, learning_rate=0.05,
                                  diagnostic_chains=0)
    return fit, D[-297:]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("which, tolerance, num_betas", [("rbm16", 1.0, 1_000), ("rbm_digits20", 0.2, 300)])
def test_raise_and_ais_bracket_the_exact_log_likelihood(request, which, tolerance, num_betas, seed):
    """Two trained RBMs small enough to enumerate. On a short path AIS over-estimates the mean held-out
    log-likelihood (its log Z is biased low) and RAISE under-estimates it: the exact value lies between them
    within 3 standard errors of each. Both stay near the truth (``tolerance``), so an estimator that is merely
    low or high fails. RAISE's gap is a bias of the path, shrinking roughly as 1 / num_betas, and it depends on
    the trained model, which differs between processors (training draws Bernoulli variates from float32
    probabilities): over 784-16 RBMs trained with CD-1 from 4 seeds, 3 scoring seeds each, 300 temperatures leave
    RAISE 0.05 to 0.92 nats below (se 0.11-0.15) and AIS 0.52 below to 1.05 above, too close to 1 nat to hold
    on every processor; 1,000 temperatures leave RAISE 0.17-0.41 below (se 0.06-0.08) and AIS 0.01 below to
    0.36 above (se 0.11-0.28), hence 1,000 there. On the 64-20 RBM 300 temperatures leave RAISE 0.03-0.07
    below (se 0.02) and AIS -0.08 to 0.07 off (se 0.04)."""
    fit, held = request.getfixturevalue(which)
    exact = float(np.mean(fit.log_likelihood(held, method="exact")))
    scores = fit.evaluate(held, method="ais", num_runs=100, num_betas=num_betas, seed=seed)
    ais, ais_se = scores["log_likelihood"], scores["log_likelihood_se"]
    low, low_se = scores["log_likelihood_raise"], scores["log_likelihood_raise_se"]
    assert ais_se > 0 and low_se > 0
    assert ais >= exact - 3 * ais_se
    assert low <= exact + 3 * low_se
    assert abs(low - exact) < tolerance and abs(ais - exact) < tolerance + 3 * ais_se
    # the per-row estimates are fit.log_likelihood(V, method="raise"), one run per row
    rows = fit.log_likelihood(held, method="raise", num_betas=num_betas, seed=seed)
    assert rows.shape == (len(held),) and float(np.mean(rows)) == pytest.approx(low)


def test_raise_refuses_options_it_does_not_take(rbm16):
    fit, held = rbm16
    with pytest.raises(ValueError, match="^num_runs: not an option of method='raise'"):
        fit.log_likelihood(held[:5], method="raise", num_runs=10)


def test_exact_log_likelihood_of_784_16_beats_the_base_rate_model(rbm16):
    fit, held = rbm16
    ll = fit.log_likelihood(held, method="exact")
    base = fit.base_rate_log_likelihood(held)
    assert ll.shape == (500,) and np.all(np.isfinite(ll))
    assert ll.mean() > base.mean() + 15  # about -173 against -209 nats per image
    scores = fit.evaluate(held, method="exact", labels=np.zeros(500), image_shape=(28, 28))
    assert scores["lpd"] == pytest.approx(ll.mean()) and scores["log_partition_se"] == 0.0
    assert scores["base_rate_log_likelihood"] == pytest.approx(base.mean())


# --- training --------------------------------------------------------------------------------------------
def test_mnist_cd1_article_pseudo_likelihood(mnist):
    """784-64, CD-1, lr 0.1, batch 64, 10 epochs on the 5,000 images: better than -9.5 and improving."""
    exact_pl = []

    def track(epoch, losses, state):
        f = pz.RBM(n_hidden=64).from_params({k: np.asarray(v) for k, v in state.params.items()})
        exact_pl.append(f.pseudo_likelihood(mnist, scale="article", batch_size=64, flips="all"))

    fit = pz.RBM(n_hidden=64).fit(mnist, method="cd", k=1, epochs=10, batch_size=64, learning_rate=0.1,
                                  callback=track, diagnostic_chains=2, diagnostic_samples=50)
    printed = fit.arrays["epoch_pseudo_likelihood"]  # what the article prints, one random bit per row
    assert printed.shape == (10,) and printed[-1] > printed[0] + 3
    assert exact_pl[-1] > -9.5  # the estimator's expectation (all bits flipped in turn)
    assert exact_pl[-1] > exact_pl[4] > exact_pl[0]
    assert fit.pseudo_likelihood(mnist, scale="article", flips="all") == pytest.approx(exact_pl[-1], abs=1e-6)
    assert fit.losses.shape == (10 * 78,)
    assert fit.params["W"].shape == (784, 64) and fit.params["b"].shape == (784,) and fit.params["c"].shape == (64,)
    assert fit.idata.posterior["free_energy"].shape == (2, 50)
    # scikit-learn's scale is n_visible / batch_size times the article's
    assert fit.pseudo_likelihood(mnist, flips="all") == pytest.approx(exact_pl[-1] * 784 / 64, rel=1e-6)


def test_centred_gradient_is_the_exact_gradient_in_centred_coordinates():
    """With exact expectations (every visible state, weighted by the data's and the model's probabilities),
    the centred update direction is -d(mean log-likelihood) / d(W, b_c, c_c), the log-likelihood of the
    model written around the offsets; with no offsets it is the usual gradient in (W, b, c)."""
    import jax.numpy as jnp

    from probzoo.models.rbm.training import Offsets, centred, moments, nll_gradient, uncentred

    p = {k: jnp.asarray(v) for k, v in random_params(5, 3, seed=4, scale=0.7).items()}
    V = jnp.asarray(all_states(5), jnp.float32)
    q = jnp.asarray(np.random.default_rng(0).dirichlet(np.ones(32)), jnp.float32)  # the data's distribution
    offsets = Offsets(jnp.asarray([0.2, 0.5, 0.9, 0.1, 0.6]), jnp.asarray([0.3, 0.5, 0.8]))

    def mean_log_lik(params):
        log_p = -R.RBM.free_energy(params, V)
        return q @ log_p - jax.nn.logsumexp(log_p)

    p_model = jax.nn.softmax(-R.RBM.free_energy(p, V))
    ph = R.RBM.hidden_probs(p, V)
    data, model = moments(V, ph, q), moments(V, ph, p_model)
    for offs in (offsets, None):
        coords = centred(p, offs) if offs is not None else p
        exact = jax.grad(lambda c, o=offs: mean_log_lik(uncentred(c, o) if o is not None else c))(coords)
        ours = nll_gradient(data, model, offs)
        for k in ("W", "b", "c"):
            np.testing.assert_allclose(ours[k], -exact[k], rtol=1e-4, atol=1e-6)
    for k in ("W", "b", "c"):  # the two coordinate systems describe the same parameters
        np.testing.assert_allclose(uncentred(centred(p, offsets), offsets)[k], p[k], rtol=1e-6, atol=1e-6)


def test_centring_on_and_off_train_and_match_brute_force_log_z():
    """A 12-8 RBM trained with and without centring: both fits' exact log Z equals brute-force summation,
    and both learn (the exact log-likelihood of the training data rises well above the start's)."""
    X, _ = pz.data.digits(binarize=True)
    V = X[:, 20:32]  # 12 pixels of every 8x8 digit
    start = pz.RBM(n_hidden=8).from_params(pz.RBM(n_hidden=8).init_params(12, seed=0, base_rate_probs=R.base_rate(V)))
    floor = start.log_likelihood(V, method="exact").mean()
    fits = {c: pz.RBM(n_hidden=8).fit(V, epochs=20, batch_size=32, learning_rate=0.05, centring=c, seed=0,
                                      diagnostic_chains=0) for c in (False, True)}
    for centring, fit in fits.items():
        assert fit.info["centring"] is centring
        log_z, states, logp = brute_force(fit.params)
        assert fit.log_partition(method="exact")[0] == pytest.approx(log_z, abs=1e-4)
        assert fit.log_likelihood(V, method="exact").mean() > floor + 0.3
    assert not np.allclose(fits[True].params["W"], fits[False].params["W"])
    with pytest.raises(TypeError, match="^centring: expected True or False"):
        pz.RBM(n_hidden=8).fit(V, centring="yes")


@pytest.mark.reproducibility
def test_pcd_trains_and_same_seed_same_result(mnist):
    Xb = (mnist[:1000] > 0.5).astype(np.float32)
    kw = dict(method="pcd", epochs=3, batch_size=50, learning_rate=0.05, momentum=0.5, diagnostic_chains=0)
    a = pz.RBM(n_hidden=16).fit(Xb, seed=1, **kw)
    b = pz.RBM(n_hidden=16).fit(Xb, seed=1, **kw)
    c = pz.RBM(n_hidden=16).fit(Xb, seed=2, **kw)
    for k in ("W", "b", "c"):
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["W"], c.params["W"])
    assert a.arrays["chains"].shape == (50, 784)
    untrained = pz.RBM(n_hidden=16).from_params(pz.RBM(n_hidden=16).init_params(784, seed=1))
    assert a.pseudo_likelihood(Xb, flips="all") > untrained.pseudo_likelihood(Xb, flips="all") + 50


@pytest.mark.reproducibility
@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, method, monkeypatch):
    """Bit-exact by construction: the resumed run executes the same compiled epoch program on the restored
    state (parameters, optimiser state, persistent chains, random key), so parameters and the float32 loss
    trace are identical on any processor; the per-epoch pseudo-likelihood is a function of that trace."""
    X, _ = pz.data.digits(binarize=True)
    kw = dict(method=method, epochs=4, batch_size=32, learning_rate=0.05, momentum=0.5, weight_decay=1e-3,
              seed=3, diagnostic_chains=0)
    full = pz.RBM(n_hidden=8).fit(X, **kw)

    class Stop(Exception):
        pass

    def stop_after_two(epoch, losses, state):
        if epoch == 2:
            raise Stop

    ckpt = tmp_path / "rbm.ckpt"
    with pytest.raises(Stop):
        pz.RBM(n_hidden=8).fit(X, checkpoint=ckpt, checkpoint_every=1, callback=stop_after_two, **kw)
    resumed = pz.RBM(n_hidden=8).fit(X, resume=ckpt, **kw)
    for k in ("W", "b", "c"):
        np.testing.assert_array_equal(full.params[k], resumed.params[k])
    np.testing.assert_array_equal(full.losses, resumed.losses)
    np.testing.assert_array_equal(full.arrays["epoch_pseudo_likelihood"], resumed.arrays["epoch_pseudo_likelihood"])
    with pytest.raises(ValueError, match="^resume: .*learning_rate"):
        pz.RBM(n_hidden=8).fit(X, resume=ckpt, **{**kw, "learning_rate": 0.1})
    # a run whose Bernoulli draws come from another stream does not continue this one
    import probzoo.models.rbm.model as rbm_model

    monkeypatch.setattr(rbm_model, "STREAM", "jax.random.bernoulli")
    with pytest.raises(ValueError, match="^resume: .*random_stream"):
        pz.RBM(n_hidden=8).fit(X, resume=ckpt, **kw)


def test_save_load_roundtrip(tmp_path, rbm16):
    fit, held = rbm16
    path = fit.save(tmp_path / "rbm")
    back = pz.load(path)
    assert isinstance(back, R.RBMFit) and back.model.get_config() == fit.model.get_config()
    for k in ("W", "b", "c"):
        np.testing.assert_array_equal(back.params[k], fit.params[k])
    np.testing.assert_allclose(back.log_likelihood(held[:20], "exact"), fit.log_likelihood(held[:20], "exact"))


# --- the two samplers of a trained RBM ------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["gibbs", "discrete-gibbs"])
def test_both_samplers_draw_from_the_exact_distribution(sampler):
    """``fit.sample(method=...)``: RBMGibbs (block) and NumPyro's single-site DiscreteGibbs on a 6-3 RBM with
    strong couplings, whose 64 visible states are enumerated: the mean free energy and every pixel's mean
    agree with the exact p(v) within 4.5 Monte Carlo standard errors (sd / sqrt(ESS); a false alarm has
    odds below 1e-4 per quantity)."""
    p = random_params(6, 3, seed=1, scale=1.5)
    _, V, logp = brute_force(p)
    fit = pz.RBM(n_hidden=3).from_params(p)
    prob = np.exp(logp)
    exact = {"free_energy": float(prob @ fit.free_energy(V)), **{f"v{i}": float(prob @ V[:, i]) for i in range(6)}}
    draws = fit.sample(method=sampler, num_chains=4, num_samples=2_000, num_warmup=100, seed=0)
    assert draws.method == sampler and draws.samples["v"].shape == (4, 2_000, 6)
    assert draws.info["sampler"] == {"gibbs": "RBMGibbs", "discrete-gibbs": "DiscreteGibbs"}[sampler]
    got = {"free_energy": draws.samples["free_energy"], **{f"v{i}": draws.samples["v"][..., i] for i in range(6)}}
    for name, value in got.items():
        value = np.asarray(value, np.float64)
        se = value.std() / np.sqrt(arviz_io.ess(value))
        assert abs(value.mean() - exact[name]) < 4.5 * se, (sampler, name, value.mean(), exact[name], se)
    assert np.isfinite(arviz_io.rhat(draws.samples["free_energy"]))
    with pytest.raises(ValueError, match="^method: unknown value 'gibs'"):
        fit.sample(method="gibs")
    with pytest.raises(ValueError, match="^init: only method 'gibbs' takes initial states"):
        fit.sample(method="discrete-gibbs", init=np.zeros((4, 6)))


def test_rbm_model_and_guide_are_numpyro_callables():
    p = random_params(5, 3, seed=4)
    V = all_states(5)[:7].astype(np.float32)
    draws = numpyro.infer.Predictive(pz.RBM.guide, num_samples=2000)(jax.random.PRNGKey(0), p, V)["h"]
    fit = pz.RBM(n_hidden=3).from_params(p)
    np.testing.assert_allclose(np.asarray(draws).mean(axis=0), fit.hidden_probs(V), atol=0.04)
    # log p(v, h) of the model = -E(v, h) - (m + n) log 2 (its Bernoulli(1/2) sites)
    h = np.ones((7, 3), np.float32)
    lp, _ = numpyro.infer.util.log_density(pz.RBM.model, (p, V), {}, {"h": h})
    assert float(lp) == pytest.approx(float(np.sum(-fit.energy(V, h))) - 7 * 8 * np.log(2), rel=1e-5)


# --- zoo entry ------------------------------------------------------------------------------------------
def test_zoo_entry_report_on_digits(tmp_path):
    from probzoo.zoo import get_entry

    entry = get_entry("rbm")
    assert set(entry.methods) == {"cd", "pcd"} and set(entry.datasets) == {"mnist", "digits"}
    data, extras = entry.datasets["digits"](0)
    assert set(np.unique(data[0])) == {0.0, 1.0}
    fit = pz.RBM(n_hidden=16).fit(*data, method="cd", epochs=2, diagnostic_chains=0)
    metrics, paths = entry.report(fit, data, extras, tmp_path)
    assert all(np.isfinite(v) for v in metrics.values())
    assert not undocumented(metrics)  # every quantity of the tour's table is in the glossary
    assert metrics["log_likelihood"] > metrics["base_rate_log_likelihood"]
    assert len(paths) == 3 and all(p.is_file() and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    # a fit that ran diagnostic chains is judged by those very chains, not by new ones
    fit = pz.RBM(n_hidden=16).fit(*data, method="cd", epochs=2, diagnostic_chains=3, diagnostic_samples=50)
    metrics, _ = entry.report(fit, data, extras, tmp_path)
    assert metrics["free_energy_r_hat"] == fit.info["free_energy_r_hat"]


# --- bad input ------------------------------------------------------------------------------------------
def test_bad_input_errors_name_the_argument(rbm16):
    fit, held = rbm16
    X = held[:10]
    with pytest.raises(ValueError, match="^V: expected 784 columns"):
        fit.free_energy(X[:, :100])
    with pytest.raises(ValueError, match="^V: contains 10 NaN"):
        fit.pseudo_likelihood(np.where(np.arange(784) == 3, np.nan, X))
    with pytest.raises(ValueError, match=r"^V: values must lie in \[0, 1\]"):
        fit.log_likelihood(X * 2.0)
    with pytest.raises(ValueError, match="^V: must be binary"):
        fit.log_likelihood(X * 0.5, method="exact")
    with pytest.raises(ValueError, match="^V: must be binary"):
        fit.evaluate(X * 0.5)
    with pytest.raises(ValueError, match="^V: expected 2 dimensions"):
        pz.RBM().fit(X[0])
    with pytest.raises(ValueError, match=r"^V: values must lie in \[0, 1\]"):
        pz.RBM().fit(X - 0.5)
    with pytest.raises(TypeError, match="^V: expected real numbers"):
        pz.RBM().fit(X.astype(str))
    with pytest.raises(ValueError, match="^method: unknown value 'gibs'; expected one of cd, pcd"):
        pz.RBM().fit(X, method="gibs")
    # a sampler of a trained RBM, not a way to train one: the error says where it runs
    with pytest.raises(ValueError, match=r"^method: gibbs: .* run it as fit.sample\(method='gibbs'\)"):
        pz.RBM().fit(X, method="gibbs")
    with pytest.raises(ValueError, match="^n_hidden: must be >= 1"):
        pz.RBM(n_hidden=0)
    with pytest.raises(TypeError, match="^n_hidden: expected an integer"):
        pz.RBM(n_hidden=2.5)
    with pytest.raises(ValueError, match="^batch_size: must be <= 10"):
        pz.RBM().fit(X, batch_size=64)
    with pytest.raises(ValueError, match=r"^momentum: must lie in \[0, 1\)"):
        pz.RBM().fit(held, momentum=1.0)
    with pytest.raises(ValueError, match="^learning_rate: must be finite and > 0"):
        pz.RBM().fit(held, learning_rate=-0.1)
    with pytest.raises(TypeError, match="^epochs: expected an integer"):
        pz.RBM().fit(held, epochs=None)
    with pytest.raises(ValueError, match="^scale: unknown value"):
        fit.pseudo_likelihood(X, scale="batch")
    with pytest.raises(ValueError, match="^method: unknown value"):
        fit.log_partition("sampling")
    with pytest.raises(ValueError, match="^params: exact log Z enumerates 2\\^64"):
        R.log_partition_exact(random_params(100, 64))
    with pytest.raises(ValueError, match="^params: b must have shape"):
        pz.infer.RBMGibbs({"W": np.zeros((4, 3)), "b": np.zeros(3), "c": np.zeros(3)})
    with pytest.raises(ValueError, match="^params: missing key"):
        pz.infer.RBMGibbs({"W": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="^params: W contains NaN"):
        pz.infer.RBMGibbs({"W": np.full((4, 3), np.nan), "b": np.zeros(4), "c": np.zeros(3)})
    with pytest.raises(ValueError, match="^init: expected 2 rows"):
        fit.sample(num_chains=2, init=X[:3])
