"""RelaxedOneHotCategorical / ExpRelaxedOneHotCategorical: density, normalisation, limits, gradients, shapes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from probzoo.distributions import ExpRelaxedOneHotCategorical, RelaxedOneHotCategorical, log_simplex


def concrete_logpdf(y: np.ndarray, probs: np.ndarray, tau: float) -> np.ndarray:
    """Maddison et al. (2017), eq. (5), in float64 and written out term by term:
    p(y) = (K-1)! tau^(K-1) prod_k [probs_k y_k^(-tau-1)] / (sum_i probs_i y_i^(-tau))^K."""
    y = np.asarray(y, np.float64)
    probs = np.asarray(probs, np.float64)
    K = y.shape[-1]
    numer = np.prod(probs * y ** (-tau - 1.0), axis=-1)
    denom = np.sum(probs * y ** (-tau), axis=-1) ** K
    return np.log(math.factorial(K - 1) * tau ** (K - 1) * numer / denom)


@pytest.mark.parametrize("K,tau", [(2, 0.5), (3, 0.7), (5, 1.3), (10, 0.5)])
def test_log_prob_matches_closed_form(K: int, tau: float) -> None:
    rng = np.random.default_rng(K)
    probs = rng.dirichlet(np.ones(K))
    y = rng.dirichlet(np.ones(K) * 2.0, size=50)
    d = RelaxedOneHotCategorical(tau, probs=jnp.asarray(probs, jnp.float32))
    got = np.asarray(d.log_prob(jnp.asarray(y, jnp.float32)), np.float64)
    want = concrete_logpdf(y, probs, tau)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-3)
    # logits that are not normalised give the same distribution
    d2 = RelaxedOneHotCategorical(tau, logits=jnp.log(jnp.asarray(probs, jnp.float32)) + 3.0)
    np.testing.assert_allclose(np.asarray(d2.log_prob(jnp.asarray(y, jnp.float32))), got, rtol=1e-5, atol=1e-4)


def test_exp_relaxed_is_the_log_of_the_concrete() -> None:
    """log p_Y(y) = log p_X(log y) - sum_k log y_k (the Jacobian of exp), and scoring a sample with its
    log-space intermediates gives the same value as scoring it from the simplex."""
    logits = jnp.array([[0.3, -1.0, 2.0, 0.0], [1.0, 1.0, -2.0, 0.5]])
    tau = jnp.array([0.6, 1.5])
    base = ExpRelaxedOneHotCategorical(tau, logits=logits)
    d = RelaxedOneHotCategorical(tau, logits=logits)
    x = base.sample(jax.random.PRNGKey(0), (7,))
    y = jnp.exp(x)
    np.testing.assert_allclose(d.log_prob(y), base.log_prob(x) - x.sum(-1), rtol=1e-4, atol=1e-4)
    ys, inter = d.sample_with_intermediates(jax.random.PRNGKey(1), (7,))
    np.testing.assert_allclose(d.log_prob(ys, inter), d.log_prob(ys), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.5])
def test_density_integrates_to_one_on_the_1_simplex(tau: float) -> None:
    d = RelaxedOneHotCategorical(tau, probs=jnp.array([0.3, 0.7]))
    logp = jax.jit(d.log_prob)

    def pdf(u: float) -> float:
        return float(jnp.exp(logp(jnp.array([u, 1.0 - u], jnp.float32))))

    total, err = integrate.quad(pdf, 0.0, 1.0, points=[0.5], limit=200, epsabs=1e-6)
    assert abs(total - 1.0) < 5e-3, (total, err)


def _triangle_integral(log_pdf, n: int = 200) -> float:
    """Integral over the triangle y1, y2 >= 0, y1 + y2 <= 1 (y3 = 1 - y1 - y2) by tensor-product
    Gauss-Legendre quadrature on the square (a, b): y1 = a, y2 = (1 - a) b, Jacobian 1 - a."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    u, w = (nodes + 1) / 2, weights / 2
    a, b = np.meshgrid(u, u, indexing="ij")
    y1, y2 = a, (1 - a) * b
    y = np.stack([y1, y2, (1 - a) * (1 - b)], axis=-1).reshape(-1, 3)
    dens = np.exp(np.asarray(log_pdf(jnp.asarray(y, jnp.float32)), np.float64)).reshape(n, n)
    return float(np.einsum("i,j,ij,ij->", w, w, dens, 1 - a))


@pytest.mark.parametrize("tau", [0.7, 1.5])
def test_density_integrates_to_one_on_the_2_simplex(tau: float) -> None:
    d = RelaxedOneHotCategorical(tau, probs=jnp.array([0.2, 0.5, 0.3]))
    assert abs(_triangle_integral(d.log_prob) - 1.0) < 2e-3
    # the log-space density without the Jacobian of exp is not a density on the simplex: the test can tell
    assert abs(_triangle_integral(lambda y: d.base_dist.log_prob(jnp.log(y))) - 1.0) > 0.05


