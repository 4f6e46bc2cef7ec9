"""The ``probzoo`` command: list the zoo, fit a model, compare inference methods, take the tour."""

from __future__ import annotations

import argparse
import ast
import html
import inspect
import json
import math
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]


class UsageError(Exception):
    """A bad command line: printed as one line, exit code 2."""


def _entries() -> dict[str, Any]:
    from probzoo.zoo import entries

    return entries()


def _entry(name: str) -> Any:
    zoo = _entries()
    if name not in zoo:
        raise UsageError(f"unknown model {name!r}; valid models: {', '.join(sorted(zoo)) or '(none installed)'}")
    return zoo[name]


def _methods(entry: Any, text: str) -> list[str]:
    from probzoo.comparison import parse_method, split_methods

    methods = split_methods(text)
    try:
        bad = [m for m in methods if parse_method(m)[0] not in entry.methods]
    except ValueError as err:
        raise UsageError(str(err)) from None
    if bad or not methods:
        raise UsageError(f"unknown method {', '.join(bad) or '(none given)'} for {entry.name}; "
                         f"valid methods: {', '.join(entry.methods)}")
    return methods


def _dataset(entry: Any, name: str | None) -> str:
    name = name or entry.default_data
    if name not in entry.datasets:
        raise UsageError(f"unknown data set {name!r} for {entry.name}; valid data sets: {', '.join(entry.datasets)}")
    return name


