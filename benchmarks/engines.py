"""Every inference engine on the same two zoo models, side by side in one run; prints JSON.

The MDN (hidden=(8,), K = 2) on 2,000 ``two_branch`` points, scored on 500 more, and UKR on the saddle
(N = 100, scored on 100 more with their true latents): every engine that the model takes, through
``pz.compare`` (one table per model: wall / compile seconds, held-out lpd, for MCMC bulk ESS per second
of wall time, r_hat, bulk and tail ESS, ESS per gradient and divergences on the model's diagnosed
sites; for the others PSIS k-hat). Each row also carries its wall time as a ratio to
``map``'s on the same model and, for MCMC, its ESS per second as a ratio to ``nuts``'s: the peers are
measured in the same run, so the ratios compare engines, not machines.

    python benchmarks/engines.py [--scale 1.0] [--models mdn,ukr] [--out engines.json]    # --scale 0.1: smoke

Budgets at scale 1: 2,000 optimisation steps for MAP and every variational engine; 2 chains of 500
warm-up and 500 draws for NUTS, HMC and Barker, 2 x (1,000 + 1,000) for SA (a gradient-free random walk
needs more draws, each cheap on the MDN; on UKR each costs a dense update of its 200-dimensional
ensemble, about 0.06 s a step here, so UKR's SA gets 2 x (250 + 250)), and 2 x (200 + 200) for HMC-ECS
(each of its draws is a NUTS trajectory on a subsample).
``--scale`` multiplies every budget.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

import probzoo as pz

SVI = ("map", "laplace", "meanfield", "lowrank", "fullrank", "flow")
COLUMNS = ("family", "wall_s", "compile_s", "lpd", "elpd_loo", "khat", "r_hat_max", "ess_bulk_min", "ess_tail_min",
           "ess_bulk_per_s", "ess_per_grad", "divergences")


def budgets(problem: str, methods: tuple[str, ...], scale: float) -> dict[str, dict[str, int]]:
    def n(k: int) -> int:
        return max(20, int(k * scale))

    out = {}
    for m in methods:
        if m in SVI:
            out[m] = {"num_steps": n(2_000)}
        elif m == "sa" and problem == "ukr":
            out[m] = {"num_warmup": n(250), "num_samples": n(250), "num_chains": 2}
        elif m == "sa":
            out[m] = {"num_warmup": n(1_000), "num_samples": n(1_000), "num_chains": 2}
        elif m == "hmcecs":
            out[m] = {"num_warmup": n(200), "num_samples": n(200), "num_chains": 2}
        else:
            out[m] = {"num_warmup": n(500), "num_samples": n(500), "num_chains": 2}
    return out


def problems() -> dict[str, tuple]:
    x, y = pz.data.two_branch(n=2_500, seed=0)
    Y, Z = pz.data.saddle(n=200, grid=False, seed=0)
    return {
        "mdn": (pz.MDN(n_components=2, hidden=(8,)), (x[:2_000], y[:2_000]), (x[2_000:], y[2_000:]), None),
        "ukr": (pz.UKR(), (Y[:100],), (Y[100:],), {"Z_true": Z[100:]}),
    }


def _num(v):
    v = float(v)
    return None if math.isnan(v) else float(f"{v:.4g}")  # 4 significant figures (ESS per gradient is ~1e-4)


def run(scale: float, models: tuple[str, ...] = ("mdn", "ukr")) -> dict:
    report = {"budget_scale": scale, "models": {}}
    for name, (model, data, heldout, extras) in problems().items():
        if name not in models:
            continue
        methods = tuple(model.methods)
        t0 = time.perf_counter()
        table = pz.compare(model, data, methods=list(methods), heldout=heldout, extras=extras, seed=0,
                           budget=budgets(name, methods, scale))
        rows = {}
        for m in methods:
            row = {c: (table.loc[m, c] if c == "family" else _num(table.loc[m, c]))
                   for c in COLUMNS if c in table.columns}
            for c in ("trustworthiness", "excess_nll"):
                if c in table.columns:
                    row[c] = _num(table.loc[m, c])
            row["wall_vs_map"] = _num(table.loc[m, "wall_s"] / table.loc["map", "wall_s"])
            if "ess_bulk_per_s" in table.columns and not math.isnan(table.loc[m, "ess_bulk_per_s"]):
                row["ess_per_s_vs_nuts"] = _num(table.loc[m, "ess_bulk_per_s"] / table.loc["nuts", "ess_bulk_per_s"])
            rows[m] = row
        report["models"][name] = {"model": repr(model), "n_train": len(data[0]), "n_heldout": len(heldout[0]),
                                  "budgets": budgets(name, methods, scale), "engines": rows,
                                  "total_s": round(time.perf_counter() - t0, 1)}
        print(f"{name}: {len(methods)} engines in {report['models'][name]['total_s']} s", file=sys.stderr)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every budget (0.1: a smoke run)")
    ap.add_argument("--models", default="mdn,ukr", help="comma-separated: mdn, ukr (default both)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args()
    if not args.scale > 0:
        ap.error("--scale: expected a positive number")
    models = tuple(args.models.split(","))
    if unknown := set(models) - {"mdn", "ukr"}:
        ap.error(f"--models: unknown {', '.join(sorted(unknown))}; expected mdn, ukr")
    report = run(args.scale, models)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
