"""`outlearn run CONFIG.toml`: resolve a study config, run it in its run directory, report.

The TOML names its study at the top level (``study = "cutoff"``); every other key is
validated by that study's config model. The run directory is
``<out>/<study>-<config hash>``: the same config resumes the same run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import re
import shlex
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from outlearn.atomic import atomic_write_text
from outlearn.config import parse_config
from outlearn.errors import ConfigError, Stopped
from outlearn.provenance import release, source_hash
from outlearn.registry import ENVS, STUDENTS, STUDIES, TEACHERS
from outlearn.report.html import render_report, setting_rows, summary_text
from outlearn.report.results import now, write_results
from outlearn.studies.base import RunContext, total_seconds
from outlearn.studies.parallel import Processes, RayPool, make_executor


def load_components() -> None:
    """Import the built-in modules so that their registrations run."""
    import outlearn.envs  # noqa: F401
    import outlearn.studies  # noqa: F401
    import outlearn.teachers  # noqa: F401

    try:
        import outlearn.students  # noqa: F401
    except ImportError:  # students need torch; the world side does not
        pass


def list_components() -> str:
    load_components()
    out = []
    for title, reg in [("studies", STUDIES), ("environments", ENVS), ("teachers", TEACHERS),
                       ("students", STUDENTS)]:
        out.append(f"{title}:")
        for name in reg.names():
            out.append(f"  {name:24s} {summary_line(reg.get(name))}")
    return "\n".join(out)


def plain(text: str) -> str:
    """Docstring text without reST markup: ``code`` and :role:`~a.b.Name` as plain words,
    code spans that are call signatures left out."""
    text = re.sub(r"``[^`]*\([^`]*``", "", text)
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def summary_line(obj: Any) -> str:
    """One plain sentence about a registered component: its ``description``, else the first
    sentence of its docstring (of its module's when the docstring opens with a
    signature)."""
    desc = getattr(obj, "description", None)
    if desc:
        return str(desc)
    doc = (obj.__doc__ or "").strip()
    if not doc or doc.startswith("``"):
        doc = (getattr(sys.modules.get(obj.__module__), "__doc__", None) or "").strip()
    para = re.sub(r"\s+", " ", doc.split("\n\n")[0])
    return plain(re.split(r"(?<=\.)\s+(?=[A-Z`:])", para)[0]) or "(no description)"


LOCK_NAME = ".lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold ``<run_dir>/.lock`` (``fcntl.flock``, exclusive, non-blocking) while a run
    works in ``run_dir``; a second run of the same directory refuses at once with
    :class:`~outlearn.errors.RunLockedError` naming the directory and the pid (and host)
    that holds it. Released when the block ends, by an exception too, and by the OS when
    the process dies (``kill -9`` included)."""
    from outlearn.errors import RunLockedError

    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise RunLockedError(
            f"run directory {run_dir} is in use by another outlearn run (pid {holder}): wait "
            "for it to finish or stop it; two runs of one directory would compute every "
            "stage twice") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def student_device() -> str:
    """Where this run's students train and act ($OUTLEARN_DEVICE, as :mod:`~outlearn.students.
    device` resolves it), with the GPU's name when it is one: a run's metadata says it."""
    from outlearn.students.device import resolve_device

    dev = resolve_device()
    if dev.type == "cuda":
        import torch

        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return str(dev)


def read_study_toml(path: Path) -> tuple[str, dict]:
    from outlearn.config import check_command, read_toml  # a missing or bad file: ConfigError

    data = read_toml(path)
    check_command(data, "run", str(path))  # a train, eval or collect config: named
    if "study" not in data:
        raise ConfigError(f"{path}: missing key 'study': name the study, e.g. study = \"cutoff\"")
    return str(data.pop("study")), data


def check_reuse(paths: Iterable[Path], run_dir: Path) -> tuple[Path, ...]:
    """The run directories named by ``--reuse``, checked: each must be another run's
    directory (one that holds ``stages/``)."""
    out = []
    for p in paths:
        p = Path(p)
        if not (p / "stages").is_dir():
            raise ConfigError(f"--reuse {p}: not a run directory (no {p / 'stages'}): name a "
                              "finished or interrupted run's directory, e.g. runs/cutoff-<hash>")
        if p.resolve() == run_dir.resolve():
            raise ConfigError(f"--reuse {p}: that is this run's own directory; name another "
                              "run's directory")
        out.append(p)
    return tuple(out)


