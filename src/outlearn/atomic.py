"""Atomic writes: a temp file in the same directory, fsync, then rename.

A crash, Ctrl-C or full disk never leaves a file at the destination that later looks
complete. Helpers for bytes and text here; HDF5 (and other library) writers use
:func:`atomic_path`, which hands out the temporary path to write to::

    with atomic_path(dst, error=HistoryFileError) as tmp:
        with h5py.File(tmp, "w") as f:
            ...  # the file must be closed before the block ends

The temporary file is ``<dst name>.tmp-<pid>`` next to ``dst`` (same file system, so the
rename is atomic).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from outlearn.errors import OutlearnError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "is_disk_full", "temp_name"]


def temp_name(dst: Path) -> Path:
    """The temporary path used while ``dst`` is being written (same directory)."""
    return dst.with_name(f"{dst.name}.tmp-{os.getpid()}")


def is_disk_full(err: BaseException) -> bool:
    """True for an ``OSError`` that means "no space left on device" (also h5py's wording)."""
    if not isinstance(err, OSError):
        return False
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return "No space left on device" in text or "errno = 28" in text


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open directories: the rename still happened
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(dst: str | Path, error: type[OutlearnError] = OutlearnError) -> Iterator[Path]:
    """Yield a temporary path to write; on success fsync it and rename it to ``dst``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and the
    exception propagates, so nothing appears at ``dst``; a full disk becomes ``error``
    (an :class:`OutlearnError` subclass) whose message says so and what to do.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dst)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, dst)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise error(
                f"disk full while writing {dst}: nothing was written there. "
                "Free space (or point the output elsewhere) and re-run."
            ) from err
        raise
    _fsync_path(dst.parent, directory=True)


def atomic_write_bytes(dst: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``dst`` atomically; returns ``dst`` as a Path."""
    with atomic_path(dst) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
    return Path(dst)


def atomic_write_text(dst: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``dst`` atomically; returns ``dst`` as a Path."""
    return atomic_write_bytes(dst, text.encode("utf-8"))
