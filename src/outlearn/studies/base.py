"""Studies: a study is a config plus a short function that tests one or more claims.

A study registers itself with ``STUDIES.register(name)`` on a :class:`Study` instance:
its ``config_model`` (a :class:`outlearn.config.Config`) validates the TOML, and
``run(cfg, ctx)`` composes collect/train/evaluate through ``ctx.stage`` (cached by the
hash of each stage's inputs, so a re-run skips finished stages and an interrupted run
resumes) and returns report :class:`~outlearn.report.section.Section` s.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from outlearn.atomic import atomic_write_bytes, atomic_write_text
from outlearn.config import Config
from outlearn.report.section import Section
from outlearn.studies.parallel import Executor, Serial

T = TypeVar("T")


def inputs_hash(inputs: Any) -> str:
    """A stable hash of a stage's inputs (configs, dicts, lists, numbers, strings)."""

    def norm(x: Any) -> Any:
        if isinstance(x, Config):
            return x.model_dump(mode="json")
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [norm(v) for v in x]
        if isinstance(x, Path):
            return str(x)
        return x

    blob = json.dumps(norm(inputs), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _read_seconds(path: Path) -> float | None:
    """Seconds recorded for a stage (None where none were: a stage from an older version)."""
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return None


def run_stage(d: Path, fn: Callable[[Path], T]) -> T:
    """Run one stage in ``d`` (in this process or a worker): its result is written
    atomically when ``fn`` returns; the seconds it took are added to ``d/seconds.txt``
    even when it is interrupted, so a resumed stage's time is whole."""
    clock = d / "seconds.txt"
    t0 = time.perf_counter()
    try:
        result = fn(d)
    finally:
        before = _read_seconds(clock) or 0.0
        atomic_write_text(clock, f"{round(before + time.perf_counter() - t0, 3)}\n")
    atomic_write_bytes(d / "result.pkl", pickle.dumps(result))
    return result


@dataclass
class RunContext:
    """Where a study runs: its directory, and the stage cache."""

    run_dir: Path
    quiet: bool = False
    #: seconds each stage of this run has cost, summed over every invocation that ran it
    #: (an interrupted stage's time counts too), cached stages included; None: not recorded
    #: (a stage run by a version before this record existed)
    stage_seconds: dict[str, float | None] = field(default_factory=dict)
    #: runs independent stages (:meth:`stages`): serially here, or as Ray tasks
    executor: Executor = field(default_factory=Serial, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # a stage's closure may capture the context
        return {**self.__dict__, "executor": Serial()}

    def stage_dir(self, name: str, inputs: Any) -> Path:
        d = self.run_dir / "stages" / f"{name}-{inputs_hash(inputs)}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stage(self, name: str, inputs: Any, fn: Callable[[Path], T]) -> T:
        """Run ``fn(stage_dir)`` once per distinct ``inputs``; cache its (picklable) result.

        The result is written atomically after ``fn`` returns, so an interrupted stage
        is re-run on the next call; ``fn`` itself may resume from files it left in
        ``stage_dir`` (training resumes from its checkpoints).
        """
        return self.stages(name, [inputs], [fn])[0]

    def stages(self, name: str, inputs: list[Any], fns: list[Callable[[Path], T]]) -> list[T]:
        """:meth:`stage` for several independent stages: the ones not cached yet run through
        :attr:`executor` (at once, when it has several workers); results in input order."""
        dirs = [self.stage_dir(name, i) for i in inputs]
        todo = [k for k, d in enumerate(dirs) if not (d / "result.pkl").exists()]
        if todo:
            where = f" on {self.executor.workers} workers" if self.executor.workers > 1 else ""
            self.log(f"stage {name}: running {', '.join(dirs[k].name for k in todo)}{where}")
            calls = [lambda d=dirs[k], fn=fns[k]: run_stage(d, fn) for k in todo]
            done = lambda j: self.executor.workers > 1 and self.log(  # noqa: E731
                f"stage {name}: {dirs[todo[j]].name} done")
            self.executor.map(calls, done)
        out = []
        for d in dirs:
            self.stage_seconds[d.name] = _read_seconds(d / "seconds.txt")
            with open(d / "result.pkl", "rb") as f:
                out.append(pickle.load(f))
        return out

    def log(self, msg: str) -> None:
        if not self.quiet:
            from rich.console import Console

            Console(stderr=True).print(f"[dim]{msg}[/dim]")


def total_seconds(stage_seconds: dict[str, float | None]) -> str:
    """The run's compute time over its stages, saying how many have no record."""
    known = [v for v in stage_seconds.values() if v is not None]
    missing = len(stage_seconds) - len(known)
    text = f"{sum(known):.1f} over {len(known)} stages"
    return text + (f" ({missing} more ran without a time record)" if missing else "")


@dataclass(frozen=True)
class Study:
    """A registered study: a name, a one-line description, its config model and its run."""

    name: str
    description: str
    config_model: type[Config]
    run: Callable[[Any, RunContext], list[Section]]
