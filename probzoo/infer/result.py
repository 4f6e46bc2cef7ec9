"""``Fit``: what every probzoo model's ``fit`` returns, and its save/load.

A fit holds the learned parameters, posterior draws where the method has them, the loss trace, timing
and an ``arviz.InferenceData``. ``fit.save(path)`` writes a folder with ``arrays.npz`` (params, draws
and any data the fit needs), ``idata.nc`` (netCDF) and ``meta.json`` (model, configuration, method,
timing, a SHA-256 of every file and one of itself), and ``probzoo.load(path)`` rebuilds the same fit
exactly or refuses a changed or damaged folder. A save never leaves the path without a loadable fit: the
new folder is written beside it and swapped in (see :mod:`probzoo.infer.atomic`).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probzoo.infer import arviz_io
from probzoo.infer.atomic import clean_stale, replace_folder
from probzoo.infer.checkpoint import CorruptFileError, json_checksum, sha256

__all__ = ["Fit", "load"]

FORMAT = "probzoo-fit-2"
# fits saved before meta.json carried its own checksum: still read
_LEGACY_FORMATS = ("probzoo-fit-1",)
_SEP = "/"
_POSITION = "#"  # marks the items of a list or tuple among the stored names


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            if not isinstance(k, str) or _SEP in k or not k:
                raise TypeError(f"save: parameter names must be non-empty strings without '/', got {k!r}")
            _flatten(v, f"{prefix}{_SEP}{k}", out)
    elif isinstance(tree, (list, tuple)):  # e.g. a normalising flow's parameters: a tuple per layer
        if not tree:  # a layer without parameters: kept as an empty marker
            out[f"{prefix}{_SEP}{_POSITION}"] = np.zeros((0,), np.float32)
        for i, v in enumerate(tree):
            _flatten(v, f"{prefix}{_SEP}{_POSITION}{i}", out)
    else:
        out[prefix] = np.asarray(tree)


def _sequences(node: Any) -> Any:
    """Nested dicts whose keys are all positions ("#0", "#1", ...) back into the tuples they were."""
    if not isinstance(node, dict):
        return node
    if set(node) == {_POSITION}:
        return ()
    node = {k: _sequences(v) for k, v in node.items()}
    if node and all(k.startswith(_POSITION) and k[1:].isdigit() for k in node):
        return tuple(node[f"{_POSITION}{i}"] for i in range(len(node)))
    return node


def _unflatten(flat: dict[str, np.ndarray], group: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(_SEP)
        if parts[0] != group:
            continue
        node = out
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return _sequences(out)


@dataclass
class Fit:
    """A trained model: parameters, draws, losses, timing and InferenceData.

    ``model`` is the probzoo model object that produced the fit (it holds the hyper-parameters and the
    networks' structure); model-specific subclasses add prediction methods.
    """

    model: Any
    method: str
    params: dict[str, Any]
    idata: Any = None
    losses: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    samples: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    wall_time: float = float("nan")
    compile_time: float = float("nan")
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def run_time(self) -> float:
        """Wall time without compilation (where compilation was timed apart)."""
        ct = self.compile_time if np.isfinite(self.compile_time) else 0.0
        return self.wall_time - ct

    @property
    def is_mcmc(self) -> bool:
        return bool(self.info.get("mcmc", False))

    @property
    def diagnostic_sites(self) -> list[str] | None:
        """Posterior variables whose r_hat/ESS speak for convergence (None: all). A model whose raw
        parameters are identified only up to a symmetry names invariant quantities instead."""
        return None

    @property
    def is_point_estimate(self) -> bool:
        """An optimisation fit (MAP): its posterior is one point, however many times it is stored (a point
        mass is kept as two equal draws so that ArviZ's LOO applies), not a spread."""
        if self.info.get("point_estimate") is not None:
            return bool(self.info["point_estimate"])
        post = getattr(self.idata, "posterior", None) if self.idata is not None and not self.is_mcmc else None
        if post is None or not post.data_vars:
            return False
        return all(bool(np.all(v.values == v.values[:1, :1])) for v in post.data_vars.values())

    @property
    def epoch_losses(self) -> np.ndarray:
        """The loss per epoch, the mean over its minibatch steps (a last, partial epoch is the mean of its
        steps; per step for full-batch runs): a single minibatch's loss is noise around it."""
        losses = np.asarray(self.losses, np.float64)
        spe = int(self.info.get("steps_per_epoch") or 1)
        return np.array([losses[i:i + spe].mean() for i in range(0, len(losses), spe)])

    def defer_idata(self, build: Callable[[], Any]) -> None:
        """Let ``build()`` make the InferenceData when ``fit.idata`` is first read, not now: building it (and
        importing ArviZ) is a second or two that a fit whose ``idata`` is never read need not spend. ``build``
        must depend on nothing that can change after the fit (copies of the data, the fit's own arrays)."""
        self.__dict__["_idata"], self.__dict__["_build_idata"] = None, build

    def diagnostics(self) -> dict[str, Any]:
        """The evidence of the fit's quality (:mod:`probzoo.infer.diagnostics`), read from its InferenceData.

        MCMC: ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min`` (on the model's invariant quantities where it
        names them, else the raw sites; ``read_on`` says which; ``quantities`` has every one, labelled),
        ``ess_per_grad`` (bulk ESS per gradient evaluation, warm-up and sampling leapfrog steps counted),
        ``grad_evals`` and ``divergences``. Variational: ``khat`` (PSIS shape of log p(theta, data) -
        log q(theta) over 1,000 guide draws) and its ``khat_reading`` (good < 0.5 <= usable < 0.7 <=
        unreliable). A point estimate: ``khat`` None and ``khat_reason``."""
        from probzoo.infer.diagnostics import fit_diagnostics

        return fit_diagnostics(self)

    def summary(self, var_names: list[str] | None = None):
        """``az.summary`` of the posterior. r_hat/ESS are shown only for MCMC fits: a variational fit has
        one set of guide draws, not independent chains, so those columns would not mean convergence.
        A point estimate (one draw) has no spread: its summary is the point, one ``value`` per coordinate.
        The fit-level evidence (k-hat, ESS per gradient, ...: :meth:`diagnostics`) is in ``.attrs["diagnostics"]``."""
        if self.idata is None or "posterior" not in self.idata.groups():
            raise ValueError(f"summary: this {self.method} fit has no posterior draws")
        if self.is_point_estimate:
            import pandas as pd

            post = self.idata.posterior if var_names is None else self.idata.posterior[var_names]
            rows = {}
            for name, var in post.data_vars.items():
                values = np.asarray(var.values)[0, 0]
                for index in np.ndindex(values.shape):
                    rows[name + (f"[{', '.join(map(str, index))}]" if index else "")] = float(values[index])
            table = pd.DataFrame({"value": pd.Series(rows, dtype=float)})
        else:
            table = arviz_io.summary(self.idata, var_names=var_names, diagnostics=self.is_mcmc)
        table.attrs["diagnostics"] = {k: v for k, v in self.diagnostics().items() if k != "quantities"}
        return table

    def __repr__(self) -> str:
        name = type(self.model).__name__ if self.model is not None else "?"
        per_epoch = self.epoch_losses
        loss = f", final_loss={float(per_epoch[-1]):.4g}" if len(per_epoch) else ""
        return f"{type(self).__name__}(model={name}, method={self.method!r}, wall_time={self.wall_time:.2f}s{loss})"

    # --- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the fit to the folder ``path``; refuses to replace an existing one unless ``overwrite``.

        In a job of several processes (``jax.distributed``), where every process holds the same fit, only
        process 0 writes; the others return ``path`` without touching it."""
        from probzoo.infer.devices import is_writer

        path = Path(path)
        if not is_writer():
            return path
        if path.exists() and not overwrite:
            raise FileExistsError(f"path: {path} exists; pass overwrite=True to replace it")
        if self.model is None or not hasattr(self.model, "get_config"):
            raise TypeError("save: the fit has no probzoo model attached, so it cannot be rebuilt on load")
        flat: dict[str, np.ndarray] = {}
        _flatten(self.params, "params", flat)
        _flatten(self.samples, "samples", flat)
        _flatten(self.arrays, "arrays", flat)
        flat["losses"] = np.asarray(self.losses)
        if path.exists() and not _is_saved_fit(path):
            # overwrite=True replaces a saved fit, never a folder (or file) of something else
            raise FileExistsError(f"path: {path} exists and is not a saved probzoo fit; refusing to replace it")

        def write(folder: Path) -> None:
            with open(folder / "arrays.npz", "wb") as fh:
                np.savez(fh, **flat)
            files = ["arrays.npz"]
            if self.idata is not None:
                arviz_io.to_netcdf(self.idata, str(folder / "idata.nc"))
                files.append("idata.nc")
            meta = {
                "format": FORMAT,
                "model": type(self.model).__name__,
                "config": self.model.get_config(),
                "fit_class": type(self).__name__,
                "method": self.method,
                "wall_time": self.wall_time,
                "compile_time": self.compile_time,
                "seed": self.seed,
                "info": self.info,
                "checksums": {f: sha256((folder / f).read_bytes()) for f in files},
            }
            # the checksum covers the record as it will be read back (tuples as lists, numpy scalars as numbers)
            meta = json.loads(json.dumps(meta, default=_json_default))
            meta["meta_checksum"] = json_checksum(meta)
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))

        replace_folder(write, path)
        return path


def _get_idata(fit: Fit) -> Any:
    build = fit.__dict__.pop("_build_idata", None)
    if build is not None:
        fit.__dict__["_idata"] = build()
    return fit.__dict__.get("_idata")


def _set_idata(fit: Fit, value: Any) -> None:
    fit.__dict__.pop("_build_idata", None)
    fit.__dict__["_idata"] = value


# ``idata`` is a field of the dataclass (its __init__ takes it) read through a property, so that a fit can defer
# building it (:meth:`Fit.defer_idata`); set after the class is made, where the field's default was taken
Fit.idata = property(_get_idata, _set_idata, doc="The fit's arviz.InferenceData (built on first read if deferred).")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.ndarray, tuple)):
        return list(np.asarray(obj).tolist())
    raise TypeError(f"save: cannot store {type(obj).__name__} in the fit's metadata")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise CorruptFileError(f"path: {path}/meta.json is missing or unreadable ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, *_LEGACY_FORMATS):
        raise CorruptFileError(f"path: {path} is not a {FORMAT} folder")
    if meta["format"] == FORMAT and meta.pop("meta_checksum", None) != json_checksum(meta):
        raise CorruptFileError(f"path: {path}/meta.json fails its checksum; it was changed or corrupted")
    return meta


_FILES = {"arrays.npz", "idata.nc", "meta.json"}


def _is_saved_fit(path: Path) -> bool:
    """A folder holding nothing but a fit's files (possibly a corrupted fit: it may be overwritten too)."""
    return path.is_dir() and not path.is_symlink() and {p.name for p in path.iterdir()} <= _FILES


def load(path: str | os.PathLike) -> Fit:
    """Load a fit written by ``Fit.save``, checking every file against its recorded checksum."""
    from probzoo.zoo import model_class

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a folder path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    clean_stale(path)  # puts back a fit whose replacement was interrupted where renames are not atomic
    if not path.is_dir():
        raise FileNotFoundError(f"path: no saved fit at {path}")
    meta = _read_meta(path)
    for name, digest in meta.get("checksums", {}).items():
        f = path / name
        if not f.is_file() or sha256(f.read_bytes()) != digest:
            raise CorruptFileError(f"path: {f} is missing, truncated or corrupt (checksum mismatch)")
    try:
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            flat = dict(z.items())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CorruptFileError(f"path: {path}/arrays.npz is unreadable ({err})") from None
    cls = model_class(meta["model"])
    model = cls.from_config(meta["config"]) if hasattr(cls, "from_config") else cls(**meta["config"])
    fit_cls = getattr(model, "fit_class", Fit)
    idata = arviz_io.load_netcdf(str(path / "idata.nc")) if "idata.nc" in meta.get("checksums", {}) else None
    return fit_cls(
        model=model,
        method=meta["method"],
        params=_unflatten(flat, "params"),
        idata=idata,
        losses=flat["losses"],
        samples=_unflatten(flat, "samples"),
        arrays=_unflatten(flat, "arrays"),
        wall_time=meta["wall_time"],
        compile_time=meta["compile_time"],
        seed=meta["seed"],
        info=meta["info"],
    )
