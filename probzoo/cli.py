"""The ``probzoo`` command: list the zoo, fit a model, compare inference methods, take the tour."""

from __future__ import annotations

import argparse
import ast
import html
import inspect
import json
import math
import sys
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


def _overrides(pairs: Sequence[str], entry: Any, extra: Sequence[str] = ()) -> dict[str, Any]:
    """``--set key=value`` pairs as fit options; a key the model's ``fit`` does not take is refused here,
    before any data is loaded or any model trained. Values are Python literals, else kept as text."""
    accepted = _fit_options(entry) | set(extra)
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--set expects key=value, got {pair!r}")
        if accepted and key not in accepted:
            raise UsageError(f"--set: unknown option {key!r} for {entry.name}; valid options: "
                             f"{', '.join(sorted(accepted))}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _fit_options(entry: Any) -> set[str]:
    """The keyword options of the entry's ``fit`` (empty when it takes ``**kwargs``: anything goes)."""
    params = inspect.signature(entry.model_class.fit).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return set()
    # set by the command itself, or Python objects a command line cannot give
    not_options = {"self", "method", "seed", "progress", "callback", "optim"}
    return {p.name for p in params if p.kind is not p.VAR_POSITIONAL and p.default is not p.empty} - not_options


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


def _fit_one(entry: Any, method: str, dataset: str, seed: int, progress: bool, out: Path,
             model_kwargs: dict[str, Any], fit_kwargs: dict[str, Any], save: bool = True) -> dict[str, Any]:
    data, extras = entry.datasets[dataset](seed)
    model = entry.model_class(**{**entry.model_options(dataset), **model_kwargs})
    t0 = time.perf_counter()
    fit = model.fit(*data, method=method, seed=seed, progress=progress, **fit_kwargs)
    seconds = time.perf_counter() - t0
    metrics, figures = entry.report(fit, data, extras, out)
    if save:
        fit.save(out / "fit", overwrite=True)
    row = {"model": entry.name, "method": method, "data": dataset, "seconds": seconds, **metrics}
    return {"row": row, "figures": [Path(f) for f in figures], "fit": fit}


def cmd_list(args: argparse.Namespace) -> int:
    rows = [{"model": e.name, "class": e.model_class.__name__, "methods": ",".join(e.methods),
             "data": ",".join(e.datasets), "what": e.description} for e in _entries().values()]
    print(format_table(rows))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    entry = _entry(args.model)
    (method,) = _methods(entry, args.method)
    dataset = _dataset(entry, args.data)
    out = Path(args.out)
    result = _fit_one(entry, method, dataset, args.seed, not args.quiet, out, {}, _overrides(args.set, entry))
    row = result["row"]
    text = format_table([row])
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
    from probzoo.comparison import compare_entry

    entry = _entry(args.model)
    methods = _methods(entry, args.methods)
    dataset = _dataset(entry, args.data)
    table, figures = compare_entry(entry, methods, dataset=dataset, seed=args.seed, progress=not args.json,
                                  out_dir=Path(args.out), **_overrides(args.set, entry, extra=('n',)))
    if args.json:
        print(table.reset_index().to_json(orient="records", double_precision=6))
    else:
        print(format_table(table.reset_index().to_dict("records")))
        print("\nwrote " + ", ".join(str(f) for f in figures))
    return 0


def write_index(out: Path, sections: list[dict[str, Any]], title: str = "probzoo tour") -> Path:
    """An index.html that shows every section's table and figures (paths relative to ``out``)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}img{max-width:100%;margin:6px 0}"
             "</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec['title'])}</h2>")
        rows = sec["rows"]
        if rows:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>")
            for r in rows:
                vals = [r.get(c) for c in cols]
                parts.append("<tr>" + "".join(
                    f"<td>{html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}</td>" for v in vals) + "</tr>")
            parts.append("</table>")
        for fig in sec["figures"]:
            rel = Path(fig).resolve().relative_to(out.resolve())
            parts.append(f"<div><img src='{html.escape(rel.as_posix())}' alt='{html.escape(rel.stem)}'></div>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts))
    return path


def cmd_tour(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    zoo = _entries()
    names = [n.strip() for n in args.models.split(",")] if args.models else list(zoo)
    for n in names:
        _entry(n)
    sections, rows = [], []
    t0 = time.perf_counter()
    for name in names:
        entry = zoo[name]
        sec = {"title": f"{name}: {entry.description}", "rows": [], "figures": []}
        for method, fit_kwargs in entry.tour_runs:
            print(f"[tour] {name} / {method} on {entry.default_data} ...", flush=True)
            res = _fit_one(entry, method, entry.default_data, args.seed, not args.quiet, out / name / method,
                           entry.tour_model_kwargs, fit_kwargs, save=False)
            sec["rows"].append(res["row"])
            sec["figures"] += res["figures"]
            rows.append(res["row"])
        sections.append(sec)
    print()
    print(format_table(rows))
    index = write_index(out, sections)
    print(f"\ntour finished in {time.perf_counter() - t0:.0f} s; open {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="probzoo", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the models in the zoo").set_defaults(func=cmd_list)

    f = sub.add_parser("fit", help="fit one model and write the fit, a summary and figures")
    f.add_argument("model")
    f.add_argument("--method", required=True)
    f.add_argument("--data", default=None, help="data set name (default: the model's own)")
    f.add_argument("--out", default="probzoo-out")
    f.add_argument("--seed", type=_seed, default=0)
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a fit option, e.g. epochs=5")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=cmd_fit)

    c = sub.add_parser("compare", help="run several inference methods on one model and tabulate them")
    c.add_argument("model")
    c.add_argument("--methods", required=True, help="comma-separated, e.g. map,meanfield")
    c.add_argument("--data", default=None)
    c.add_argument("--out", default="probzoo-out/compare")
    c.add_argument("--seed", type=_seed, default=0)
    c.add_argument("--json", action="store_true", help="print the table as JSON")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a comparison option")
    c.set_defaults(func=cmd_compare)

    t = sub.add_parser("tour", help="every model at a small budget on its default data, with an index.html")
    t.add_argument("--out", default="tour-out")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--models", default=None, help="comma-separated subset (default: all)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
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
        print(f"probzoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as err:
        # a --set value the fit refused: its message starts with the option's name ("num_steps: ...")
        key = str(err).partition(":")[0]
        given = [pair for pair in getattr(args, "set", []) if pair.partition("=")[0] == key]
        if not given:
            raise
        print(f"probzoo {args.command}: error: --set {given[-1]}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