def _pair(pair: str, flag: str) -> tuple[str, Any]:
    """``key=value`` as (key, value): a Python literal (``(8, 8)``, ``0.01``, ``True``), else the text."""
    key, sep, value = pair.partition("=")
    if not sep or not key.isidentifier():
        raise UsageError(f"{flag} expects key=value, got {pair!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _overrides(pairs: Sequence[str], entry: Any, extra: Sequence[str] = ()) -> dict[str, Any]:
    """``--set key=value`` pairs as fit options; a key the model's ``fit`` does not take is refused here,
    before any data is loaded or any model trained."""
    accepted = _fit_options(entry) | set(extra)
    out = {}
    for pair in pairs:
        key, value = _pair(pair, "--set")
        if accepted and key not in accepted:
            raise UsageError(f"--set: unknown option {key!r} for {entry.name}; valid options: "
                             f"{', '.join(sorted(accepted))}")
        out[key] = value
    return out


def _model_kwargs(pairs: Sequence[str], entry: Any) -> dict[str, Any]:
    """``--model key=value`` pairs as options of the model's constructor, refused unless it takes them."""
    accepted = _model_defaults(entry)
    out = {}
    for pair in pairs:
        key, value = _pair(pair, "--model")
        if key not in accepted:
            raise UsageError(f"--model: unknown option {key!r} for {entry.name}; valid options: "
                             f"{', '.join(accepted) or '(none)'}")
        out[key] = value
    return out


def _model_defaults(entry: Any, dataset: str | None = None) -> dict[str, Any]:
    """The model's constructor options with the values the command uses for ``dataset`` by default."""
    params = inspect.signature(entry.model_class.__init__).parameters.values()
    defaults = {p.name: p.default for p in params
                if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {**defaults, **entry.model_options(dataset or entry.default_data)}


def _fit_options(entry: Any) -> set[str]:
    """The keyword options of the entry's ``fit`` (empty when it takes ``**kwargs``: anything goes)."""
    params = inspect.signature(entry.model_class.fit).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return set()
    # set by the command itself, or Python objects a command line cannot give
    not_options = {"self", "method", "seed", "progress", "callback", "optim"}
    native = {p.name for p in params if p.kind is not p.VAR_POSITIONAL and p.default is not p.empty} - not_options
    # the budgets and options of the registry's engines that the model runs beside its own methods (which
    # option suits which method is checked per method before anything trains)
    own = set(getattr(entry.model_class, "native_methods", ()) or entry.methods)
    others = [m for m in entry.methods if m not in own]
    if others:
        from probzoo.infer import engines as _engines

        for name in others:
            eng = _engines.engine(name)
            native |= set(eng.budget) | set(eng.options)
    return native


def _jobs(text: str) -> int:
    """argparse type of ``--jobs``: a whole number of processes, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    """argparse type of ``--seed``: an integer in [0, 2**32 - 1]."""
    from probzoo.validation import SEED_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must lie in [0, {SEED_MAX}], got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (naming the option) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def format_table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an aligned text table (floats to 4 significant digits)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in columns]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join((v.rjust(w) if num else v.ljust(w)) for v, w, num in zip(row, widths, numeric, strict=True))
              .rstrip() for row in cells]
    return "\n".join(lines)


def _prepare(entry: Any, method: str, dataset: str, seed: int, model_kwargs: dict[str, Any],
             fit_kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """Load the data set and build the model, and check the fit against both before anything trains."""
    data, extras = entry.datasets[dataset](seed)
    try:
        model = entry.model_class(**{**entry.model_options(dataset), **model_kwargs})
        model.check_fit(*data, method=method, **fit_kwargs)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{entry.name} / {method}: {err}") from None
    return model, data, extras


def _fit_one(entry: Any, model: Any, method: str, dataset: str, data: tuple[Any, ...], extras: dict[str, Any],
             seed: int, progress: bool, out: Path, fit_kwargs: dict[str, Any], save: bool = True) -> dict[str, Any]:
    from probzoo.infer.diagnostics import table_columns

    t0 = time.perf_counter()
    fit = model.fit(*data, method=method, seed=seed, progress=progress, **fit_kwargs)
    seconds = time.perf_counter() - t0
    metrics, figures = entry.report(fit, data, extras, out)
    if save:
        fit.save(out / "fit", overwrite=True)
    diagnostics = {k: v for k, v in table_columns(fit, finite_only=True).items() if k not in metrics}
    row = {"model": entry.name, "method": method, "data": dataset, "seconds": seconds, **metrics, **diagnostics}
    return {"row": row, "figures": [Path(f) for f in figures], "fit": fit}


def cmd_list(args: argparse.Namespace) -> int:
    rows = [{"model": e.name, "class": e.model_class.__name__, "methods": ",".join(e.methods),
             "data": ",".join(e.datasets), "what": e.description} for e in _entries().values()]
    print(format_table(rows))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    entry = _entry(args.model)
    (method,) = _methods(entry, args.method or entry.methods[0])
    dataset = _dataset(entry, args.data)
    out = Path(args.out)
    fit_kwargs = _overrides(args.set, entry)
    model, data, extras = _prepare(entry, method, dataset, args.seed, _model_kwargs(args.model_options, entry),
                                   fit_kwargs)
    result = _fit_one(entry, model, method, dataset, data, extras, args.seed, not args.quiet, out, fit_kwargs)
    row = result["row"]
    text = format_table([row])
    # what a doubtful or bad diagnostic says about this fit, in the glossary's words
    notes = diagnostic_notes([row])
    if notes:
        text += "\n\n" + "\n".join(f"{verdict}: {sentence}" for verdict, sentence in notes)
    fit = result["fit"]
    posterior = getattr(fit.idata, "posterior", None) if fit.idata is not None else None
    if posterior is not None and sum(v.size for v in posterior.data_vars.values()) / max(
            posterior.sizes.get("draw", 1) * posterior.sizes.get("chain", 1), 1) <= 200:
        text += "\n\n" + fit.summary().to_string()
    (out / "summary.txt").write_text(text + "\n")
    (out / "metrics.json").write_text(json.dumps(row, indent=1, default=float))
    print(text)
    print(f"\nwrote {out / 'fit'}, {out / 'summary.txt'} and {len(result['figures'])} figure(s) in {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from probzoo.comparison import ComparisonError, compare_entry

    entry = _entry(args.model)
    methods = _methods(entry, args.methods)
    dataset = _dataset(entry, args.data)
    failed = None
    try:
        table, figures = compare_entry(entry, methods, dataset=dataset, seed=args.seed, progress=not args.json,
                                      out_dir=Path(args.out), model_kwargs=_model_kwargs(args.model_options, entry),
                                      **_overrides(args.set, entry, extra=("n",)))
    except ComparisonError as err:  # a later method failed: the finished rows are printed, not lost
        table, figures, failed = err.table, err.figures, err
    if args.json:
        print(table.reset_index().to_json(orient="records", double_precision=6))
    else:  # a row per quantity and a column per method: as narrow as the number of methods
        print(format_metrics(table.reset_index().to_dict("records")))
        print("\nwrote " + ", ".join(str(f) for f in figures))
    if failed is not None:
        print(f"probzoo compare: error: {failed}", file=sys.stderr)
        return 1
    return 0


TOUR_INTRO = (
    "Every model of the zoo on its default data set, each with two inference methods at a small budget chosen "
    "so that the whole tour runs in minutes on a laptop's CPU. The figures are what each fit looks like at that "
    "budget, not the best each method can do: the model pages of the documentation give the budgets and the "
    "seeds behind the reference results. Each table has one row per quantity and one column per method; "
    "the glossary at the end says what every quantity means and which direction is better.",
    "Every fit carries the evidence of its own quality, marked \u2713 good, ? doubtful or \u2717 bad with the "
    "reason under its table. An MCMC fit is judged by r_hat (chains that agree: below 1.01), the bulk and tail "
    "effective sample sizes (ESS: how many independent draws the correlated chain is worth; a few hundred for "
    "stable means and quantiles), divergent transitions (none), and ESS per gradient (the ESS bought by each "
    "gradient evaluation, warm-up leapfrog steps counted: the sampler's cost-efficiency, for comparing "
    "samplers on the same model). They are read on quantities that no relabelling or rotation of the "
    "parameters changes (a network's log-likelihood, UKR's reconstruction error and latent distances), "
    "since raw parameters of a symmetric posterior are not identified. A variational fit is judged by PSIS "
    "k-hat (Yao et al. 2018): the Pareto tail shape of the importance ratios p(theta, data) / q(theta) over "
    "1,000 draws of q; below 0.5 q is close to the posterior, 0.5-0.7 usable, above 0.7 q misses posterior "
    "mass, so its uncertainty is not to be trusted even when its predictions are good (lpd says that).",
)

_ARROWS = {"higher": "\u2191 higher", "lower": "\u2193 lower", "closer to the target": "\u2192 target"}
_LABELS = ("model", "method", "data")  # what names a run; every other column is a quantity


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


_MARKS = {"good": "\u2713", "doubtful": "?", "bad": "\u2717"}  # after a judged diagnostic's value


def metrics_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Runs as columns, quantities as rows: (header, rows of cells), so that a table stays as narrow as the
    number of methods, whatever the number of quantities. A quantity a run lacks is an empty cell; a
    diagnostic the glossary judges carries its mark (good, doubtful ?, bad) after the value."""
    from probzoo.glossary import COLUMNS, verdict

    def cell(q: str, value: Any) -> str:
        judged = verdict(q, value)
        return _cell(value) + (f" {_MARKS[judged[0]]}" if judged else "")

    quantities = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in _LABELS]
    header = ["quantity", *(str(r.get("method", "")) for r in rows), "better"]
    body = [[q, *(cell(q, r.get(q)) for r in rows), _ARROWS.get(COLUMNS[q].better, "") if q in COLUMNS else ""]
            for q in quantities]
    return header, body


def diagnostic_notes(rows: list[dict[str, Any]], notes: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(verdict, sentence) for every judged diagnostic of every run that is not good: its value, the glossary's
    reason and, from ``notes`` (a zoo entry's ``tour_notes``), what it means at this budget."""
    from probzoo.glossary import verdict

    out = []
    for r in rows:
        for q, value in r.items():
            judged = verdict(q, value)
            if judged and judged[0] != "good":
                note = (notes or {}).get(q)
                out.append((judged[0], f"{r.get('method', '')} {q} = {_cell(value)} is {judged[0]}: {judged[1]}"
                                       + (f". At this budget: {note}." if note else ".")))
    return out


def format_metrics(rows: list[dict[str, Any]]) -> str:
    """:func:`metrics_table` as aligned text."""
    header, body = metrics_table(rows)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) if i in (0, len(header) - 1) else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip() for line in body]
    return "\n".join(lines)


def write_index(out: Path, sections: list[dict[str, Any]], title: str = "probzoo tour",
                intro: str | Sequence[str] = "") -> Path:
    """An index.html: the introduction (a paragraph, or a sequence of them), every section's table of quantities
    by method, each run's figures under a heading of its own (paths relative to ``out``), failures, and a glossary
    of every quantity shown.

    A section is ``{"title", "rows", "figures"}`` or, per run, ``{"title", "rows", "runs": [{"method",
    "figures"}]}``."""
    from probzoo.glossary import COLUMNS

    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 1em}"
             "table{border-collapse:collapse;max-width:100%}td,th{border:1px solid #bbb;padding:3px 8px}"
             "td{text-align:right}td:first-child,td:last-child,th{text-align:left}"
             "img{max-width:100%;margin:6px 0}.failed,.bad{color:#a00}.doubtful{color:#960}"
             "table.glossary td{text-align:left}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    parts += [f"<p>{esc(paragraph)}</p>" for paragraph in ([intro] if isinstance(intro, str) else intro) if paragraph]
    shown: dict[str, None] = {}
    for sec in sections:
        parts.append(f"<h2>{esc(sec['title'])}</h2>")
        if sec["rows"]:
            header, body = metrics_table(sec["rows"])
            shown.update(dict.fromkeys(line[0] for line in body))
            parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in line) + "</tr>" for line in body]
            parts.append("</table>")
        notes = diagnostic_notes(sec["rows"], sec.get("notes"))
        if notes:
            parts.append("<ul>" + "".join(f"<li class='{level}'>{esc(text)}</li>" for level, text in notes) + "</ul>")
        for failure in sec.get("failures", []):
            parts.append(f"<p class='failed'><b>failed</b>: {esc(failure)}</p>")
        runs = sec.get("runs") or [{"method": None, "figures": sec.get("figures", [])}]
        for run in runs:
            if run["method"] is not None:
                parts.append(f"<h3>{esc(sec['title'].split(':')[0])} / {esc(run['method'])}</h3>")
            for fig in run["figures"]:
                rel = Path(fig).resolve().relative_to(out.resolve())
                parts.append(f"<div><img src='{esc(rel.as_posix())}' alt='{esc(rel.stem)}'></div>")
    if shown:
        parts.append("<h2>Glossary</h2><p>\u2713 good, ? doubtful, \u2717 bad: a diagnostic's verdict, explained "
                     "under its table.</p><table class='glossary'><tr><th>quantity</th><th>meaning</th>"
                     "<th>better</th></tr>")
        for q in shown:
            col = COLUMNS.get(q)
            parts.append(f"<tr><td>{esc(q)}</td><td>{esc(col.meaning if col else '')}</td>"
                         f"<td>{esc(col.better or '') if col else ''}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts))
    return path


def cmd_sbc(args: argparse.Namespace) -> int:
    """Calibrate ``--method`` on the model's SBC configuration; print the table, write it and the figure."""
    import probzoo as pz

    entry = _entry(args.model)
    if entry.sbc is None:
        raise UsageError(f"{entry.name}: {entry.sbc_refusal}")
    (method,) = _methods(entry, args.method)
    options = {**entry.sbc.get("budgets", {}).get(method, {}), **_overrides(args.set, entry)}
    model = entry.model_class(**entry.sbc.get("model_kwargs", {}))
    data = entry.sbc["data"](args.seed)
    try:
        result = pz.sbc(model, method, num_simulations=args.simulations, seed=args.seed, data=data, **options)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{entry.name} / {method}: {err}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = result.table()
    figure = result.figure(out / f"sbc_{entry.name}_{method}.png")
    (out / f"sbc_{entry.name}_{method}.json").write_text(json.dumps(
        {"model": entry.name, "method": method, "simulations": result.num_simulations, "draws": result.num_draws,
         "wall_s": result.wall_time, "options": options, "p_values": result.p_values,
         "ranks": {k: v.tolist() for k, v in result.ranks.items()}}, indent=1, default=float))
    shown = table[table["invariant"]] if table["invariant"].any() else table
    rows = [{"quantity": name, **{k: r[k] for k in ("p_value", "mean_rank", "outer_tenths")},
             "verdict": "calibrated" if r["p_value"] > 0.01 else "miscalibrated"} for name, r in shown.iterrows()]
    print(format_table(rows))
    raw = table[~table["invariant"]]
    if table["invariant"].any() and len(raw):
        print(f"\n{int((raw['p_value'] <= 0.01).sum())} of {len(raw)} raw sites miscalibrated (raw sites of a "
              "symmetric posterior are not identified; read the invariant quantities above)")
    print(f"\n{result.num_simulations} simulations in {result.wall_time:.1f} s; wrote {figure} and its JSON")
    return 0


def _tour_page_section(entry: Any) -> dict[str, Any]:
    """A model's section of the tour's page, before any run: its title and notes."""
    return {"title": f"{entry.name}: {entry.description}", "rows": [], "runs": [], "failures": [],
            "notes": entry.tour_notes}


def _tour_section(name: str, runs: list[tuple[str, dict[str, Any]]], seed: int, progress: bool, out: str,
                  prepared: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] | None = None) -> dict[str, Any]:
    """One model's tour ``runs`` (method, fit options), in this process: its section of the page (rows,
    figures, failures). A run that fails is reported there and the others go on. ``prepared`` (model, data,
    extras per run) skips loading them again."""
    from probzoo.zoo import get_entry

    entry = get_entry(name)
    sec = _tour_page_section(entry)
    for i, (method, fit_kwargs) in enumerate(runs):
        print(f"[tour] {entry.name} / {method} on {entry.default_data} ...", flush=True)
        try:
            model, data, extras = prepared[i] if prepared is not None else _prepare(
                entry, method, entry.default_data, seed, entry.tour_model_kwargs, fit_kwargs)
            res = _fit_one(entry, model, method, entry.default_data, data, extras, seed, progress,
                           Path(out) / entry.name / method, fit_kwargs, save=False)
        except Exception as err:  # the other runs go on; the failure is reported on the page and at the end
            message = f"{entry.name} / {method} failed: {type(err).__name__}: {err}"
            print(f"[tour] {message}", file=sys.stderr, flush=True)
            sec["failures"].append(message)
            continue
        sec["rows"].append(res["row"])
        sec["runs"].append({"method": method, "figures": res["figures"]})
        print(f"[tour] {entry.name} / {method} done: fit {res['row']['seconds']:.0f} s", flush=True)
    return sec


