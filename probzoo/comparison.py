"""Run several inference methods on one model and data set, score them on the same held-out data.

Every zoo model's fit has ``evaluate(*heldout, **extras) -> dict`` (with ``"lpd"``, the mean held-out
log predictive density per point, where the model has one); this module adds what is common to all:
timing (compile apart from run), ELPD-LOO from the fit's pointwise log-likelihood, ``az.compare`` across
the methods, and each fit's diagnostics (``fit.diagnostics()``): for MCMC fits the worst r_hat, the bulk and
tail ESS, ESS per second and per gradient and the divergences; for the others PSIS k-hat.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probzoo.infer import arviz_io
from probzoo.infer.diagnostics import table_columns
from probzoo.validation import check_int, check_probability, check_seed

__all__ = ["ComparisonError", "compare", "compare_entry", "comparison_figure", "parse_method"]

_SPEC = re.compile(r"^(?P<method>[A-Za-z_][\w-]*)(?:\[(?P<opts>.*)\])?$")


class ComparisonError(RuntimeError):
    """A method failed after others had finished: ``table`` holds the finished methods' rows and ``fits``
    their fits, so nothing computed is lost; ``method`` names the one that failed (the cause is chained)."""

    def __init__(self, message: str, table: pd.DataFrame, fits: dict[str, Any], method: str) -> None:
        super().__init__(message)
        self.table, self.fits, self.method = table, fits, method
        self.figures: list[Path] = []  # drawn from the finished rows by compare_entry


def split_methods(text: str) -> list[str]:
    """"map,meanfield,nuts[hidden=(8, 8)]" -> ["map", "meanfield", "nuts[hidden=(8, 8)]"]: commas inside
    brackets or parentheses belong to a method's options."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``"map"`` -> ("map", {}); ``"map[loo=False]"`` -> ("map", {"loo": False}) (model options)."""
    import ast

    if not isinstance(spec, str):
        raise TypeError(f"methods: expected method names, got {type(spec).__name__} {spec!r}")
    m = _SPEC.match(spec.strip())
    if not m:
        raise ValueError(f"methods: cannot read {spec!r}; write a name, optionally with model options: map[loo=False]")
    opts: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (m["opts"] or "").split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"methods: option {part!r} in {spec!r} is not key=value")
        try:
            opts[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            opts[key.strip()] = value.strip()
    return m["method"], opts


def _rows(value: Any) -> Any:
    """Array-likes (lists, pandas objects) as numpy arrays so that their rows can be split; a masked array
    keeps its mask (the model's fit refuses masked values); tuples (settings), callables and the rest pass."""
    if isinstance(value, (np.ndarray, tuple, str, bytes, dict)) or callable(value) or value is None:
        return value
    if isinstance(value, list) or hasattr(value, "__array__"):
        arr = np.asanyarray(value)
        return arr if arr.ndim >= 1 and arr.dtype != object else value
    return value


def _split(arrays: Sequence[Any], extras: Mapping[str, Any], test_size: float, seed: int):
    arrays = [_rows(a) for a in arrays]
    extras = {k: _rows(v) for k, v in extras.items()}
    n = int(np.shape(arrays[0])[0])
    n_test = max(1, int(round(test_size * n)))
    if n - n_test < 2:
        raise ValueError(f"data: {n} rows are too few to hold out {n_test} for scoring")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]

    def take(a: Any, idx: np.ndarray) -> Any:
        # only row-aligned arrays are split; anything else (a callable, a tuple of settings) passes through
        return a[idx] if isinstance(a, np.ndarray) and a.ndim >= 1 and a.shape[0] == n else a

    train_data = tuple(take(a, train) for a in arrays)
    test_data = tuple(take(a, test) for a in arrays)
    test_extras = {k: take(v, test) for k, v in extras.items()}
    return train_data, test_data, test_extras


