"""Fault injection: SIGKILL probzoo's saves and trainings at random moments; print what each kill left behind.

Run by tests/test_faults.py as ``python faults.py saves|trainings KILLS SEED FOLDER``; prints one JSON record.
This process imports probzoo but never starts a JAX backend, so it can fork a writer per kill cheaply and
safely; each forked writer (a save loop, or a training) is killed with SIGKILL, which no Python code can
intercept, so whatever is on disk afterwards is exactly what an interrupted user would find.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import probzoo as pz
from probzoo.infer import atomic
from probzoo.infer.checkpoint import CorruptFileError, load_checkpoint
from probzoo.models.rbm import RBMFit


def _fits() -> list:
    """Two fits that differ in every array, big enough that a save takes a few milliseconds."""
    import arviz as az

    out = []
    for v in (0.0, 1.0):
        params = {"W": np.full((300, 60), v, np.float32), "b": np.full(300, v, np.float32),
                  "c": np.full(60, v, np.float32)}
        # built directly (RBM.from_params checks the arrays with JAX, and this process must not start it)
        out.append(RBMFit(model=pz.RBM(n_hidden=60), method="given", params=params, losses=np.full(100, v, np.float32),
                          idata=az.from_dict(posterior={"free_energy": np.full((2, 50), v)}), info={"mcmc": False}))
    return out


def _which(path: Path, fits: list) -> str:
    """'absent', 'refused' or the index of the fit that loads, exactly."""
    try:
        got = pz.load(path)
    except FileNotFoundError:
        return "absent"
    except CorruptFileError:
        return "refused"
    for i, want in enumerate(fits):
        if all(np.array_equal(got.params[k], want.params[k]) for k in ("W", "b", "c")) and np.array_equal(
                got.losses, want.losses) and np.array_equal(np.asarray(got.idata.posterior["free_energy"]),
                                                            np.asarray(want.idata.posterior["free_energy"])):
            return str(i)
    return "mixed"


def _leftovers(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.name.startswith("."))


def saves(kills: int, rng: np.random.Generator, folder: Path) -> dict:
    fits = _fits()
    path = folder / "fit"
    t0 = time.perf_counter()
    for i in range(4):
        fits[i % 2].save(path, overwrite=True)
    seconds = (time.perf_counter() - t0) / 4
    outcomes: dict[str, int] = {}
    left: list[int] = []
    restored = 0
    for kill in range(kills):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the writer: saves the two fits in turn until killed, one byte on the pipe per save
            os.close(read_end)
            if kill % 2:  # half the kills on the fallback for systems without an atomic folder swap
                atomic._exchange = lambda a, b: False
            i = 0
            while True:
                fits[i % 2].save(path, overwrite=True)
                os.write(write_end, b".")
                i += 1
        os.close(write_end)
        time.sleep(rng.uniform(0.0, 3.0 * seconds))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        done = len(os.read(read_end, 1 << 20)) if _readable(read_end) else 0
        os.close(read_end)
        left.append(_leftovers(folder))
        between_renames = not path.exists()  # (the fallback's window: the next load puts the old fit back)
        restored += between_renames and kill > 0
        state = _which(path, fits)
        if state == "absent" and (done or kill > 0):
            state = "lost"  # a fit had been saved there: it must never disappear
        outcomes[state] = outcomes.get(state, 0) + 1
    fits[1].save(path, overwrite=True)
    return {"kills": kills, "save_seconds": seconds, "outcomes": outcomes, "restored_by_load": restored,
            "kills_leaving_temporaries":
            sum(1 for n in left if n), "max_temporaries": max(left), "temporaries_after_next_save":
            _leftovers(folder), "final": _which(path, fits)}


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


# --- trainings ---------------------------------------------------------------------------------------------
TOTAL, EVERY, CHUNK = 3000, 50, 10


def _train(folder: Path, resume: bool, progress_fd: int | None) -> None:
    """In a forked child: train (or resume) and write the final parameters and loss trace."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer.autoguide import AutoNormal

    from probzoo.infer import run_svi

    def model(y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        with numpyro.plate("data", y.shape[0]) as idx:
            numpyro.sample("y", dist.Normal(mu, 2.0), obs=jnp.asarray(y)[idx])

    y = np.random.default_rng(0).normal(3.0, 2.0, 200).astype(np.float32)
    ckpt = folder / "run.ckpt"

    def report(step, losses, state):
        if progress_fd is not None:
            os.write(progress_fd, f"{step}\n".encode())

    reference = progress_fd is None and not resume  # the uninterrupted run writes no checkpoints
    run = run_svi(model, AutoNormal(model), y, num_steps=TOTAL, learning_rate=0.01, chunk_size=CHUNK, seed=0,
                  checkpoint=None if reference else ckpt, checkpoint_every=None if reference else EVERY,
                  resume=ckpt if resume and ckpt.exists() else None, callback=report)
    np.savez(folder / ("resumed.npz" if resume else "reference.npz"), losses=run.losses,
             **{k: np.asarray(v) for k, v in run.params.items()})


def _child(fn, *args) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args)
        except BaseException as err:  # report and leave without running the parent's cleanup
            print(f"child failed: {err!r}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    return pid


def trainings(kills: int, rng: np.random.Generator, folder: Path) -> dict:
    ref_dir = folder / "reference"
    ref_dir.mkdir()
    _, status = os.waitpid(_child(_train, ref_dir, False, None), 0)
    assert status == 0, "reference run failed"
    with np.load(ref_dir / "reference.npz") as z:
        reference = dict(z.items())
    records = []
    for kill in range(kills):
        run_dir = folder / f"run{kill}"
        run_dir.mkdir()
        read_end, write_end = os.pipe()
        pid = _child(_train, run_dir, False, write_end)
        os.close(write_end)
        target = int(rng.integers(1, TOTAL // CHUNK - 5)) * CHUNK
        reported, buffer = 0, b""
        while reported < target:  # kill once the run has passed a random step
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            reported = max([reported, *(int(s) for s in lines if s)])
        time.sleep(rng.uniform(0.0, 0.005))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while _readable(read_end) and (chunk := os.read(read_end, 4096)):
            buffer += chunk
        os.close(read_end)
        # the progress report follows the chunk's checkpoint, so a kill between the two leaves a checkpoint
        # ahead of the last report: steps done are then the checkpoint's
        reported = max([reported, *(int(s) for s in buffer.split(b"\n") if s)])
        try:
            saved = load_checkpoint(run_dir / "run.ckpt").step if (run_dir / "run.ckpt").exists() else 0
        except CorruptFileError:
            saved = -1
        _, status = os.waitpid(_child(_train, run_dir, True, None), 0)
        with np.load(run_dir / "resumed.npz") as z:
            resumed = dict(z.items())
        records.append({"killed_after": reported, "checkpoint_step": saved, "lost_steps": max(reported, saved) - saved,
                        "resume_ok": status == 0, "exact": status == 0 and all(
                            np.array_equal(resumed[k], reference[k]) for k in reference),
                        "temporaries": _leftovers(run_dir)})
    return {"kills": kills, "checkpoint_every": EVERY, "records": records}


if __name__ == "__main__":
    mode, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    result = {"saves": saves, "trainings": trainings}[mode](n, np.random.default_rng(seed), out)
    print(json.dumps(result))
