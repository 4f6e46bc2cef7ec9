"""Simulation-based calibration: the simulations vectorised (vmap) or one after another (lax.map).

``pz.sbc`` fits every simulated data set inside one compiled program. Vectorised, all simulations step
together, so an algorithm whose work depends on the data waits at every step for its slowest simulation
(NUTS: each draw's trajectory doubles until it turns, from 1 to 2^10 gradients); one after another, each
simulation runs as long as it needs, but the vector units see one simulation at a time. An engine says which
suits it (``Engine.vectorise_posterior``: false for NUTS). This script runs each case both ways, on UKR's
and the MDN's SBC configurations (``probzoo sbc ukr`` / ``probzoo sbc mdn``), alternated, in one process,
compilation included (what a first call waits; the programs are new), and with ``--cached`` once more with
the persistent compilation cache warm. It prints seconds and the ratios mapped / vectorised as JSON.

    python benchmarks/sbc.py [--simulations 100] [--cases ukr-nuts,ukr-meanfield,mdn-nuts,mdn-meanfield]
                             [--cached]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("PROBZOO_COMPILATION_CACHE", tempfile.mkdtemp())  # empty: the first runs compile

import jax  # noqa: E402

import probzoo as pz  # noqa: E402
from probzoo.infer.engines import engine  # noqa: E402
from probzoo.zoo import get_entry  # noqa: E402

MODELS = {"ukr": pz.UKR, "mdn": pz.MDN}


def run(model_name: str, method: str, vectorise: bool, simulations: int) -> dict[str, Any]:
    config = get_entry(model_name).sbc
    model = MODELS[model_name](**config["model_kwargs"])
    eng = dataclasses.replace(engine(method), vectorise_posterior=vectorise)
    t0 = time.perf_counter()
    result = pz.sbc(model, eng, num_simulations=simulations, data=config["data"](0), **config["budgets"][method])
    wall = time.perf_counter() - t0
    table = result.table()
    invariant = table[table["invariant"]]
    return {"wall_s": wall, "smallest_invariant_p": float(invariant["p_value"].min())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulations", type=int, default=100)
    ap.add_argument("--cases", default="ukr-nuts,ukr-meanfield,mdn-nuts,mdn-meanfield")
    ap.add_argument("--cached", action="store_true", help="run every case again, compilation cache warm")
    args = ap.parse_args()
    report: dict[str, Any] = {}
    for case in args.cases.split(","):
        model_name, method = case.split("-", 1)
        rows: dict[str, dict[str, Any]] = {}
        for label in ("first", "cached") if args.cached else ("first",):
            for how, vectorise in (("vmap", True), ("lax_map", False)):
                rows[f"{how}_{label}"] = run(model_name, method, vectorise, args.simulations)
        report[case] = {**rows, "default": "vmap" if engine(method).vectorise_posterior else "lax_map",
                        **{f"ratio_map_over_vmap_{label}": rows[f"lax_map_{label}"]["wall_s"]
                           / rows[f"vmap_{label}"]["wall_s"] for label in ("first", "cached")
                           if f"vmap_{label}" in rows}}
        print(f"# {case}: " + ", ".join(f"{k} {v['wall_s']:.1f}s" for k, v in rows.items()), flush=True,
              file=sys.stderr)
    report["simulations"] = args.simulations
    report["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
