"""Studies: a study is a config plus a short function that tests one or more claims.

A study registers itself with ``STUDIES.register(name)`` on a :class:`Study` instance:
its ``config_model`` (a :class:`outlearn.config.Config`) validates the TOML, and
``run(cfg, ctx)`` composes collect/train/evaluate through ``ctx.stage`` (cached by the
hash of each stage's inputs and of the source of the code it runs, so a re-run skips
finished stages and an interrupted run resumes) and returns report
:class:`~outlearn.report.section.Section` s.

A stage lives in ``<run dir>/stages/<name>-<key>/``; ``key`` hashes its inputs (paths
inside the run directory taken relative to it) and its code version (:data:`STAGE_CODE`).
Its result is data, never a pickle: ``result.json`` (+ ``result.npz`` for arrays), see
:mod:`outlearn.studies.store`; paths inside the run directory are stored relative to it,
so a run directory moved or copied elsewhere resumes with its stages cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from outlearn.atomic import atomic_write_text
from outlearn.config import Config
from outlearn.provenance import file_digest, source_hash
from outlearn.report.section import Section
from outlearn.studies.parallel import Executor, Serial
from outlearn.studies.store import RESULT_JSON, RunPaths, is_finished, read_result, write_result

T = TypeVar("T")
K = TypeVar("K")
#: a stage's work: called with its directory (``fn(stage_dir)``); typed ``...`` because
#: studies bind their loop variables as defaults (``lambda d, s=s: ...``)
StageFn = Callable[..., T]

#: the result file of stages written by versions before results were data: never read
OLD_RESULT = "result.pkl"


def inputs_hash(inputs: Any, run_dir: str | Path | None = None) -> str:
    """A stable hash of a stage's inputs (configs, dicts, lists, numbers, strings).

    With ``run_dir``, a ``Path`` or ``str`` inside the run directory (see
    :class:`~outlearn.studies.store.RunPaths`) is hashed relative to it, so the hash does
    not change when the run directory moves. Without it, the hash is what it always was.
    """
    paths = RunPaths(run_dir) if run_dir is not None else None

    def norm(x: Any) -> Any:
        if isinstance(x, Config):
            return norm(x.model_dump(mode="json"))
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [norm(v) for v in x]
        if isinstance(x, Path | str):
            rel = paths.relative(x) if paths is not None else None
            if rel is not None:
                return {"$run": rel}
            return str(x) if isinstance(x, Path) else x
        return x

    blob = json.dumps(norm(inputs), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ------------------------------------------------------------------ code versions
_LOOP = ("outlearn.core", "outlearn.rng", "outlearn.rollout")  # types, keys, the rollout loop
_TEACHER_DATA = ("outlearn.collect", "outlearn.envs", "outlearn.teachers", "outlearn.histories",
                 *_LOOP, "outlearn.config", "outlearn.registry")
_IN_CONTEXT = ("outlearn.evaluation", "outlearn.envs", "outlearn.teachers", *_LOOP,
               "outlearn.histories", "outlearn.stats", "outlearn.registry")
_TRAIN = ("outlearn.studies.common", "outlearn.students", "outlearn.histories",
          *_LOOP, "outlearn.config", "outlearn.registry")
_CATEGORICAL = ("outlearn.studies.selfdistill", "outlearn.selfdistill.categorical",
                "outlearn.selfdistill.sampling", "outlearn.config")

#: stage name -> the outlearn modules and subpackages whose source the
#: stage's result depends on: the functions its ``fn`` calls, read from the studies. Glue in
#: a study's own ``run`` (which arguments it passes) is covered by the stage's inputs; a
#: function that a stage calls and that lives in a study module puts that module here.
#: A stage not listed depends on the whole outlearn package (never a stale result);
#: ``ctx.stage(..., code=[...])`` overrides the entry. A source edit to any module listed
#: gives the stage a new key: it runs again, in a new directory.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    # the teacher's histories (studies.common.collect_histories -> outlearn.collect)
    "collect": ("outlearn.studies.common", *_TEACHER_DATA),
    "h-collect": ("outlearn.studies.common", *_TEACHER_DATA),
    # studies.cutting.cut_history / early_steps / episode_boundary: history cuts, data
    # ceiling, random's CI; studies.cutspec: a cut's name, the episodes a length cut keeps
    "cut": ("outlearn.studies.cutting", "outlearn.studies.cutspec", "outlearn.studies.common",
            *_IN_CONTEXT),
    # studies.greedy_teacher.greedy_teacher_of_history: the teacher replayed to the end of a
    # history (a cut, or the whole of it), frozen and run greedily through the rollout loop
    "teacher-greedy": ("outlearn.studies.greedy_teacher", "outlearn.identify", *_IN_CONTEXT),
    # studies.common.run_references (actions: its permuted families, studies.actions)
    "baselines": ("outlearn.studies.common", "outlearn.studies.actions", *_IN_CONTEXT),
    "h-reference": _IN_CONTEXT,
    # studies.common.train_student -> StudentSection.train_config, students.train
    "train": _TRAIN,
    "h-train": _TRAIN,
    # studies.common.eval_students: students run in context (actions: permuted families)
    "evaluate": ("outlearn.studies.common", "outlearn.studies.actions", "outlearn.students",
                 *_IN_CONTEXT),
    "h-evaluate": ("outlearn.studies.common", "outlearn.students", *_IN_CONTEXT),
    # studies.noise.primed_returns: students run in context from a teacher's last episodes
    "primed": ("outlearn.studies.noise", "outlearn.studies.common", "outlearn.students",
               *_IN_CONTEXT),
    # studies.noise.noiseless_returns: the noise teacher at eps 0 run fresh
    "noiseless": ("outlearn.studies.noise", *_IN_CONTEXT),
    # studies.identify: the cut, the family's fit, the held-out replay and continuation,
    # the fitted member run fresh (identify.* and the teacher it builds)
    "id-cut": ("outlearn.studies.identify", "outlearn.histories", *_LOOP),
    "id-fit": ("outlearn.studies.identify", "outlearn.identify", "outlearn.histories",
               "outlearn.teachers", "outlearn.config", "outlearn.registry"),
    "id-heldout": ("outlearn.studies.identify", "outlearn.identify", *_IN_CONTEXT),
    "id-fresh": ("outlearn.studies.identify", "outlearn.identify", *_IN_CONTEXT),
    # studies.deep_teacher: collection, cut and the teachers' window curves, students
    # continuing held-out histories or starting from scratch, the teacher run fresh
    "dt-collect": ("outlearn.studies.deep_teacher", *_TEACHER_DATA),
    "dt-cut": ("outlearn.studies.deep_teacher", "outlearn.histories", "outlearn.evaluation",
               *_LOOP),
    "dt-continue": ("outlearn.studies.deep_teacher", "outlearn.students", *_IN_CONTEXT),
    "dt-scratch": ("outlearn.studies.deep_teacher", "outlearn.students", *_IN_CONTEXT),
    "dt-fresh": ("outlearn.studies.deep_teacher", *_IN_CONTEXT),
    # studies.bandit.student_regret / run_regret_references: per-pull regret (claims 7, 8)
    "regret": ("outlearn.studies.bandit", "outlearn.studies.common", "outlearn.students",
               *_IN_CONTEXT),
    "regret-references": ("outlearn.studies.bandit", "outlearn.studies.common", *_IN_CONTEXT),
    # studies.subsample.subsample, studies.taskcount.subset: history transforms
    "subsample": ("outlearn.studies.subsample", "outlearn.histories", *_LOOP),
    "subset": ("outlearn.studies.taskcount", "outlearn.histories", *_LOOP),
    # studies.selftrain.run_one -> selfdistill.addition
    "loops": ("outlearn.studies.selftrain", "outlearn.selfdistill", "outlearn.config"),
    # selfdistill.categorical.run_finite from CategoricalConfig.p0 (studies.selfdistill)
    "drift": _CATEGORICAL,
    "fixation": _CATEGORICAL,
    "diversity": _CATEGORICAL,
    # studies.lmstudy.run_ngram / run_transformer: one setting's n-gram / char transformer loops
    "lm-ngram": ("outlearn.studies.lmstudy", "outlearn.selfdistill", "outlearn.config"),
    "lm-transformer": ("outlearn.studies.lmstudy", "outlearn.selfdistill", "outlearn.config"),
}

#: what a stage not in :data:`STAGE_CODE` depends on: all of outlearn
WHOLE_PACKAGE = ("outlearn",)


def stage_modules(name: str) -> tuple[str, ...]:
    """The modules stage ``name`` depends on (:data:`STAGE_CODE`; all of outlearn if absent)."""
    return STAGE_CODE.get(name, WHOLE_PACKAGE)


def code_version(modules: Iterable[str]) -> str:
    """The code version of a stage that runs ``modules``: a hash of their source."""
    return source_hash(modules, file_digest)


def stage_key(name: str, inputs: Any, run_dir: str | Path,
              code: Iterable[str] | None = None, version: str | None = None) -> str:
    """The key of stage ``name``: its inputs (relative to ``run_dir``) and code version
    (``version``: one recorded by a finished run, where this checkout's code may differ)."""
    if version is None:
        version = code_version(tuple(code) if code is not None else stage_modules(name))
    blob = f"{inputs_hash(inputs, run_dir)}:{version}".encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _read_seconds(path: Path) -> float | None:
    """Seconds recorded for a stage (None where none were: a stage from an older version)."""
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return None


def run_stage(d: Path, fn: Callable[[Path], T], run_dir: Path | None = None,
              meta: dict[str, Any] | None = None) -> T:
    """Run one stage in ``d`` (in this process or a worker): its result is written
    atomically as data (:func:`~outlearn.studies.store.write_result`) when ``fn`` returns;
    the seconds it took are added to ``d/seconds.txt`` even when it is interrupted, so a
    resumed stage's time is whole. ``run_dir``: the run directory that paths in the result
    are stored relative to (default: ``d``'s grandparent, ``<run dir>/stages/<d>``)."""
    clock = d / "seconds.txt"
    t0 = time.perf_counter()
    try:
        result = fn(d)
    finally:
        before = _read_seconds(clock) or 0.0
        atomic_write_text(clock, f"{round(before + time.perf_counter() - t0, 3)}\n")
    write_result(d, result, d.parent.parent if run_dir is None else run_dir, d.name, meta)
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
    #: other run directories whose finished stages this run copies instead of computing
    #: (a stage with the same name, inputs and code version: :meth:`stages`)
    reuse: tuple[Path, ...] = ()

    def __getstate__(self) -> dict[str, Any]:  # a stage's closure may capture the context
        return {**self.__dict__, "executor": Serial()}

    def stage_dir(self, name: str, inputs: Any, code: Iterable[str] | None = None) -> Path:
        """``<run dir>/stages/<name>-<key>`` (created), key: :func:`stage_key`."""
        d = self.run_dir / "stages" / f"{name}-{stage_key(name, inputs, self.run_dir, code)}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stage(self, name: str, inputs: Any, fn: StageFn[T],
              code: Iterable[str] | None = None) -> T:
        """Run ``fn(stage_dir)`` once per distinct ``inputs`` and code version; cache its
        result, which must be data (see :mod:`outlearn.studies.store`).

        The result is written atomically after ``fn`` returns, so an interrupted stage
        is re-run on the next call; ``fn`` itself may resume from files it left in
        ``stage_dir`` (training resumes from its checkpoints). ``code``: the outlearn
        modules the stage runs, overriding :data:`STAGE_CODE`.
        """
        return self.stages(name, [inputs], [fn], code)[0]

    def stages(self, name: str, inputs: list[Any], fns: Sequence[StageFn[T]],
               code: Iterable[str] | None = None) -> list[T]:
        """:meth:`stage` for several independent stages: the ones not cached yet run through
        :attr:`executor` (at once, when it has several workers); results in input order."""
        code = tuple(code) if code is not None else None
        dirs = [self.stage_dir(name, i, code) for i in inputs]
        for d in dirs:
            if not is_finished(d):
                self._copy_reused(d)
        todo = [k for k, d in enumerate(dirs) if not is_finished(d)]
        if todo:
            old = [dirs[k].name for k in todo if (dirs[k] / OLD_RESULT).exists()]
            if old:
                self.log(f"stage {name}: ignoring {OLD_RESULT} in {', '.join(old)} (pickled "
                         "results are never loaded): running again")
            where = f" on {self.executor.workers} workers" if self.executor.workers > 1 else ""
            self.log(f"stage {name}: running {', '.join(dirs[k].name for k in todo)}{where}")
            modules = code if code is not None else stage_modules(name)
            meta = {"name": name, "code": list(modules), "code_version": code_version(modules)}
            calls = [lambda d=dirs[k], fn=fns[k], run_dir=self.run_dir: run_stage(
                d, fn, run_dir, meta) for k in todo]

            def done(j: int) -> None:
                if self.executor.workers > 1:
                    self.log(f"stage {name}: {dirs[todo[j]].name} done")

            self.executor.run(calls, done)
        out = []
        for d in dirs:
            self.stage_seconds[d.name] = _read_seconds(d / "seconds.txt")
            out.append(read_result(d, self.run_dir))
        return out

    def _copy_reused(self, d: Path) -> None:
        """Copy the finished stage ``d.name`` from the first of :attr:`reuse` that has it into
        ``d`` (its key holds its inputs, relative to the run dir, and its code version, so
        a stage of that name is the same computation); the result file is copied last, so an
        interrupted copy is not a finished stage."""
        for other in self.reuse:
            src = Path(other) / "stages" / d.name
            if not is_finished(src):
                continue
            for f in sorted(src.rglob("*")):
                rel = f.relative_to(src)
                if f.is_dir():
                    (d / rel).mkdir(parents=True, exist_ok=True)
                elif rel != Path(RESULT_JSON):
                    (d / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, d / rel)
            shutil.copy2(src / RESULT_JSON, d / (RESULT_JSON + ".part"))
            os.replace(d / (RESULT_JSON + ".part"), d / RESULT_JSON)
            self.log(f"stage {d.name}: reused from {other}")
            return

    def stage_each(self, name: str, keys: Iterable[K], inputs: Callable[[K], Any],
                   fn: Callable[[K, Path], T], code: Iterable[str] | None = None) -> dict[K, T]:
        """:meth:`stages` once per key: stage inputs ``inputs(key)``, work ``fn(key,
        stage_dir)``; the results by key, in the keys' order."""
        keys = list(keys)
        res = self.stages(name, [inputs(k) for k in keys],
                          [functools.partial(fn, k) for k in keys], code)
        return dict(zip(keys, res, strict=True))

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