def _tour_jobs(requested: int | None, n_models: int) -> int:
    if requested is None:
        requested = min(os.cpu_count() or 1, 4)
    return min(requested, n_models)


def cmd_tour(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()  # the time it reports is the command's: imports, checks and data included
    out = Path(args.out)
    zoo = _entries()
    names = [n.strip() for n in args.models.split(",")] if args.models else list(zoo)
    for n in names:
        _entry(n)
    # every run is checked against its model and data before the first one trains
    prepared: dict[str, list[Any]] = {}
    for name in names:
        entry = zoo[name]
        prepared[name] = [_prepare(entry, method, entry.default_data, args.seed, entry.tour_model_kwargs, fit_kwargs)
                          for method, fit_kwargs in entry.tour_runs]
    runs = sum(len(v) for v in prepared.values())
    out.mkdir(parents=True, exist_ok=True)
    jobs = _tour_jobs(args.jobs, len(names))
    if jobs == 1:
        sections = {name: _tour_section(name, zoo[name].tour_runs, args.seed, not args.quiet, str(out), prepared[name])
                    for name in names}
    else:
        # Models in parallel, each in a process of its own: much of a small fit is compilation and Python
        # (one core), so two models at once finish sooner than one after the other even on two cores.
        # Progress bars from several processes would overwrite each other: each run prints a line instead.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(_tour_section, name, zoo[name].tour_runs, args.seed, False, str(out))
                       for name in names}
            sections = {}
            for name, future in futures.items():
                try:
                    sections[name] = future.result()
                except Exception as err:  # the model's process died: its runs are lost, the others kept
                    message = f"{name} failed: {type(err).__name__}: {err}"
                    print(f"[tour] {message}", file=sys.stderr, flush=True)
                    sections[name] = _tour_page_section(zoo[name])
                    sections[name]["failures"].append(message)
    failures = [m for sec in sections.values() for m in sec["failures"]]
    for name, sec in sections.items():
        if sec["rows"]:
            print(f"\n{name} on {sec['rows'][0]['data']}")
            print(format_metrics(sec["rows"]))
            for _, text in diagnostic_notes(sec["rows"], sec["notes"]):
                print(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="    "))
    index = write_index(out, list(sections.values()), intro=TOUR_INTRO)
    print(f"\ntour finished in {time.perf_counter() - t0:.0f} s; open {index}")
    if failures:
        print(f"probzoo tour: error: {len(failures)} of {runs} runs failed:\n  " + "\n  ".join(failures),
              file=sys.stderr)
        return 1
    return 0


