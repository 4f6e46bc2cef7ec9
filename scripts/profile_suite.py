"""Where the test suite's time goes: each test's wall time and the XLA compilations it caused, per test file.

    PYTHONPATH=scripts python -m pytest -q -p no:cacheprovider -p profile_suite   # writes .suite-profile/
    python scripts/profile_suite.py [--tests 20]                                   # the tables, as JSON

As a pytest plugin (``-p profile_suite``) it listens to JAX's compilation events (``jax.monitoring``) and writes
one JSON file per xdist worker: for every test, its wall time (set-up, call and tear-down, so a module fixture
counts in the first test that uses it), the seconds XLA spent compiling, the number of compilations, and the
seconds of tracing and lowering to MLIR, and per jitted function (by name) its compilations and their
seconds. Run as a script, it sums them per file and per function. On a small CPU machine most
of the suite's time is compilation; a program the persistent cache serves counts as a cache hit, not a
compilation.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

OUT = Path(os.environ.get("PROFILE_SUITE_OUT", ".suite-profile"))
_current = {"test": "<collection>"}
_stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


_programs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


_served = {"last": False}  # whether the persistent cache served the compilation request under way


def _on_duration(event: str, seconds: float, **kwargs: Any) -> None:
    name = event.rsplit("/", 1)[-1]
    counter = _stats[_current["test"]]
    if name == "cache_retrieval_time_sec":  # JAX reports a cache hit just before its backend_compile_duration
        _served["last"] = True
    if name == "backend_compile_duration" and _served["last"]:  # the cached executable, read back
        _served["last"] = False
        counter["cache_hits"] += 1
        return
    counter[name] += seconds
    if name == "backend_compile_duration":  # a real compilation
        counter["compilations"] += 1
        program = _programs[str(kwargs.get("fun_name", "?"))]  # the jitted function's name
        program["seconds"] += seconds
        program["compilations"] += 1


def pytest_configure(config: Any) -> None:
    # imported here, after tests/conftest.py has set up the session's compilation cache (it must precede jax)
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_on_duration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
    # runs where the test runs (an xdist worker, or the only process)
    _current["test"] = item.nodeid
    started = time.perf_counter()
    yield
    _stats[item.nodeid]["wall"] += time.perf_counter() - started
    _current["test"] = "<between tests>"


def pytest_unconfigure(config: Any) -> None:
    if not any("wall" in counter for counter in _stats.values()):
        return  # the xdist controller: its workers ran the tests
    OUT.mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (OUT / f"{worker}.json").write_text(json.dumps({k: dict(v) for k, v in _stats.items()}))
    (OUT / f"{worker}.programs").write_text(json.dumps({k: dict(v) for k, v in _programs.items()}))


def summary(folder: Path, n_tests: int, n_programs: int = 20) -> dict[str, Any]:
    tests: dict[str, dict[str, float]] = {}
    for path in sorted(folder.glob("*.json")):
        tests.update(json.loads(path.read_text()))
    programs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in sorted(folder.glob("*.programs")):
        for name, counter in json.loads(path.read_text()).items():
            programs[name].update(counter)
    files: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for nodeid, counter in tests.items():
        files[nodeid.split("::")[0]].update({**counter, "tests": 1})
    keys = ("tests", "wall", "backend_compile_duration", "compilations", "cache_hits", "jaxpr_trace_duration",
            "jaxpr_to_mlir_module_duration")

    def row(counter: dict[str, float]) -> dict[str, float]:  # a single test has no "tests" count
        return {k: round(counter.get(k, 0.0), 1) for k in keys if k != "tests" or k in counter}

    total = collections.Counter()
    for counter in files.values():
        total.update(counter)
    return {"total": row(total),
            "files": {f: row(c) for f, c in sorted(files.items(), key=lambda kv: -kv[1]["wall"])},
            "slowest_tests": {t: row(c) for t, c in sorted(tests.items(), key=lambda kv: -kv[1].get("wall", 0))
                              [:n_tests]},
            # the jitted functions whose compilations took longest, summed over the suite
            "programs": {p: {"seconds": round(c["seconds"], 1), "compilations": c["compilations"]}
                         for p, c in sorted(programs.items(), key=lambda kv: -kv[1]["seconds"])[:n_programs]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=OUT)
    ap.add_argument("--tests", type=int, default=20, help="how many of the slowest tests to list")
    ap.add_argument("--programs", type=int, default=20, help="how many of the longest-compiling programs to list")
    args = ap.parse_args()
    print(json.dumps(summary(args.folder, args.tests, args.programs), indent=1))


if __name__ == "__main__":
    main()
