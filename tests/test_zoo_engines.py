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
        "hmcecs": {"num_warmup": 10, "num_samples": 10, "num_chains": 2, "map_steps": 20}}
NATIVE_TINY = {("ukr", "nuts"): {"map_steps": 20, "max_tree_depth": 3}, ("mdn", "map"): {"num_draws": None}}


@pytest.fixture(scope="module")
def problems():
    x, y = pz.data.two_branch(n=240, seed=0)
    Y, _ = pz.data.saddle(n=36, grid=True, seed=0)
    Y_test, _ = pz.data.saddle(n=12, grid=False, seed=1)
    X, _ = pz.data.blobs(n=60, seed=0)
    V = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(np.float32)
    return {"mdn": (pz.MDN(n_components=2, hidden=(4,)), (x[:200], y[:200]), (x[200:], y[200:])),
            "ukr": (pz.UKR(), (Y,), (Y_test,)),
            "clustering_vae": (pz.ClusteringVAE(n_clusters=3, latent_dim=2), (X,), None),
            "rbm": (pz.RBM(n_hidden=3), (V,), None)}


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
    assert {"posterior", "log_likelihood", "observed_data"} <= set(fit.idata.groups())
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

    assert runs("mdn") == ENGINES  # a 4-unit network is small enough for MCMC and dense Gaussians
    assert runs("ukr") == [e for e in ENGINES if e != "hmcecs"]  # the latents live in the data plate
    assert runs("clustering_vae") == [] and runs("rbm") == []
    big = pz.MDN()  # the default (64, 64) network: 4,678 weights
    x, y = problems["mdn"][1]
    for engine, says in [("nuts", "use a small network"), ("hmc", "too slow to mix"), ("laplace", "Hessian"),
                         ("fullrank", "covariance"), ("flow", "hidden_dims")]:
        with pytest.raises(ValueError, match=says):
            big.check_fit(x, y, method=engine)
    assert registry.generic_names() == tuple(ENGINES)


def test_options_that_do_not_apply_to_the_engine_are_refused(problems):
    model, (x, y), _ = problems["mdn"]
    with pytest.raises(ValueError, match="batch_size: not an option of engine 'fullrank'"):
        model.fit(x, y, method="fullrank", batch_size=32)
    with pytest.raises(ValueError, match="rank: not an option of MDN.fit with method 'map'"):
        model.fit(x, y, method="map", rank=2)
    with pytest.raises(ValueError, match="unknown value 'gibbs'; expected one of map, nuts, laplace"):
        problems["ukr"][0].fit(*problems["ukr"][1], method="gibbs")


def test_an_engine_fit_of_a_zoo_model_round_trips_through_save_and_load(problems, tmp_path):
    """A normalising flow's parameters are tuples of layers: they come back as they were."""
    model, (Y,), (Y_test,) = problems["ukr"]
    fit = model.fit(Y, method="flow", num_steps=30, num_draws=8, seed=3)
    again = pz.load(fit.save(tmp_path / "flow"))
    assert type(again) is type(fit) and again.method == "flow"
    np.testing.assert_array_equal(again.latents, fit.latents)
    np.testing.assert_array_equal(again.transform(Y_test), fit.transform(Y_test))
    layers = fit.params["guide"]
    restored = again.params["guide"]
    assert set(restored) == set(layers)
    for name in layers:
        if isinstance(layers[name], tuple):
            assert isinstance(restored[name], tuple) and len(restored[name]) == len(layers[name])
