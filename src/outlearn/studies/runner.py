"""`outlearn run CONFIG.toml`: resolve a study config, run it in its run directory, report.

The TOML names its study at the top level (``study = "cutoff"``); every other key is
validated by that study's config model. The run directory is
``<out>/<study>-<config hash>``: the same config resumes the same run.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
import tomllib
from pathlib import Path

from outlearn.atomic import atomic_write_text
from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.registry import ENVS, STUDENTS, STUDIES, TEACHERS
from outlearn.report.html import render_report, summary_text
from outlearn.report.results import write_results
from outlearn.studies.base import RunContext, total_seconds
from outlearn.studies.parallel import RayPool, make_executor


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
            obj = reg.get(name)
            doc = getattr(obj, "description", None) or (obj.__doc__ or "").strip().split("\n")[0]
            out.append(f"  {name:24s} {doc}")
    return "\n".join(out)


def read_study_toml(path: Path) -> tuple[str, dict]:
    if not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist: check the path")
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    if "study" not in data:
        raise ConfigError(f"{path}: missing key 'study': name the study, e.g. study = \"cutoff\"")
    return str(data.pop("study")), data


def run_study(name: str, data: dict, out: Path, source: str = "<dict>",
              command: str | None = None, quiet: bool = False, workers: int = 1,
              address: str | None = None) -> Path:
    """Validate, run and report a study; returns the report path. ``workers`` > 1 or a Ray
    ``address`` run independent stages at once (:mod:`outlearn.studies.parallel`)."""
    load_components()
    study = STUDIES.get(name)
    cfg = parse_config(study.config_model, data, source)
    run_dir = Path(out) / f"{name}-{cfg.content_hash()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    from outlearn import __version__

    command = command or "outlearn run " + shlex.join(sys.argv[2:] or [source])
    resolved = {"study": name, **cfg.model_dump(mode="json")}
    atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2, sort_keys=True))
    t0 = time.time()
    executor = make_executor(workers, address)
    ctx = RunContext(run_dir, quiet=quiet, executor=executor)
    try:
        sections = study.run(cfg, ctx)
    finally:
        if isinstance(executor, RayPool):
            executor.close()
    meta = {"outlearn": __version__, "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpus": os.cpu_count(), "workers": address or workers, "run_dir": str(run_dir),
            "seconds (this invocation)": round(time.time() - t0, 1),
            "seconds (all stages, every invocation)": total_seconds(ctx.stage_seconds)}
    report = render_report(run_dir / "report.html", f"outlearn: {study.description}",
                           sections, command, resolved, meta)
    write_results(run_dir / "results.json", name, cfg.content_hash(), command, sections, meta)
    summary = summary_text(sections)
    atomic_write_text(run_dir / "summary.txt", summary + "\n")
    if not quiet:
        print(summary)
    return report


def run_from_toml(path: Path, out: Path = Path("runs"), workers: int = 1,
                  address: str | None = None) -> Path:
    name, data = read_study_toml(path)
    return run_study(name, data, out, source=str(path), workers=workers, address=address)
