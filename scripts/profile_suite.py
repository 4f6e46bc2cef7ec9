"""Where the test suite's time goes: each test's wall time and the XLA compilations it caused, per test file.

    PYTHONPATH=scripts python -m pytest -q -p no:cacheprovider -p profile_suite   # writes .suite-profile/
    python scripts/profile_suite.py [--tests 20]                                   # the tables, as JSON

As a pytest plugin (``-p profile_suite``) it listens to JAX's compilation events (``jax.monitoring``) and writes
one JSON file per xdist worker: for every test, its wall time (set-up, call and tear-down, so a module fixture
counts in the first test that uses it), the seconds XLA spent compiling, the number of compilations, and the
seconds of tracing and lowering to MLIR. Run as a script, it sums them per file. On a small CPU machine most
of the suite's time is compilation; a compilation the persistent cache serves is not counted.
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


def _on_duration(event: str, seconds: float, **_: Any) -> None:
    name = event.rsplit("/", 1)[-1]
    counter = _stats[_current["test"]]
    counter[name] += seconds
    if name == "backend_compile_duration":
        counter["compilations"] += 1


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


def summary(folder: Path, n_tests: int) -> dict[str, Any]:
    tests: dict[str, dict[str, float]] = {}
    for path in sorted(folder.glob("*.json")):
        tests.update(json.loads(path.read_text()))
    files: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for nodeid, counter in tests.items():
        files[nodeid.split("::")[0]].update({**counter, "tests": 1})
    keys = ("tests", "wall", "backend_compile_duration", "compilations", "jaxpr_trace_duration",
            "jaxpr_to_mlir_module_duration")

    def row(counter: dict[str, float]) -> dict[str, float]:  # a single test has no "tests" count
        return {k: round(counter.get(k, 0.0), 1) for k in keys if k != "tests" or k in counter}

    total = collections.Counter()
    for counter in files.values():
        total.update(counter)
    return {"total": row(total),
            "files": {f: row(c) for f, c in sorted(files.items(), key=lambda kv: -kv[1]["wall"])},
            "slowest_tests": {t: row(c) for t, c in sorted(tests.items(), key=lambda kv: -kv[1].get("wall", 0))
                              [:n_tests]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=OUT)
    ap.add_argument("--tests", type=int, default=20, help="how many of the slowest tests to list")
    args = ap.parse_args()
    print(json.dumps(summary(args.folder, args.tests), indent=1))


if __name__ == "__main__":
    main()
