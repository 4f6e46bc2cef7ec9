"""Every engine of the registry on every zoo model: a fit where the engine can run the model, the engine's
one-line reason where it cannot.

A fit at a tiny budget must give a finite held-out log predictive density and an InferenceData with the
posterior, the pointwise log-likelihood and the observed data, in the zoo model's own Fit class (so its
predictions, scores and save / load work whatever engine produced the draws).
"""

from __future__ import annotations

import numpy as np
import pytest

import probzoo as pz
from probzoo.infer import engines as registry

ENGINES = list(pz.engines().index)
ZOO = ("mdn", "ukr", "clustering_vae", "rbm")

# the smallest budgets that run each engine end to end (what is tested here is the wiring, not convergence)
TINY = {"map": {"num_steps": 30}, "meanfield": {"num_steps": 30, "num_draws": 8},
        "laplace": {"num_steps": 30, "num_draws": 8}, "lowrank": {"num_steps": 30, "num_draws": 8},
        "fullrank": {"num_steps": 30, "num_draws": 8}, "flow": {"num_steps": 30, "num_draws": 8},
        "nuts": {"num_warmup": 10, "num_samples": 10, "num_chains": 2},
        "hmc": {"num_warmup": 10, "num_samples": 10, "num_chains": 2},
        "sa": {"num_warmup": 50, "num_samples": 50, "num_chains": 2},
        "barker": {"num_warmup": 20, "num_samples": 20, "num_chains": 2},
        "hmcecs": {"num_warmup": 10, "num_samples": 10, "num_chains": 2, "map_steps": 20},
        # the zoo models' own algorithms: one epoch of 2 minibatches, 20 draws for the RBM samplers
        "relaxed": {"epochs": 1, "batch_size": 30}, "enum": {"epochs": 1, "batch_size": 30},
        "score": {"epochs": 1, "batch_size": 30}, "cd": {"epochs": 1, "batch_size": 20},
        "pcd": {"epochs": 1, "batch_size": 20}, "gibbs": {"num_samples": 20, "num_warmup": 5, "num_chains": 2},
        "discrete-gibbs": {"num_samples": 20, "num_warmup": 5, "num_chains": 2}}
GENERIC = list(registry.generic_names())
NATIVE_TINY = {("ukr", "nuts"): {"map_steps": 20, "max_tree_depth": 3}, ("mdn", "map"): {"num_draws": None}}


@pytest.fixture(scope="module")
def problems():
    x, y = pz.data.two_branch(n=240, seed=0)
    Y, _ = pz.data.saddle(n=36, grid=True, seed=0)
    Y_test, _ = pz.data.saddle(n=12, grid=False, seed=1)
    X, _ = pz.data.blobs(n=80, seed=0)
    V = (np.random.default_rng(0).random((60, 6)) < 0.5).astype(np.float32)
    return {"mdn": (pz.MDN(n_components=2, hidden=(4,)), (x[:200], y[:200]), (x[200:], y[200:])),
            "ukr": (pz.UKR(), (Y,), (Y_test,)),
            "clustering_vae": (pz.ClusteringVAE(n_clusters=3, latent_dim=2, likelihood="normal"), (X[:60],),
                               (X[60:],)),
            "rbm": (pz.RBM(n_hidden=3), (V[:40],), (V[40:],))}


def _options(model_name: str, engine: str) -> dict:
    opts = dict(TINY[engine])
    if engine in ("map", "meanfield") and model_name == "mdn":  # the MDN's own SVI: steps, no draws for map
        opts = {"num_steps": 30, **({"num_draws": 8} if engine == "meanfield" else {})}
    if model_name == "ukr" and engine == "map":
        opts = {"num_steps": 30}
    if model_name == "ukr" and engine == "nuts":
        opts.update(map_steps=20, max_tree_depth=3)
    if model_name == "mdn" and engine == "nuts":
        opts.update(max_tree_depth=3)
    return opts


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model_name", ZOO)
def test_every_engine_runs_every_zoo_model_it_supports_or_says_why_not(problems, model_name, engine):
    model, data, heldout = problems[model_name]
    reason = None
    try:
        model.check_fit(*data, method=engine, **_options(model_name, engine))
    except ValueError as err:
        reason = str(err)
    if reason is not None:
        # a one-line reason that names the engine, and the same from fit itself
        assert "\n" not in reason and f"{engine}:" in reason, reason
        with pytest.raises(ValueError, match=f"{engine}:"):
            model.fit(*data, method=engine, **_options(model_name, engine))
        return
    fit = model.fit(*data, method=engine, seed=0, **_options(model_name, engine))
    assert isinstance(fit, model.fit_class) and fit.method == engine
    # the RBM's likelihood needs its partition function, which evaluate estimates on demand (exactly for a
    # few hidden units, by AIS for many): its fit stores the diagnostic Gibbs chains, not a pointwise
    # log-likelihood of the training rows
    groups = {"posterior"} if model_name == "rbm" else {"posterior", "log_likelihood", "observed_data"}
    assert groups <= set(fit.idata.groups())
    lpd = fit.evaluate(*heldout)["lpd"]
    assert np.isfinite(lpd), (model_name, engine, lpd)
    assert fit.wall_time > 0 and np.isfinite(fit.wall_time)


