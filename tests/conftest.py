import os
import shutil
import tempfile

# Tests run on CPU with float32, as CI does; keep XLA from grabbing every core's worth of threads twice.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

# One JAX persistent compilation cache per test session, shared by the xdist workers: many tests compile
# the same programs (a fit repeated for reproducibility, resumed runs, fixtures of the same shape), and a
# cached executable is the very program a fresh compilation would give (the cache key covers the HLO, the
# compile options and XLA_FLAGS). The controller makes the folder before the workers start (they inherit
# the environment) and removes it at the end, so every session starts cold, as a fresh clone does.
# The workers also share one string-hash salt: NumPyro builds some programs in the order of a Python set
# of site names, and only programs built alike hit the cache (tests/test_cross_process.py runs its other
# process with a salt of its own).
_OWN_CACHE = "PYTEST_XDIST_WORKER" not in os.environ and "PROBZOO_TEST_XLA_CACHE" not in os.environ
if _OWN_CACHE:
    os.environ["PROBZOO_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="probzoo-xla-cache-")
    os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["PROBZOO_TEST_XLA_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["PROBZOO_TEST_XLA_CACHE"], ignore_errors=True)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the cores this process may use. Much of a worker's time is
    single-threaded (XLA compiling a program, tracing it in Python) or waiting on a subprocess it started, so
    with as many workers as cores some cores idle: on two cores, three workers ran the suite in 841 s and four
    in 845 s against 930-937 s for two (docs/benchmarks.md, "The test suite").
    PYTEST_XDIST_AUTO_NUM_WORKERS still sets the number."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1