# options that say where this machine keeps runs, not what the run computes: the command
# recorded in results.json (and quoted in the README) leaves them out, so that it reruns
# anywhere (--reuse only copies finished stages that the run would compute the same)
LOCAL_OPTIONS = ("--out", "--reuse")


def portable_args(args: list[str]) -> list[str]:
    """``outlearn run``'s arguments without the local ones (:data:`LOCAL_OPTIONS`, in the
    ``--opt VALUE`` and ``--opt=VALUE`` forms): ``[cfg, --out, /tmp/x, --workers, 2]`` ->
    ``[cfg, --workers, 2]``."""
    kept: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in LOCAL_OPTIONS:
            skip = True
        elif not a.startswith(tuple(o + "=" for o in LOCAL_OPTIONS)):
            kept.append(a)
    return kept


def run_study(name: str, data: dict, out: Path, source: str = "<dict>",
              command: str | None = None, quiet: bool = False, workers: int = 1,
              address: str | None = None, backend: str = "ray",
              reuse: Iterable[Path] = ()) -> Path:
    """Validate, run and report a study; returns the report path. ``workers`` > 1 or a Ray
    ``address`` run independent stages at once, as Ray tasks or (``backend="processes"``)
    local processes (:mod:`outlearn.studies.parallel`). ``reuse``: other run directories
    whose finished stages (same name, inputs and code version) are copied, not computed
    (an ablation that changes only the evaluation reuses the trained students)."""
    load_components()
    study = STUDIES.get(name)
    cfg = parse_config(study.config_model, data, source)
    run_dir = Path(out) / f"{name}-{cfg.content_hash()}"
    from outlearn.atomic import check_output

    check_output(out, "out", kind="dir")
    others = check_reuse(reuse, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        return _run_locked(name, study, cfg, run_dir, source, command, quiet, workers, address,
                           backend, others)


def _run_locked(name: str, study: Any, cfg: Any, run_dir: Path, source: str,
                command: str | None, quiet: bool, workers: int, address: str | None,
                backend: str = "ray", reuse: tuple[Path, ...] = ()) -> Path:
    """:func:`run_study`'s work, while this process holds the run directory's lock."""
    from outlearn import __version__

    command = command or "outlearn run " + shlex.join(portable_args(sys.argv[2:]) or [source])
    resolved = {"study": name, **cfg.model_dump(mode="json")}
    atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2, sort_keys=True))
    t0 = time.time()
    executor = make_executor(workers, address, backend)
    ctx = RunContext(run_dir, quiet=quiet, executor=executor, reuse=reuse)
    interrupted = False
    try:
        sections = study.run(cfg, ctx)
    except KeyboardInterrupt:
        interrupted = True
        raise Stopped(f"stopped; the stages finished so far are kept in {run_dir / 'stages'}: "
                      "rerun the same command to resume") from None
    finally:
        if isinstance(executor, RayPool | Processes):
            executor.close(now=interrupted)
    meta = {"outlearn": __version__, "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpus": os.cpu_count(), "workers": address or workers, "backend": backend,
            "students on": student_device(), "run_dir": str(run_dir),
            "seconds (this invocation)": round(time.time() - t0, 1),
            "seconds (all stages, every invocation)": total_seconds(ctx.stage_seconds)}
    date = now()
    provenance = {"date": date.replace("T", " "), "outlearn": release(),
                  "code": source_hash(), "config": cfg.content_hash()}
    report = render_report(run_dir / "report.html", f"outlearn: {study.description}",
                           sections, command, resolved, meta,
                           setting={"study": name, **setting_rows(cfg)}, provenance=provenance)
    write_results(run_dir / "results.json", name, cfg.content_hash(), command, sections, meta,
                  date=date, config=resolved)
    summary = summary_text(sections)
    atomic_write_text(run_dir / "summary.txt", summary + "\n")
    if not quiet:
        print(summary)
    return report


def run_from_toml(path: Path, out: Path = Path("runs"), workers: int = 1,
                  address: str | None = None, backend: str = "ray",
                  reuse: Iterable[Path] = ()) -> Path:
    name, data = read_study_toml(path)
    return run_study(name, data, out, source=str(path), workers=workers, address=address,
                     backend=backend, reuse=reuse)