def test_which_engines_run_which_zoo_models(problems):
    """The continuous-latent models take every generic engine but the ones that need what they lack; the
    clustering VAE and the RBM take only their own algorithms, and say which."""
    def runs(name):
        model, data, _ = problems[name]
        ok = []
        for engine in ENGINES:
            try:
                model.check_fit(*data, method=engine)
                ok.append(engine)
            except ValueError:
                pass
        return ok

    assert runs("mdn") == GENERIC  # a 4-unit network is small enough for MCMC and dense Gaussians
    assert runs("ukr") == [e for e in GENERIC if e != "hmcecs"]  # the latents live in the data plate
    assert runs("clustering_vae") == ["relaxed", "enum", "score"] and runs("rbm") == ["cd", "pcd"]
    big = pz.MDN()  # the default (64, 64) network: 4,678 weights
    x, y = problems["mdn"][1]
    for engine, says in [("nuts", "use a small network"), ("hmc", "too slow to mix"), ("laplace", "Hessian"),
                         ("fullrank", "covariance"), ("flow", "hidden_dims")]:
        with pytest.raises(ValueError, match=says):
            big.check_fit(x, y, method=engine)
    # the registry lists the generic engines, then each zoo model's own, whatever was imported first
    assert ENGINES == [*GENERIC, "relaxed", "enum", "score", "cd", "pcd", "gibbs", "discrete-gibbs"]
    assert pz.engines().loc["enum", "runs_on"] == "pz.ClusteringVAE"


def test_options_that_do_not_apply_to_the_engine_are_refused(problems):
    model, (x, y), _ = problems["mdn"]
    with pytest.raises(ValueError, match="batch_size: not an option of engine 'fullrank'"):
        model.fit(x, y, method="fullrank", batch_size=32)
    with pytest.raises(ValueError, match="rank: not an option of MDN.fit with method 'map'"):
        model.fit(x, y, method="map", rank=2)
    with pytest.raises(ValueError, match="unknown value 'gradient'; expected one of map, nuts, laplace"):
        problems["ukr"][0].fit(*problems["ukr"][1], method="gradient")
    # another zoo model's own algorithm: where it runs
    with pytest.raises(ValueError, match=r"gibbs: an algorithm of pz.RBM only .* fit.sample\(method='gibbs'\)"):
        problems["ukr"][0].fit(*problems["ukr"][1], method="gibbs")
    with pytest.raises(ValueError, match=r"enum: an algorithm of pz.ClusteringVAE only"):
        pz.from_numpyro(lambda y: None, y=np.zeros(3)).fit(method="enum")


def test_a_models_own_engine_runs_through_the_registry(problems):
    """``engine(name).run`` of a model's own algorithm: on the model with its data (CD of the RBM) and on a
    trained fit (its block sampler), with the engine's default options and the given budget."""
    from probzoo.models.base import ModelWithData

    model, (V,), _ = problems["rbm"]
    cd = registry.engine("cd")
    budget, options = cd.settings({"epochs": 2, "batch_size": 20, "diagnostic_chains": 0})
    fit = cd.run(ModelWithData(model, (V,)), budget, options, 0, False)
    assert isinstance(fit, model.fit_class) and fit.method == "cd" and fit.losses.shape == (2 * 2,)
    direct = model.fit(V, method="cd", epochs=2, batch_size=20, diagnostic_chains=0, seed=0)
    np.testing.assert_array_equal(fit.params["W"], direct.params["W"])  # the same program on the same inputs
    gibbs = registry.engine("gibbs")
    budget, options = gibbs.settings({"num_chains": 2, "num_samples": 30, "num_warmup": 5})
    assert gibbs.supports(fit) is None and gibbs.supports(model) is not None
    draws = gibbs.run(fit, budget, options, 0, False)
    assert draws.method == "gibbs" and draws.samples["v"].shape == (2, 30, V.shape[1])
