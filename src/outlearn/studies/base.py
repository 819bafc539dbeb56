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


def _read_seconds(path: Path) -> float:
    """Seconds recorded for a stage (0 where none were: a stage from an older version)."""
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return 0.0


@dataclass
class RunContext:
    """Where a study runs: its directory, and the stage cache."""

    run_dir: Path
    quiet: bool = False
    #: seconds each stage of this run has cost, summed over every invocation that ran it
    #: (an interrupted stage's time counts too), cached stages included
    stage_seconds: dict[str, float] = field(default_factory=dict)

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
        d = self.stage_dir(name, inputs)
        done = d / "result.pkl"
        clock = d / "seconds.txt"
        if done.exists():
            self.stage_seconds[d.name] = _read_seconds(clock)
            with open(done, "rb") as f:
                return pickle.load(f)
        self.log(f"stage {name}: running ({d.name})")
        t0 = time.perf_counter()
        try:
            result = fn(d)
        finally:  # an interrupted stage's time is kept and added to on resume
            spent = round(_read_seconds(clock) + time.perf_counter() - t0, 3)
            atomic_write_text(clock, f"{spent}\n")
            self.stage_seconds[d.name] = spent
        atomic_write_bytes(done, pickle.dumps(result))
        return result

    def log(self, msg: str) -> None:
        if not self.quiet:
            from rich.console import Console

            Console(stderr=True).print(f"[dim]{msg}[/dim]")


@dataclass(frozen=True)
class Study:
    """A registered study: a name, a one-line description, its config model and its run."""

    name: str
    description: str
    config_model: type[Config]
    run: Callable[[Any, RunContext], list[Section]]
