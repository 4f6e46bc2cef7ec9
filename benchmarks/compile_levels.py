"""What XLA's backend optimisation level costs and buys on the programs that draw from a trained guide.

After a variational fit, probzoo draws from the guide (``guide_posterior``) and weighs the draws against the
model (``guide_log_ratios``, behind k-hat), each as one compiled program run once
(``probzoo.infer.programs.call_draws``, compiled with ``DRAWS_OPTIONS``: backend optimisation level 1). This
script fits an MDN with each variational engine, takes those two programs as the fit built them, and compiles
and runs each at XLA's default level (3) and at level 1, alternated, in one process with JAX's compilation
caches cleared before every compilation; it prints seconds (medians) and the ratios level 1 / default as JSON.

    python benchmarks/compile_levels.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

os.environ.setdefault("PROBZOO_COMPILATION_CACHE", "0")  # every compilation a real one

import jax  # noqa: E402

import probzoo as pz  # noqa: E402
import probzoo.infer.programs as programs  # noqa: E402

CASES = {  # name: (MDN settings, data size, engine)
    "meanfield_4": ({"hidden": (4,)}, 200, "meanfield"),
    "fullrank_4": ({"hidden": (4,)}, 200, "fullrank"),
    "flow_4": ({"hidden": (4,)}, 200, "flow"),
    "laplace_4": ({"hidden": (4,)}, 200, "laplace"),
    "meanfield_64_64": ({"hidden": (64, 64)}, 10_000, "meanfield"),
}
LEVELS = {"default": None, "level_1": programs.DRAWS_OPTIONS}


def captured_programs(settings: dict[str, Any], n: int, engine: str) -> list[tuple[str, Any, list[Any]]]:
    """The draw programs a fit compiles, as (name, function of the traced inputs, inputs)."""
    seen: list[tuple[str, Any, list[Any]]] = []
    original = programs._call

    def capture(fn: Any, args: tuple, kwargs: dict[str, Any], options: Any) -> Any:
        if options is programs.DRAWS_OPTIONS:
            leaves, treedef = jax.tree.flatten((args, kwargs))
            traced = [programs.is_array(leaf) for leaf in leaves]

            def program(arrays: list[Any]) -> Any:
                it = iter(arrays)
                values = [next(it) if t else leaf for leaf, t in zip(leaves, traced, strict=True)]
                a, k = jax.tree.unflatten(treedef, values)
                return fn(*a, **k)

            name = fn.__qualname__.split(".")[0]
            seen.append((name, program, [leaf for leaf, t in zip(leaves, traced, strict=True) if t]))
        return original(fn, args, kwargs, options)

    programs._call = capture
    try:
        x, y = pz.data.two_branch(n=n, seed=0)
        pz.MDN(n_components=2, **settings).fit(x, y, method=engine, num_steps=30)
    finally:
        programs._call = original
    return seen


def measure(program: Any, inputs: list[Any], options: Any) -> tuple[float, float]:
    jax.clear_caches()
    lowered = jax.jit(program).lower(inputs)
    t0 = time.perf_counter()
    compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
    t1 = time.perf_counter()
    jax.block_until_ready(compiled(inputs))
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    out: dict[str, Any] = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                       "jax": jax.__version__}, "cases": {}}
    for case, (settings, n, engine) in CASES.items():
        for name, program, inputs in captured_programs(settings, n, engine):
            times: dict[str, list[tuple[float, float]]] = {level: [] for level in LEVELS}
            for r in range(a.repeats):
                order = list(LEVELS) if r % 2 == 0 else list(reversed(LEVELS))
                for level in order:
                    times[level].append(measure(program, inputs, LEVELS[level]))
            row: dict[str, Any] = {level: {"compile_s": statistics.median(c for c, _ in v),
                                           "run_s": statistics.median(r for _, r in v)} for level, v in times.items()}
            row["compile_ratio"] = row["level_1"]["compile_s"] / row["default"]["compile_s"]
            row["run_ratio"] = row["level_1"]["run_s"] / row["default"]["run_s"]
            out["cases"][f"{case}/{name}"] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