def test_low_temperature_gives_one_hot_draws_with_vertex_frequencies_probs() -> None:
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    n = 40_000
    d = RelaxedOneHotCategorical(1e-3, probs=jnp.asarray(probs, jnp.float32))
    y = np.asarray(d.sample(jax.random.PRNGKey(3), (n,)))
    assert y.shape == (n, 4)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    assert np.mean(y.max(-1) > 0.99) > 0.99
    freq = np.bincount(y.argmax(-1), minlength=4) / n
    se = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) < 4 * se), (freq, probs)
    # at a high temperature draws are far from the vertices
    y_hot = np.asarray(RelaxedOneHotCategorical(5.0, probs=jnp.asarray(probs)).sample(jax.random.PRNGKey(4), (2000,)))
    assert np.mean(y_hot.max(-1)) < 0.5


def test_gradients_flow_through_samples() -> None:
    key = jax.random.PRNGKey(5)
    w = jnp.array([1.0, -2.0, 0.5, 3.0])

    def f(logits: jnp.ndarray, tau: jnp.ndarray) -> jnp.ndarray:
        y = RelaxedOneHotCategorical(tau, logits=logits).rsample(key, (256,))
        return jnp.mean(y @ w)

    logits = jnp.array([0.2, -0.4, 1.0, 0.0])
    tau = jnp.asarray(0.5)
    g_logits, g_tau = jax.grad(f, argnums=(0, 1))(logits, tau)
    assert np.all(np.isfinite(g_logits)) and np.abs(np.asarray(g_logits)).max() > 1e-2
    # the pathwise gradient is the derivative of the (fixed-noise) sample: compare with finite differences
    h = 1e-2
    for k in range(4):
        e = jnp.zeros(4).at[k].set(h)
        fd = (f(logits + e, tau) - f(logits - e, tau)) / (2 * h)
        assert abs(float(fd) - float(g_logits[k])) < 2e-2 * (1 + abs(float(fd)))
    fd_tau = (f(logits, tau + h) - f(logits, tau - h)) / (2 * h)
    assert abs(float(fd_tau) - float(g_tau)) < 2e-2 * (1 + abs(float(fd_tau)))
    # raising the weight of the best coordinate's logit raises E[y @ w]
    assert float(g_logits[3]) > 0 and float(g_logits[1]) < 0


def test_batch_shapes_broadcast_temperature_and_logits() -> None:
    tau = np.array([[0.5], [1.0], [2.0]], np.float32)  # (3, 1)
    logits = np.zeros((4, 6), np.float32)  # (4,) batch of K = 6
    shapes = {}

    def traced():  # shapes are static: traced abstractly, nothing compiled
        d = RelaxedOneHotCategorical(tau, logits=logits)
        y = d.sample(jax.random.PRNGKey(0), (5,))
        base = ExpRelaxedOneHotCategorical(tau, logits=logits)
        shapes.update(batch=d.batch_shape, event=d.event_shape, y=y.shape, log_prob=d.log_prob(y).shape,
                      expanded=d.expand((2, 3, 4)).batch_shape, base=base.sample(jax.random.PRNGKey(0), (5,)).shape)
        return y

    jax.make_jaxpr(traced)()
    assert shapes == {"batch": (3, 4), "event": (6,), "y": (5, 3, 4, 6), "log_prob": (5, 3, 4),
                      "expanded": (2, 3, 4), "base": (5, 3, 4, 6)}
    base = ExpRelaxedOneHotCategorical(tau, logits=logits)
    assert bool(jax.jit(lambda k: jnp.all(log_simplex(base.sample(k))))(jax.random.PRNGKey(1)))
    # vmap over the temperature
    lp = jax.jit(jax.vmap(lambda t: RelaxedOneHotCategorical(t, logits=jnp.zeros(3)).log_prob(
        jnp.array([0.2, 0.3, 0.5]))))(jnp.array([0.5, 1.0]))
    np.testing.assert_allclose(lp, [concrete_logpdf(np.array([0.2, 0.3, 0.5]), np.ones(3) / 3, t) for t in (0.5, 1.0)],
                               rtol=1e-4)


def test_validate_args() -> None:
    with pytest.raises(ValueError, match="^temperature"):
        RelaxedOneHotCategorical(0.0, logits=jnp.zeros(3), validate_args=True)
    with pytest.raises(ValueError, match="^temperature"):
        ExpRelaxedOneHotCategorical(jnp.array([1.0, -0.5]), logits=jnp.zeros(3), validate_args=True)
    with pytest.raises(ValueError, match="^probs"):
        RelaxedOneHotCategorical(1.0, probs=jnp.array([0.5, 0.6]), validate_args=True)
    with pytest.raises(ValueError, match="probs, logits"):
        RelaxedOneHotCategorical(1.0)
    with pytest.raises(ValueError, match="logits"):
        RelaxedOneHotCategorical(1.0, logits=jnp.asarray(0.3))
    d = RelaxedOneHotCategorical(0.5, logits=jnp.zeros(3), validate_args=True)
    with pytest.warns(UserWarning, match="support"):
        lp = d.log_prob(jnp.array([0.5, 0.6, 0.1]))  # off the simplex
    assert lp == -jnp.inf
    assert d.support(jnp.array([0.2, 0.3, 0.5])) and not d.support(jnp.array([0.5, 0.6, 0.1]))
