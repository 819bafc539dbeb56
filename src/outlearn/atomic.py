"""Atomic writes: a temp file in the same directory, fsync, then rename.

A crash, Ctrl-C or full disk never leaves a file at the destination that later looks
complete. Helpers for bytes and text here; HDF5 writers use :func:`atomic_path`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from outlearn.errors import OutlearnError


def temp_name(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(dst: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success fsync and rename it to ``dst``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and the
    exception propagates; a full disk becomes an :class:`OutlearnError` that says so.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dst)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise OutlearnError(
                f"disk full while writing {dst}: nothing was written there. "
                "Free space (or point the output elsewhere) and re-run; finished stages are kept."
            ) from err
        raise


def atomic_write_bytes(dst: str | Path, data: bytes) -> Path:
    with atomic_path(dst) as tmp:
        tmp.write_bytes(data)
    return Path(dst)


def atomic_write_text(dst: str | Path, text: str) -> Path:
    return atomic_write_bytes(dst, text.encode())
