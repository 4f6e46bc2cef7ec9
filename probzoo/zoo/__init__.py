"""The zoo's catalogue: model classes (for ``load``) and one CLI entry per model (for ``probzoo list/fit/tour``).

Each model package registers its class with :func:`register_model`; each module of this package
(``probzoo.zoo.mdn``, ...) registers one :class:`ZooEntry` with :func:`register_entry`: the data sets the CLI
offers, the tour's budgets and the report's figures. The models know nothing of their entries, and the CLI
and the tour know nothing model-specific beyond what an entry says.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ZooEntry", "entries", "get_entry", "methods_table", "model_class", "register_entry", "register_model"]

_MODEL_CLASSES: dict[str, type] = {}
_ENTRIES: dict[str, ZooEntry] = {}

# Packages that register zoo models, and the catalogue's entries for them, in the catalogue's order; imported
# lazily so that ``import probzoo.zoo`` stays cheap.
MODEL_MODULES = ("probzoo.models.mdn", "probzoo.models.ukr", "probzoo.models.clustering_vae", "probzoo.models.rbm",
                 "probzoo.models.numpyro_model")
ENTRY_MODULES = ("probzoo.zoo.mdn", "probzoo.zoo.ukr", "probzoo.zoo.clustering_vae", "probzoo.zoo.rbm")


@dataclass
class ZooEntry:
    """How the CLI runs one model.

    ``datasets`` maps a data-set name to ``loader(seed) -> tuple`` of the arrays ``fit`` takes
    positionally (plus an optional dict of extras such as true labels, passed to ``report``).
    ``report(fit, data, extras, out_dir) -> (metrics, figure paths)`` scores a fit and draws its figures.
    ``tour_runs`` lists (method, fit keyword arguments) for ``probzoo tour`` at a small budget.
    ``compare_budget`` maps a method to the fit options ``probzoo compare`` uses, and ``compare``
    (optional) draws model-specific comparison figures: ``compare(fits, data, extras, out_dir) -> paths``.
    ``dataset_model_kwargs`` maps a data set to model options it needs on top of ``model_kwargs``.
    ``tour_notes`` maps a diagnostic to what its value means at the tour's small budget, and at which budget
    it is good: the tour shows the note under any run whose value the glossary judges doubtful or bad.
    ``sbc`` is the small configuration ``probzoo sbc`` calibrates (``sbc_refusal`` says why a model has none).
    """

    name: str
    model_class: type
    description: str
    methods: tuple[str, ...]
    datasets: dict[str, Callable[[int], tuple[tuple[Any, ...], dict[str, Any]]]]
    default_data: str
    report: Callable[[Any, tuple[Any, ...], dict[str, Any], Path], tuple[dict[str, Any], list[Path]]]
    tour_runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    tour_model_kwargs: dict[str, Any] = field(default_factory=dict)
    compare_budget: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare: Callable[..., Any] | None = None
    dataset_model_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tour_notes: dict[str, str] = field(default_factory=dict)
    # ``probzoo sbc``: a configuration small enough for simulation-based calibration in minutes, with keys
    # "model_kwargs", "data" (seed -> the arrays fit takes; observations are simulated, covariates kept),
    # "budgets" (method -> fit options); or None with the reason SBC does not apply in ``sbc_refusal``
    sbc: dict[str, Any] | None = None
    sbc_refusal: str = "it has no configuration for simulation-based calibration"

    def __repr__(self) -> str:
        return f"ZooEntry({self.name!r}, methods={list(self.methods)}, data={list(self.datasets)})"

    def model_options(self, dataset: str) -> dict[str, Any]:
        """``model_kwargs`` updated with the options a data set needs (e.g. its number of clusters)."""
        return {**self.model_kwargs, **self.dataset_model_kwargs.get(dataset, {})}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` known to ``probzoo.load`` by its class name."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def register_entry(entry: ZooEntry) -> ZooEntry:
    _ENTRIES[entry.name] = entry
    return entry


def _import(modules: tuple[str, ...]) -> None:
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:  # a real import error inside the module, not a model that is absent
                raise


def model_class(name: str) -> type:
    _import(MODEL_MODULES)
    if name not in _MODEL_CLASSES:
        raise ValueError(f"model: unknown model class {name!r}; known: {', '.join(sorted(_MODEL_CLASSES))}")
    return _MODEL_CLASSES[name]


def entries() -> dict[str, ZooEntry]:
    _import(ENTRY_MODULES)
    return dict(_ENTRIES)


def model_order() -> dict[str, int]:
    """Each zoo model's class name -> its place in the catalogue (every model package imported)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return {cls.__name__: i for cls in _MODEL_CLASSES.values() if (i := _home(cls)) is not None}


def _home(cls: type) -> int | None:
    """The place in MODEL_MODULES of the module (or package) that defines ``cls``, or None."""
    for i, module in enumerate(MODEL_MODULES):
        if cls.__module__ == module or cls.__module__.startswith(module + "."):
            return i
    return None


def get_entry(name: str) -> ZooEntry:
    module = f"probzoo.zoo.{name}"
    if name not in _ENTRIES and module in ENTRY_MODULES:
        _import((module,))  # only this model's entry (a tour's worker process needs no other model's packages)
        if name in _ENTRIES:
            return _ENTRIES[name]
    all_entries = entries()
    if name not in all_entries:
        raise ValueError(f"model: unknown model {name!r}; choose one of {', '.join(sorted(all_entries))}")
    return all_entries[name]


def methods_table() -> str:
    """Every model against every inference method, as a Markdown table (the README's, generated here so that
    it cannot drift): the four zoo models with the methods their ``fit`` takes, and ``pz.from_numpyro`` with
    the generic engines, each of which runs a model of yours when its ``supports`` accepts it."""
    from probzoo.infer import engines as _engines

    # in the order of MODEL_MODULES, not of registration (which depends on what was imported first)
    zoo = {e.name: e for e in sorted(entries().values(), key=lambda e: _home(e.model_class) or 0)
           if _home(e.model_class) is not None}
    generic = list(_engines.generic_names())
    columns = list(dict.fromkeys([*generic, *(m for e in zoo.values() for m in e.methods)]))
    lines = ["| model | " + " | ".join(f"`{c}`" for c in columns) + " |", "| --- |" + " :-: |" * len(columns)]
    for e in zoo.values():
        lines.append(f"| `pz.{e.model_class.__name__}` | "
                     + " | ".join("✓" if c in e.methods else "" for c in columns) + " |")
    lines.append("| `pz.from_numpyro(your_model)` | "
                 + " | ".join("✓" if c in generic else "" for c in columns) + " |")
    return "\n".join(lines)
