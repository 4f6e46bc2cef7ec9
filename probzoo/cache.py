"""JAX's persistent compilation cache, on by default in a user cache folder.

A fit's programs (its set-up, its training chunks, its predictions) are compiled by XLA the first time
they run; the persistent cache keeps the executables on disk, so the next process that fits the same
model on data of the same shape loads them instead of compiling again (a first MDN fit in a fresh
process: about 6 s cold, 3 s from the cache on a 2-core machine). An entry is keyed by the program, the
compile options, XLA_FLAGS and the JAX version, so a cached executable is the very program a fresh
compilation would give.

Where: ``$PROBZOO_COMPILATION_CACHE`` if it names a folder, else ``$XDG_CACHE_HOME/probzoo/jax`` (by
default ``~/.cache/probzoo/jax``). Off: ``PROBZOO_COMPILATION_CACHE=0``. A cache the user configured for
JAX already (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_folder", "enable_compilation_cache"]

_OFF = {"0", "off", "false", "no"}


def cache_folder() -> Path | None:
    """The folder probzoo gives JAX's compilation cache, or None when the cache is switched off."""
    setting = os.environ.get("PROBZOO_COMPILATION_CACHE", "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "probzoo" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_folder` unless it is off or set already.

    Programs that compile in under 0.1 s are not stored (below that, reading an entry saves little).
    Returns the folder in use by this call, None if it changed nothing. A folder that cannot be created
    leaves the cache off: compiling is only slower, never wrong.
    """
    import jax

    folder = cache_folder()
    if folder is None or os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return folder
