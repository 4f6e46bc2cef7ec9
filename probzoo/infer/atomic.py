"""Writing files and folders so that an interruption at any moment never loses what was there.

Everything is first written under a hidden temporary name beside its destination, flushed to disk, then
moved into place with one rename. A folder that replaces another is swapped in atomically
(``renameat2(RENAME_EXCHANGE)`` on Linux): at no moment is there nothing at the destination. Where the
system has no atomic swap, the old folder is first renamed to a hidden backup and the next visit to the
destination puts it back if the process died before the new one arrived.

Temporary names carry the writer's process id (``.NAME.probzoo-tmp-PID-RANDOM``), so leftovers of a
killed writer are recognised, and removed by the next writer or reader of the same destination.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "clean_stale", "replace_folder", "temp_sibling"]

_TEMP = re.compile(r"^\.(?P<name>.+)\.probzoo-(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]+$")


def temp_sibling(path: Path, kind: str = "tmp") -> Path:
    """A fresh hidden name next to ``path`` that says which process owns it."""
    return path.parent / f".{path.name}.probzoo-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(path: str | os.PathLike) -> None:
    """Remove what killed writers left beside ``path``; restore a backup whose replacement never arrived."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        m = _TEMP.match(entry.name)
        if not m or m["name"] != path.name or _alive(int(m["pid"])):
            continue
        try:
            if m["kind"] == "old" and not os.path.lexists(path):
                os.rename(entry, path)  # the writer died between moving the old folder away and the new one in
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except OSError:  # a folder this process may only read (a shared store): leave it to its owner
            continue


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every system can open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _renameat2() -> Any:
    """glibc's renameat2 (Linux 3.15+), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step where the system can (Linux renameat2); False where it cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without the swap
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(write: Callable[[Path], None], path: str | os.PathLike) -> Path:
    """Call ``write(folder)`` on a fresh temporary folder, then put that folder at ``path``.

    An existing ``path`` is replaced without a moment in which nothing is there; on any failure (an
    exception, or ``KeyboardInterrupt``) the temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = temp_sibling(path)
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
        if not os.path.lexists(path):
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp)  # it now holds the old folder
        else:
            backup = temp_sibling(path, "old")
            os.rename(path, backup)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(backup, path)  # put the old fit back now (a killed writer's is put back by clean_stale)
                raise
            shutil.rmtree(backup, ignore_errors=True)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, fsync it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
