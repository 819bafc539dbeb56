"""Atomic writes: a temp file in the same directory, fsync, then rename.

A crash, Ctrl-C or full disk never leaves a file at the destination that later looks
complete. Helpers for bytes and text here; library writers (HDF5, torch, matplotlib)
write to memory and hand the bytes to :func:`atomic_write_bytes`, so that only this
module touches the disk and a full disk is always an ``OSError`` it can report (h5py and
torch turn one into errors without an errno, and h5py can crash at exit after one).
:func:`atomic_path` hands out the temporary path for writers that need a file name::

    with atomic_path(dst) as tmp:
        with open(tmp, "wb") as fh:
            ...  # the file must be closed before the block ends

The temporary file is ``<dst name>.tmp-<pid>`` next to ``dst`` (same file system, so the
rename is atomic). It is removed when the write fails; one left by a killed process
(its pid no longer running, untouched for a minute) is removed by the next write of
``dst``. A full disk raises :class:`~outlearn.errors.DiskFullError` ("no space left on
device writing <file>: ..."): files already written stay as they were.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from outlearn.errors import ConfigError, DiskFullError, OutlearnError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_output",
           "disk_full_error", "is_disk_full", "temp_name"]

STALE_TMP_SECONDS = 60  # a dead writer's temp file older than this is removed


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


def disk_full_error(path: str | Path) -> DiskFullError:
    """The one message for a full disk while writing ``path``."""
    return DiskFullError(f"no space left on device writing {path}: free space and re-run; "
                         "finished work is kept")


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def remove_stale_temps(dst: Path) -> list[Path]:
    """Remove ``<dst name>.tmp-<pid>`` files of writers that died (pid not running here,
    file untouched for :data:`STALE_TMP_SECONDS`); returns those removed."""
    pattern = re.compile(re.escape(dst.name) + r"\.tmp-(\d+)$")
    removed: list[Path] = []
    try:
        entries = list(dst.parent.iterdir()) if dst.parent.is_dir() else []
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        m = pattern.match(p.name)
        if not m or int(m.group(1)) == os.getpid() or _pid_running(int(m.group(1))):
            continue
        try:
            if now - p.stat().st_mtime >= STALE_TMP_SECONDS:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


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
def atomic_path(dst: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success fsync it and rename it to ``dst``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and the
    exception propagates, so nothing appears at ``dst``; a full disk becomes
    :class:`~outlearn.errors.DiskFullError` naming ``dst``.
    """
    dst = Path(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(dst) from err
        raise OutlearnError(f"cannot create directory {dst.parent} to write {dst} "
                            f"({err.strerror or err}): choose another output path") from err
    remove_stale_temps(dst)
    tmp = temp_name(dst)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, dst)
    except BaseException as err:
        # a temp file that cannot be removed now stays until a write of dst by a later
        # process finds it stale (remove_stale_temps skips this process's own pid)
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full_error(dst) from err
        raise
    _fsync_path(dst.parent, directory=True)


def atomic_write_bytes(dst: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``dst`` atomically; returns ``dst`` as a Path."""
    with atomic_path(dst) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
    return Path(dst)


def atomic_write_text(dst: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``dst`` atomically; returns ``dst`` as a Path."""
    return atomic_write_bytes(dst, text.encode("utf-8"))


def _probe_write(directory: Path) -> None:
    """Create and remove a temporary file in ``directory``; raises OSError if it cannot."""
    probe = directory / f".outlearn-write-test-{os.getpid()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | Path, field: str, *, kind: str = "file") -> Path:
    """Refuse, before any work, an output path that could not be written at the end.

    ``kind`` "file" (the output is a file: ``path`` must not be a directory) or "dir" (an
    output directory: ``path`` must not be a file). Every existing ancestor must be a
    directory, and the nearest existing one (``path`` itself for an existing directory)
    must take a new file (checked by creating and removing one). Raises
    :class:`ConfigError` naming ``field``; returns ``path`` as a Path.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind={kind!r}: use 'file' or 'dir'")
    raw = str(path)
    if not raw.strip():
        raise ConfigError(f"{field} is an empty path: give a {kind} name "
                          "('.' is the current directory)")
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{field} = {raw!r} is a directory: give a file path inside it, "
                          f"e.g. {str(path / 'out.h5')!r}")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise ConfigError(f"{field} = {raw!r} is a file, not a directory: give a directory "
                          "path (or move the file away)")
    start = path if kind == "dir" else path.parent
    here = start.absolute()
    while not here.exists():
        here = here.parent
    if not here.is_dir():
        raise ConfigError(f"{field} = {raw!r}: {here} is a file, not a directory, so nothing "
                          f"can be written below it. Choose another {field}")
    try:
        _probe_write(here)
    except OSError as err:
        raise ConfigError(f"{field} = {raw!r}: cannot write in directory {here} "
                          f"({err.strerror or err}). Choose a writable {field} or fix the "
                          "directory's permissions") from None
    return path
