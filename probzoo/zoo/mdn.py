"""The MDN's entry in the zoo's catalogue: its data sets, report figures and tour budgets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from probzoo import data as pz_data
from probzoo.models.mdn.fit import MDNFit
from probzoo.models.mdn.model import MDN
from probzoo.zoo import ZooEntry, register_entry

# --- truth for the article's problems, and the zoo entry ------------------------------------------------

_DATA = {"two_branch": (pz_data.two_branch, pz_data.two_branch_logpdf),
         "heteroscedastic": (pz_data.heteroscedastic, pz_data.heteroscedastic_logpdf)}


def _loader(name: str) -> Callable[[int], tuple[tuple[Any, ...], dict[str, Any]]]:
    make, logpdf = _DATA[name]

    def load(seed: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
        x, y = make(n=10_000, seed=seed)
        x_test, y_test = make(n=10_000, seed=seed + 10_000)
        return (x, y), {"dataset": name, "heldout": (x_test, y_test), "logpdf": logpdf}

    return load


def _report(fit: MDNFit, data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> tuple[dict, list[Path]]:
    from probzoo.plots import mdn as plots

    out_dir = Path(out_dir)
    x, y = data
    x_test, y_test = extras.get("heldout", data)
    metrics = fit.evaluate(x_test, y_test, logpdf=extras.get("logpdf"))
    name = extras.get("dataset")
    tag = f"mdn_{fit.method}_K{fit.model.n_components}"
    figs = [plots.data_and_samples(fit, x_test[:500], y_test[:500], out_dir / f"{tag}_samples.png"),
            plots.mean_std(fit, dataset=name, path=out_dir / f"{tag}_mean_std.png"),
            plots.components(fit, dataset=name, path=out_dir / f"{tag}_components.png")]
    return metrics, figs


def _compare(fits: dict[str, MDNFit], data: tuple[Any, ...], extras: dict[str, Any], out_dir: Path) -> list[Path]:
    """Predictive bands of every compared method side by side, over the training data."""
    from probzoo.plots import mdn as mdn_plots

    x, y = data
    return [mdn_plots.bands_per_method(fits, x, y, Path(out_dir) / "mdn_bands_per_method.png")]


register_entry(ZooEntry(
    name="mdn",
    model_class=MDN,
    description="mixture density regression (article 004): MLP -> K-Gaussian mixture over y",
    methods=MDN.methods,
    datasets={name: _loader(name) for name in ("two_branch", "heteroscedastic")},
    default_data="two_branch",
    report=_report,
    compare=_compare,
    tour_runs=[("map", {}), ("meanfield", {"num_steps": 1_560})],
    model_kwargs={"n_components": 2},
    dataset_model_kwargs={"two_branch": {"n_components": 2}, "heteroscedastic": {"n_components": 1}},
    compare_budget={"map": {}, "meanfield": {}, "nuts": {"num_warmup": 300, "num_samples": 300}},
    sbc={"model_kwargs": {"n_components": 1, "hidden": (4,)},
         "data": lambda seed: pz_data.two_branch(n=100, seed=seed),
         "budgets": {"meanfield": {"num_steps": 2_000}, "fullrank": {"num_steps": 2_000},
                     "nuts": {"num_warmup": 200, "num_samples": 200}}},
    tour_notes={
        "khat": "a mean-field Gaussian over the network's weights cannot be their posterior, which has many "
                "equivalent modes (hidden units and components relabelled) and strong correlations: k-hat above "
                "0.7 says q is not the weight posterior at any budget, not that the predictions are poor; judge "
                "those by lpd, excess_nll and coverage_90 (docs/diagnostics.md)",
    },
))
