"""Which code made a result: a hash of outlearn's source (all of it, or the modules a
stage runs) and the release with ``git describe`` of the checkout. Histories, stage caches
and ``results.json`` all take their code versions from here."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path


def package_root() -> Path:
    """The directory of the outlearn package."""
    return Path(__file__).resolve().parent


@functools.cache
def module_files(module: str) -> tuple[Path, ...]:
    """The .py files of ``module`` (an outlearn module or subpackage, or ``outlearn``)."""
    root = package_root()
    if module != "outlearn" and not module.startswith("outlearn."):
        raise ValueError(f"code version: {module!r} is not an outlearn module")
    base = root.joinpath(*module.split(".")[1:])
    if base.is_dir():
        return tuple(sorted(base.rglob("*.py")))
    if base.with_suffix(".py").is_file():
        return (base.with_suffix(".py"),)
    raise ValueError(f"code version: no module {module} under {root} (a stage's code list "
                     "names a module that does not exist: fix STAGE_CODE or code=[...])")


@functools.cache
def file_digest(path: Path) -> str:
    """sha256 of a source file's bytes (read once per process)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_hash(modules: Iterable[str] = ("outlearn",), digest=None) -> str:
    """A hash of the source of ``modules``: their .py files' paths (relative to the outlearn
    package) and bytes, sorted. Each file is read once per process. ``digest``: the
    per-file hash function (default :func:`file_digest`)."""
    root, digest = package_root(), digest or file_digest
    files = sorted({f for m in modules for f in module_files(m)})
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root).as_posix()}\0{digest(f)}\n".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def release() -> str:
    """``outlearn.__version__`` plus ``git describe`` of the checkout when there is one
    (``+dirty`` with uncommitted changes). Never fails: without git (or outside a
    repository) it is the package version alone."""
    from outlearn import __version__

    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=package_root(), capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    desc = out.stdout.strip()
    return f"{__version__}+git.{desc}" if out.returncode == 0 and desc else __version__
