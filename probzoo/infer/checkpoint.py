"""Atomic, checksummed checkpoints of a training state (any pytree of arrays).

A checkpoint is one ``.npz`` file: the state's leaves, the step reached, the loss trace so far and a
JSON header with a SHA-256 of every array. It is written to a temporary file in the same folder and
renamed into place, so an interruption never leaves a half-written checkpoint under the real name;
a truncated or corrupted file is detected on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from probzoo.infer.atomic import atomic_write

__all__ = ["Checkpoint", "CorruptFileError", "atomic_write", "check_checkpointing", "check_resume", "data_digest",
           "json_checksum", "load_checkpoint", "save_checkpoint", "sha256"]

FORMAT = "probzoo-checkpoint-1"


class CorruptFileError(ValueError):
    """A checkpoint or saved fit that is truncated, corrupted or not a probzoo file."""


def sha256(data: bytes | np.ndarray) -> str:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes() + str(data.dtype).encode() + str(data.shape).encode()
    return hashlib.sha256(data).hexdigest()


def json_checksum(record: dict[str, Any]) -> str:
    """SHA-256 of a JSON record in canonical form (sorted keys, no spaces): the same record read back from
    its file gives the same digest, and any changed byte of a value gives another."""
    return sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())


def data_digest(*arrays: Any) -> str:
    """A short SHA-256 of the arrays' bytes, dtypes and shapes: what a checkpoint records of its training data,
    so that a resume on other data is refused."""
    h = hashlib.sha256()
    for a in jax.tree_util.tree_leaves(arrays):
        if isinstance(a, (np.ndarray, jax.Array)):
            h.update(sha256(np.asarray(a)).encode())
    return h.hexdigest()[:16]


def check_checkpointing(checkpoint: Any, checkpoint_every: Any) -> int | None:
    """``checkpoint_every`` checked (a positive int, or None), and refused without a ``checkpoint`` path."""
    from probzoo.validation import check_int

    if checkpoint_every is None:
        return None
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    if checkpoint is None:
        raise ValueError("checkpoint: checkpoint_every needs a checkpoint path")
    return checkpoint_every


def check_resume(meta: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse a checkpoint whose recorded identity (settings, data digest, seed) differs from this run's."""
    # compared as they are stored: through JSON (tuples as lists)
    expected = json.loads(json.dumps(expected, default=str))
    diff = [key for key, value in expected.items() if meta.get(key) != value]
    if diff:
        raise ValueError(f"resume: the checkpoint was written by a different run (differs in {', '.join(diff)})")


@dataclass
class Checkpoint:
    leaves: list[np.ndarray]
    step: int
    losses: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Checkpoint(step={self.step}, arrays={len(self.leaves)})"

    def restore(self, template: Any) -> Any:
        """Rebuild the saved state with the tree structure of ``template`` (a freshly initialised state)."""
        t_leaves, treedef = jax.tree_util.tree_flatten(template)
        if len(t_leaves) != len(self.leaves):
            raise ValueError(
                f"resume: the checkpoint holds {len(self.leaves)} arrays but this model's state has "
                f"{len(t_leaves)}; it was written by a different model or configuration"
            )
        for i, (a, b) in enumerate(zip(t_leaves, self.leaves, strict=True)):
            if np.shape(a) != b.shape or np.asarray(a).dtype != b.dtype:
                raise ValueError(
                    f"resume: array {i} of the checkpoint has shape {b.shape} {b.dtype} but this model's "
                    f"state needs {np.shape(a)} {np.asarray(a).dtype}; different model or configuration"
                )
        return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(b) for b in self.leaves])


def save_checkpoint(path: str | os.PathLike, state: Any, step: int, losses: np.ndarray, **meta: Any) -> None:
    """Write ``state`` (a pytree of arrays) atomically, with the step and loss trace."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
    losses = np.asarray(losses, dtype=np.float32)
    header = {
        "format": FORMAT,
        "step": int(step),
        "n_leaves": len(leaves),
        "checksums": [sha256(a) for a in leaves],
        "losses_checksum": sha256(losses),
        "meta": meta,
    }
    header["header_checksum"] = json_checksum(header)
    arrays = {f"leaf_{i}": a for i, a in enumerate(leaves)}
    arrays["losses"] = losses
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint, verifying its format and every array's checksum."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = dict(z.items())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise CorruptFileError(f"resume: {path} is truncated or corrupt ({type(err).__name__}: {err})") from None
    try:
        header = json.loads(bytes(files.pop("header")).decode())
    except (KeyError, ValueError) as err:
        raise CorruptFileError(f"resume: {path} has no readable header; not a probzoo checkpoint") from err
    if header.get("format") != FORMAT:
        raise CorruptFileError(f"resume: {path} is not a {FORMAT} file")
    if header.pop("header_checksum", None) != json_checksum(header):
        raise CorruptFileError(f"resume: the header of {path} fails its checksum; the file is corrupt")
    leaves = [files.get(f"leaf_{i}") for i in range(header["n_leaves"])]
    if any(a is None for a in leaves) or "losses" not in files:
        raise CorruptFileError(f"resume: {path} is missing arrays; the file is incomplete")
    for i, (a, digest) in enumerate(zip(leaves, header["checksums"], strict=True)):
        if sha256(a) != digest:
            raise CorruptFileError(f"resume: array {i} of {path} fails its checksum; the file is corrupt")
    losses = files["losses"]
    if sha256(losses) != header["losses_checksum"]:
        raise CorruptFileError(f"resume: the loss trace in {path} fails its checksum; the file is corrupt")
    return Checkpoint(leaves=leaves, step=int(header["step"]), losses=losses, meta=header.get("meta", {}))
