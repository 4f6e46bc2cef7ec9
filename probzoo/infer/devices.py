"""Data-parallel fits over several devices and processes, on JAX's sharding.

A fit that runs through the shared training loop takes ``devices=``: ``None`` (one device, the default),
an int N (the first N devices) or ``"all"``. The devices form a 1-D mesh with one axis, ``"batch"``:

- the data, the parameters and the optimiser's state are replicated on every device (each device holds
  the whole data set, so each minibatch is drawn exactly as on one device);
- each minibatch's row indices are split over the mesh (:meth:`DataParallel.split`), so every device
  computes the model, the guide and their gradients on its share of the rows; XLA's partitioner inserts
  the all-reduce that sums the gradients, and every device applies the same update.

Random draws use JAX's partitionable threefry (``jax_threefry_partitionable``, on by default): a draw over
the batch has the same values however the batch is split, so the same seed gives the same fit as on one
device, up to the order of the float32 sums that the split reorders.

With several processes (``jax.distributed.initialize`` called in each, the standard JAX way on SLURM,
Kubernetes or Cloud TPU), ``jax.devices()`` lists the devices of every process and the mesh spans them
all: every process passes the same data, computes its devices' share of each minibatch, and ends with
the same parameters. Only process 0 writes files and shows progress (:func:`is_writer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DataParallel", "is_writer", "resolve_devices"]

AXIS = "batch"


def resolve_devices(devices: Any, name: str = "devices") -> list[Any] | None:
    """The devices a fit runs on: None for one device (no sharding), else a list of ``jax.Device``.

    ``devices``: None, a positive int N (the first N devices of ``jax.devices()``, across every process),
    ``"all"``, or a sequence of ``jax.Device``.
    """
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f'{name}: expected None, a number of devices or "all", got {devices!r}')
        return list(available)
    if isinstance(devices, (bool, np.bool_)):
        raise TypeError(f'{name}: expected None, a number of devices or "all", got {devices!r}')
    if isinstance(devices, (int, np.integer)):
        n = int(devices)
        if not 1 <= n <= len(available):
            raise ValueError(f"{name}: {n} devices asked for, {len(available)} available "
                             f"({available[0].platform}; on a CPU, set XLA_FLAGS="
                             f"--xla_force_host_platform_device_count=N before JAX starts for N host devices)")
        return list(available[:n])
    if isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        if len(set(devices)) != len(devices):
            raise ValueError(f"{name}: a device is listed twice")
        return list(devices)
    raise TypeError(f'{name}: expected None, a number of devices, "all" or a list of jax devices, '
                    f"got {type(devices).__name__}")


def is_writer() -> bool:
    """Whether this process writes files and shows progress: process 0 of a ``jax.distributed`` job (or the
    only process)."""
    return jax.process_index() == 0


class DataParallel:
    """A 1-D mesh of devices over which each minibatch is split and everything else is replicated."""

    def __init__(self, devices: Sequence[Any]) -> None:
        self.devices = list(devices)
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.rows = NamedSharding(self.mesh, PartitionSpec(AXIS))

    @classmethod
    def of(cls, devices: Any, name: str = "devices") -> DataParallel | None:
        """The mesh for a fit's ``devices=`` argument (None: one device, no sharding; a DataParallel: itself)."""
        if isinstance(devices, DataParallel):
            return devices
        resolved = resolve_devices(devices, name)
        return None if resolved is None else cls(resolved)

    @property
    def size(self) -> int:
        return len(self.devices)

    def __repr__(self) -> str:
        return f"DataParallel({self.size} {self.devices[0].platform} devices, {jax.process_count()} processes)"

    def check_batch(self, count: int, name: str = "batch_size") -> None:
        """Refuse a minibatch (or a number of chains) that the devices cannot split evenly."""
        if count % self.size:
            raise ValueError(f"{name}: {count} cannot be split evenly over {self.size} devices; "
                             f"choose a multiple of {self.size}")

    def replicate(self, tree: Any) -> Any:
        """Every array leaf of ``tree`` copied to every device of the mesh (in every process: each process
        passes the same values and places its own devices' copies)."""
        return self._place(tree, self.replicated)

    def distribute(self, tree: Any) -> Any:
        """Every array leaf of ``tree`` split by its leading axis over the devices of the mesh (each process
        passes the same full values and places its own devices' rows)."""
        return self._place(tree, self.rows)

    @staticmethod
    def _place(tree: Any, sharding: NamedSharding) -> Any:
        def put(x: Any) -> Any:
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                return x
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(put, tree)

    def split(self, rows: Any) -> Any:
        """Inside a traced program: ``rows`` (a minibatch's indices, or anything with the batch as its
        leading axis) split over the devices."""
        return jax.lax.with_sharding_constraint(rows, self.rows)

    def gather(self, tree: Any) -> Any:
        """Every array of ``tree`` replicated, so each process can read all of it (e.g. chains split over
        devices)."""
        return jax.jit(lambda t: t, out_shardings=self.replicated)(tree)