def catalogue() -> str:
    """Every model with its methods, data sets (the first of each is the default) and options."""

    def wrap(label: str, items: Sequence[str]) -> list[str]:
        return textwrap.wrap(", ".join(items) or "(any)", width=96, initial_indent=f"    {label:<9}",
                             subsequent_indent=" " * 13)

    lines = ["models (the first method and data set of each is its default):"]
    for entry in _entries().values():
        lines += textwrap.wrap(f"{entry.name}: {entry.description}", width=96, initial_indent="  ",
                               subsequent_indent=" " * 4)
        lines += wrap("methods", list(entry.methods))
        lines += wrap("data", [entry.default_data, *(d for d in entry.datasets if d != entry.default_data)])
        lines += wrap("--model", [f"{k}={v!r}" for k, v in _model_defaults(entry).items()])
        lines += wrap("--set", sorted(_fit_options(entry)))
    return "\n".join(lines)


class _CatalogueHelp(argparse.Action):
    """``-h``/``--help`` of a command that names models: the usage, then :func:`catalogue` (which imports
    the models, so it is built only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show this help with every model's methods, data sets and options, and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None):
        parser.epilog = catalogue()
        parser.print_help()
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="probzoo", description=__doc__,
                epilog="`probzoo list` shows the models; `probzoo fit --help` their methods, data sets and options.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the models in the zoo").set_defaults(func=cmd_list)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help, add_help=False,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        c.add_argument("-h", "--help", action=_CatalogueHelp)
        return c

    model_option = dict(action="append", default=[], dest="model_options", metavar="KEY=VALUE",
                        help='a model option, e.g. --model hidden="(8,)" (a Python literal)')
    f = command("fit", "fit one model and write the fit, a summary and figures")
    f.add_argument("model")
    f.add_argument("--method", default=None, help="inference method (default: the model's first)")
    f.add_argument("--data", default=None, help="data set name (default: the model's first)")
    f.add_argument("--out", default="probzoo-out")
    f.add_argument("--seed", type=_seed, default=0)
    f.add_argument("--model", **model_option)
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a fit option, e.g. epochs=5")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=cmd_fit)

    c = command("compare", "run several inference methods on one model and tabulate them")
    c.add_argument("model")
    c.add_argument("--methods", required=True,
                   help="comma-separated, e.g. map,meanfield; one method's model options in brackets: "
                        "nuts[hidden=(8,)]")
    c.add_argument("--data", default=None)
    c.add_argument("--out", default="probzoo-out/compare")
    c.add_argument("--seed", type=_seed, default=0)
    c.add_argument("--json", action="store_true", help="print the table as JSON")
    c.add_argument("--model", **model_option)
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a fit option for every method, or n=ROWS to use the data set's first rows")
    c.set_defaults(func=cmd_compare)

    b = command("sbc", "simulation-based calibration of an inference method on a small configuration of a model")
    b.add_argument("model")
    b.add_argument("--method", required=True, help="an inference method with posterior draws, e.g. nuts")
    b.add_argument("--simulations", type=int, default=100, help="number of simulated data sets (default 100)")
    b.add_argument("--out", default="probzoo-out/sbc")
    b.add_argument("--seed", type=_seed, default=0)
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a fit option, e.g. num_warmup=300")
    b.set_defaults(func=cmd_sbc)

    t = command("tour", "every model at a small budget on its default data, with an index.html")
    t.add_argument("--out", default="tour-out")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--models", default=None, help="comma-separated subset (default: all)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--jobs", type=_jobs, default=None,
                   help="models toured at once, each in a process of its own (default: the number of cores, at "
                        "most 4; with more than one, a line per run replaces the progress bars)")
    t.set_defaults(func=cmd_tour)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a bad command line already reported in one line
        return int(done.code or 0)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"probzoo {args.command}: error: {_explain(str(err), args)}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as err:
        message = str(err)
        if not message.startswith("methods: "):  # compare's check of every method before the first fit
            # otherwise a value that a fit refused is a usage error only when it names a given option
            key = message.partition(":")[0]
            if not any(pair.partition("=")[0] == key for pair in _given_options(args)):
                raise
        print(f"probzoo {args.command}: error: {_explain(message, args)}", file=sys.stderr)
        return 2


def _given_options(args: argparse.Namespace) -> list[str]:
    return [*getattr(args, "set", []), *getattr(args, "model_options", [])]


def _explain(message: str, args: argparse.Namespace) -> str:
    """A refusal of an option, with the command-line flag that gave it, or how to give it."""
    parts = message.split(": ")
    names = parts[:-1]  # "methods: nuts: hidden: NUTS over ..." names methods, nuts and hidden
    for flag, pairs in (("--set", getattr(args, "set", [])), ("--model", getattr(args, "model_options", []))):
        given = [pair for pair in pairs if pair.partition("=")[0] in names]
        if given:
            return f"{flag} {given[-1]}: {message}"
    entry = _entries().get(getattr(args, "model", None) or "")
    if entry is not None and any(name in _model_defaults(entry) for name in names):
        one = ", or for one method only METHOD[KEY=VALUE]" if args.command == "compare" else ""
        return f"{message} (give model options with --model KEY=VALUE{one})"
    return message


if __name__ == "__main__":
    raise SystemExit(main())
