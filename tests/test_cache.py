"""The persistent compilation cache: on by default in the user's cache folder, off on request, never
overriding a cache the user set up for JAX, and its entries reused by the next process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = ("import json, jax, probzoo.infer; c = jax.config; "
         "print(json.dumps([c.jax_compilation_cache_dir, c.jax_persistent_cache_min_compile_time_secs]))")


def _probe(tmp_path, **env_changes: str) -> list:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                        "PROBZOO_COMPILATION_CACHE")}
    env.update({"XDG_CACHE_HOME": str(tmp_path / "xdg"), "JAX_PLATFORMS": "cpu", **env_changes})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_by_default_in_the_user_cache_folder(tmp_path):
    folder, min_secs = _probe(tmp_path)
    assert folder == str(tmp_path / "xdg" / "probzoo" / "jax")
    assert os.path.isdir(folder) and min_secs == pytest.approx(0.1)


def test_switched_off_or_moved_by_the_environment(tmp_path):
    assert _probe(tmp_path, PROBZOO_COMPILATION_CACHE="0")[0] in (None, "")
    assert not (tmp_path / "xdg" / "probzoo").exists()
    assert _probe(tmp_path, PROBZOO_COMPILATION_CACHE=str(tmp_path / "mine"))[0] == str(tmp_path / "mine")


def test_a_cache_set_up_for_jax_is_left_alone(tmp_path):
    folder, min_secs = _probe(tmp_path, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax"),
                              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="2")
    assert folder == str(tmp_path / "jax") and min_secs == 2
    assert not (tmp_path / "xdg" / "probzoo").exists()


def test_an_unwritable_folder_leaves_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _probe(tmp_path, PROBZOO_COMPILATION_CACHE=str(blocker / "sub"))[0] in (None, "")


def test_a_second_process_reads_the_first_ones_programs(tmp_path):
    fit = ("import probzoo as pz; x, y = pz.data.two_branch(n=300, seed=0); "
           "pz.MDN(n_components=2, hidden=(8,)).fit(x, y, num_steps=20)")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    # every program stored, whatever its compile time (near probzoo's 0.1 s threshold a busy machine would
    # store a program in one process and not in the other)
    env.update({"PROBZOO_COMPILATION_CACHE": str(tmp_path / "c"), "JAX_PLATFORMS": "cpu",
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
    # two string-hash salts: the programs must not depend on the order of a Python set of site names
    subprocess.run([sys.executable, "-c", fit], env={**env, "PYTHONHASHSEED": "1"}, check=True, timeout=300,
                   capture_output=True)
    first = {p.name for p in (tmp_path / "c").iterdir()}
    assert len(first) >= 3   # set-up, training chunk, final parameters at least
    subprocess.run([sys.executable, "-c", fit], env={**env, "PYTHONHASHSEED": "2"}, check=True, timeout=300,
                   capture_output=True)
    # the same fit again adds nothing: every program it ran came from the cache
    assert {p.name for p in (tmp_path / "c").iterdir()} == first