def _finite_float(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _mcmc_diagnostics(fit: Any) -> dict[str, float]:
    """The table's MCMC columns, from ``fit.diagnostics()`` (read on the model's invariant quantities where it
    names them: raw latents identified only up to a symmetry would report non-convergence)."""
    row = table_columns(fit)
    row["ess_bulk_per_s"] = row["ess_bulk_min"] / max(fit.run_time, 1e-9)
    return row


def _family(method: str, fit: Any) -> str:
    """The engine family of a method: the registered engine's, else what the fit says it is."""
    from probzoo.infer.engines import engine

    try:
        return str(engine(method).family)
    except ValueError:
        pass
    return str(fit.info.get("family", "mcmc" if getattr(fit, "is_mcmc", False) else "variational"))


def compare(
    model: Any,
    data: Sequence[Any] | None = None,
    methods: Sequence[str] | None = None,
    *,
    seed: int = 0,
    budget: Mapping[str, Any] | None = None,
    heldout: Sequence[Any] | None = None,
    extras: Mapping[str, Any] | None = None,
    test_size: float = 0.2,
    progress: bool = False,
    return_fits: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
    """Fit ``model`` on ``data`` with each of ``methods`` and tabulate them, one row per method.

    ``data`` is the tuple of arrays ``model.fit`` takes positionally. Unless ``heldout`` (the same tuple
    for scoring) is given, a ``test_size`` fraction of rows is held out with ``seed``. A model bound to its
    data (``pz.from_numpyro``) takes ``data=None``: the rows of its ``"data"`` plate are split the same
    way when it has one, and otherwise every method is scored by ELPD-LOO alone. ``extras`` are
    row-aligned arrays for scoring only (true labels, true latents), passed to ``fit.evaluate``.
    ``budget``: fit options for every method, or ``{method: options}``. A method may carry model
    options, e.g. ``"map[loo=False]"``. Columns: wall/compile/run seconds of the fit and ``score_s`` (the
    scoring below, after the fit), ``lpd`` (held-out mean log
    predictive density per point), ``elpd_loo`` (+ se, from the fit's pointwise log-likelihood, and the
    ``az.compare`` rank where two or more fits have one), the model's task metrics, and for MCMC fits
    ``r_hat_max``, ``ess_bulk_min`` and ``ess_bulk_per_s``.

    Every method is checked against its model and options (``model.check_fit``) before any trains, so a
    method that cannot run is refused at once. A method that fails later raises :class:`ComparisonError`,
    which carries the finished methods' table and fits.
    """
    seed = check_seed(seed)
    check_probability(test_size, "test_size")
    if isinstance(methods, str) or not methods:
        raise ValueError("methods: give a non-empty list of method names, e.g. ['map', 'meanfield']")
    bound = data is None and hasattr(model, "split")  # a model that carries its own data
    if not bound and (not isinstance(data, (tuple, list)) or not data):
        raise TypeError("data: expected the tuple of arrays the model's fit takes, e.g. (x, y)")
    specs = [(s, *parse_method(s)) for s in methods]
    seen: set[str] = set()
    for label, _, _ in specs:
        if label in seen:
            raise ValueError(f"methods: {label!r} appears twice; each method is one row of the table")
        seen.add(label)
    if bound:
        from probzoo.infer.engines import engine

        for _, method, model_opts in specs:
            reason = engine(method).supports(model)
            if reason is not None:
                raise ValueError(f"methods: {reason}")
            if model_opts:
                raise ValueError(f"methods: {method!r}: a model bound to its data takes no model options")
    else:
        valid = getattr(model, "methods", None)
        for _, method, _ in specs:
            if valid is not None and method not in valid:
                raise ValueError(f"methods: unknown method {method!r} for {type(model).__name__}; "
                                 f"valid methods: {', '.join(valid)}")
    extras = dict(extras or {})
    train_model = model
    if bound:
        halves = model.split(test_size, seed) if heldout is None else None
        train_model, test_model = halves if halves is not None else (model, None)
        train, test, test_extras = (), None, {}
        if test_model is not None:
            test, test_extras = test_model.args, test_model.kwargs
    elif heldout is None:
        train, test, test_extras = _split(list(data), extras, test_size, seed)
    else:
        train, test, test_extras = tuple(data), tuple(heldout), extras
    budget = dict(budget or {})
    per_method = bool(budget) and all(k in {s[0] for s in specs} | {s[1] for s in specs} for k in budget)

    # every method is also checked against its model, options and data before the first one trains
    runs = []
    for label, method, model_opts in specs:
        try:
            mdl = type(model)(**{**model.get_config(), **model_opts}) if model_opts else train_model
            opts = dict(budget.get(label, budget.get(method, {}))) if per_method else dict(budget)
            if hasattr(mdl, "check_fit"):
                mdl.check_fit(*train, method=method, **opts)
        except (TypeError, ValueError) as err:
            raise type(err)(f"methods: {label}: {err}") from None
        runs.append((label, method, mdl, opts))

    rows, fits = [], {}
    for label, method, mdl, opts in runs:
        try:
            fit = mdl.fit(*train, method=method, seed=seed, progress=progress, **opts)
        except Exception as err:
            if not rows:
                raise
            raise ComparisonError(f"methods: {label} failed after {len(rows)} finished: "
                                  f"{type(err).__name__}: {err}", _table(rows, fits), fits, label) from err
        fits[label] = fit
        row: dict[str, Any] = {"method": label, "family": _family(method, fit), "wall_s": fit.wall_time,
                               "compile_s": fit.compile_time, "run_s": fit.run_time}
        t_score = time.perf_counter()
        scores = fit.evaluate(*test, **test_extras) if test is not None else {}
        row["lpd"] = _finite_float(scores.pop("lpd", float("nan")))
        row["elpd_loo"] = row["elpd_loo_se"] = float("nan")
        if fit.idata is not None and "log_likelihood" in fit.idata.groups():
            try:
                loo = arviz_io.loo(fit.idata)
                row["elpd_loo"], row["elpd_loo_se"] = float(loo.elpd_loo), float(loo.se)
            except (IndexError, ValueError):  # PSIS needs several draws: a single point estimate has none
                pass
        row.update({k: _finite_float(v) for k, v in scores.items()})
        if getattr(fit, "is_mcmc", False) and fit.idata is not None and "posterior" in fit.idata.groups():
            row.update(_mcmc_diagnostics(fit))
        elif hasattr(fit, "diagnostics"):
            row.update(table_columns(fit))
        row["score_s"] = time.perf_counter() - t_score  # what the table's scores cost on top of the fit
        rows.append(row)

    table = _table(rows, fits)
    return (table, fits) if return_fits else table


def _table(rows: list[dict[str, Any]], fits: Mapping[str, Any]) -> pd.DataFrame:
    """The rows as a table indexed by method, with ranks by held-out lpd and by ELPD-LOO."""
    table = pd.DataFrame(rows).set_index("method")
    with_ll = {k: f.idata for k, f in fits.items() if np.isfinite(table.loc[k, "elpd_loo"])}
    if len(with_ll) >= 2:
        try:
            cmp = arviz_io.compare(with_ll)
            table["loo_rank"] = cmp["rank"].reindex(table.index).astype(float) + 1
            table["elpd_diff"] = cmp["elpd_diff"].reindex(table.index).astype(float)
        except (ValueError, KeyError):  # different observations: ranks by LOO are meaningless
            pass
    if table["lpd"].notna().all():
        table["rank"] = table["lpd"].rank(ascending=False, method="min")
    return table


def figure_panels(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, panel title) for the comparison figure: every numeric column that is finite for some method and
    differs between methods (a column equal for all, such as the true density's NLL, compares nothing), titled
    with the direction that is better."""
    from probzoo.glossary import COLUMNS

    panels = []
    for c in table.columns:
        if c in ("rank", "loo_rank", "elpd_loo_se", "compile_s", "ess_bulk_min") or \
                not pd.api.types.is_numeric_dtype(table[c]):
            continue
        values = table[c].astype(float)
        finite = values[np.isfinite(values)]
        if finite.empty or (len(values) > 1 and finite.nunique() == 1 and len(finite) == len(values)):
            continue
        better = COLUMNS[c].better if c in COLUMNS else None
        panels.append((c, f"{c} ({better} is better)" if better in ("higher", "lower") else
                       f"{c} (closer to the target is better)" if better else c))
    return panels


def comparison_figure(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Bars per method for every column of :func:`figure_panels`."""
    from probzoo.plots import plt, save

    panels = figure_panels(table)
    cols = [c for c, _ in panels]
    ncol = max(1, min(4, len(cols)))
    nrow = math.ceil(len(cols) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, col in zip(axes.ravel(), cols, strict=False):
        vals = table[col].astype(float)
        ax.bar(range(len(vals)), vals.fillna(0).values, color=[colors[i % len(colors)] for i in range(len(vals))])
        ax.set_xticks(range(len(vals)), table.index, rotation=30, ha="right", fontsize=8)
        ax.set_title(dict(panels)[col], fontsize=9)
        if col == "ess_bulk_per_s":
            ax.set_yscale("log") if (vals > 0).all() else None
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def compare_entry(entry: Any, methods: Sequence[str], *, dataset: str | None = None, seed: int = 0,
                  progress: bool = False, out_dir: str | Path = "probzoo-out/compare",
                  model_kwargs: Mapping[str, Any] | None = None, **overrides: Any):
    """The CLI's comparison: the entry's data set and comparison budget, ``model_kwargs`` over the entry's
    model options; returns the table and the paths of its figures (the bar chart of every column, then the
    model's own comparison figures). When a method fails after others finished, the
    :class:`ComparisonError` carries the finished rows and ``figures``, drawn from them."""
    seed = check_seed(seed)
    dataset = dataset or entry.default_data
    data, extras = entry.datasets[dataset](seed)
    n = overrides.pop("n", None)
    if n is not None:
        n = check_int(n, "n", minimum=4)
        rows = len(data[0])
        data = tuple(a[:n] if isinstance(a, np.ndarray) and a.ndim >= 1 and len(a) == rows else a for a in data)
        extras = {k: (v[:n] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == rows else v)
                  for k, v in extras.items()}
    model = entry.model_class(**{**entry.model_options(dataset), **dict(model_kwargs or {})})
    budget = {m: dict(entry.compare_budget.get(parse_method(m)[0], {})) for m in methods}
    for m in budget:
        budget[m].update(overrides)
    out_dir = Path(out_dir)

    def figures_of(table: pd.DataFrame, fits: dict[str, Any]) -> list[Path]:
        figures = [comparison_figure(table, out_dir / f"{entry.name}_compare.png",
                                     title=f"{entry.name} on {dataset}")]
        if entry.compare is not None:
            figures += list(entry.compare(fits, data, extras, out_dir) or [])
        return figures

    try:
        table, fits = compare(model, data, methods, seed=seed, budget=budget, extras=extras,
                              progress=progress, return_fits=True)
    except ComparisonError as err:
        err.figures = figures_of(err.table, err.fits)
        raise
    return table, figures_of(table, fits)
