"""UKR's entry in the zoo's catalogue: its data sets, report figures and tour budgets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from probzoo.models.ukr.fit import UKRFit, trustworthiness
from probzoo.models.ukr.model import UKR
from probzoo.zoo import ZooEntry, register_entry

# --- zoo entry ----------------------------------------------------------------------------------------

def _saddle(grid: bool) -> Callable[[int], tuple[tuple[Any, ...], dict[str, Any]]]:
    def load(seed: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
        from probzoo.data import saddle

        Y, Z = saddle(n=400, grid=grid, seed=seed)
        return (Y,), {"Z_true": Z}

    return load


def _sbc_points(seed: int) -> Any:
    """The support of the map in ``probzoo sbc ukr``: 30 uniform saddle points (article 001's sampling)."""
    from probzoo.data import saddle

    return saddle(n=30, grid=False, seed=seed)[0]


def _report(fit: UKRFit, data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path):
    from probzoo.plots import ukr as ukr_plots

    out_dir = Path(out_dir)
    metrics = {"reconstruction_error": fit.reconstruction_error()}
    Z = extras.get("Z_true")
    if Z is not None:
        metrics["trustworthiness"] = trustworthiness(Z, fit.latents)
    if fit.is_mcmc:
        quantities = fit.diagnostics()["quantities"]
        metrics["r_hat_recon_error"] = quantities["recon_error"]["r_hat_max"]
        metrics["r_hat_pair_dist"] = quantities["pair_dist"]["r_hat_max"]
    color = data[0][:, 0]
    paths = [ukr_plots.wireframe(fit, out_dir / f"ukr_{fit.method}_wireframe.png", color=color)]
    if fit.is_mcmc:  # the invariants' traces per chain next to a raw latent coordinate
        paths.append(ukr_plots.nuts_traces(fit, out_dir / f"ukr_{fit.method}_traces.png"))
    return metrics, paths


def _compare(fits: dict[str, UKRFit], data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> list[Path]:
    """The latent map of every compared method side by side."""
    from probzoo.plots import ukr as ukr_plots

    return [ukr_plots.latents_per_method(fits, Path(out_dir) / "ukr_latents_per_method.png")]


register_entry(ZooEntry(
    name="ukr",
    model_class=UKR,
    description="unsupervised kernel regression: MAP / NUTS over the latents of a Nadaraya-Watson map",
    methods=UKR.methods,
    datasets={"saddle": _saddle(True), "saddle_uniform": _saddle(False)},
    default_data="saddle",
    report=_report,
    compare=_compare,
    tour_runs=[("map", {"num_steps": 1000}),
               ("nuts", {"num_warmup": 50, "num_samples": 50, "max_tree_depth": 5, "map_steps": 500})],
    tour_notes={
        "r_hat_recon_error": "the tour's 50 warm-up and 50 draws per chain (tree depth 5) are far too few for the "
                             "800 latent coordinates of the 400-point grid; on N = 100 the defaults (500 + 500) "
                             "reach r_hat 1.01-1.07 on the invariants (docs/models/ukr.md)",
        "r_hat_pair_dist": "as for r_hat_recon_error: a budget to show the sampler run, not to converge",
        "r_hat_max": "the worst r_hat over the invariants: as for r_hat_recon_error, a budget to show the sampler "
                     "run, not to converge",
        "ess_bulk_min": "100 draws in all, of chains that have not converged (see r_hat_recon_error): the full "
                        "budget gives hundreds",
        "ess_tail_min": "as for ess_bulk_min: tails need longer chains still",
    },
    compare_budget={"map": {"num_steps": 1000},
                    "nuts": {"num_warmup": 400, "num_samples": 400, "max_tree_depth": 7, "map_steps": 1000}},
    # y_i ~ N(f(x_i; X), s) with Y, the map's support, kept as a covariate: the simulated y are data from the model
    # given Y. reg = 1 puts the latents at the bandwidth's scale (at reg = 0.1 they spread 3 bandwidths apart and
    # NUTS's latent distances came out a little too narrow: 2 of 12 at p <= 0.01). s is fixed: the native NUTS
    # updates a learned s within Gibbs, and moved jointly with the latents, as a generic engine moves it, s and the
    # latents make a funnel (see the model's docstring)
    sbc={"model_kwargs": {"latent_dim": 2, "reg": 1.0, "noise": 0.1},
         "data": lambda seed: (_sbc_points(seed),),
         "budgets": {"nuts": {"num_warmup": 200, "num_samples": 200}, "meanfield": {"num_steps": 2_000},
                     "fullrank": {"num_steps": 2_000}}},
))
