"""What every study of students trained on teacher histories shares.

The config sections (task family, teacher, tasks, the student and its training, the
in-context evaluation) and the stages built from them: collect the teacher's histories,
train a student on a history file, run students and references in context on the
held-out tasks. A study (cut-off, context length, ...) composes these through
:class:`~outlearn.studies.base.RunContext` stages and adds only what its claim needs.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
from pydantic import Field, model_validator

from outlearn.collect import CollectConfig, EnvSection, TasksSection, TeacherSection, collect
from outlearn.config import Config, Seed
from outlearn.envs import make_family
from outlearn.evaluation import metrics as M
from outlearn.evaluation.baselines import make_baseline, make_teacher, stay_action
from outlearn.evaluation.evaluate import LearnerSpec, run_learner
from outlearn.report.figures import curves_figure
from outlearn.report.section import Cell
from outlearn.studies.verdicts import Verdict, in_context_verdict

if TYPE_CHECKING:
    from outlearn.studies.base import RunContext

__all__ = [
    "EvalSection", "Setting", "StudentSection", "TeacherStudyConfig", "collect_histories",
    "collect_stage", "evaluate_by_setting", "references_stage", "students_by_setting",
    "train_by_setting",
    "compare_episodes", "data_text", "eval_students", "improvement_notes", "improvement_row",
    "make_family", "mean_optimum",
    "run_references", "run_text", "students_figure", "held_out_tasks", "training_tasks",
    "train_student",
]


class StudentSection(Config):
    """The student and its training (see :class:`outlearn.students.TrainConfig`)."""

    kind: str = Field("ad", description="a registered student: 'ad', 'adq', 'dpt', 'gru' "
                      "(`outlearn explain students`)")
    preset: str = Field("small", description="named sizes for ad and adq: 'small' (the CPU "
                        "default) or 'paper' (AD's published model)")
    model: dict[str, Any] = Field(default_factory=dict, description="the model's settings over "
                                  "the preset's (`outlearn explain students/<kind>`)")
    context_len: int = Field(60, ge=2, description="steps; cut to the history's length")
    labels: str = Field("actions", description="training targets, as train's data.labels: "
                        "'actions', 'probs', 'optimal' or 'gap'")
    train_steps: int = Field(500, ge=1, description="optimiser steps per student")
    batch_size: int = Field(16, ge=1, description="windows per optimiser step")
    lr: float = Field(1e-3, gt=0, description="peak learning rate (AdamW, warm-up then cosine "
                      "decay to 0)")
    warmup_steps: int = Field(50, ge=0, description="steps of linear warm-up (capped at "
                              "train_steps)")
    val_fraction: float = Field(0.0, ge=0, lt=1, description="share of training learners held "
                                "out for a validation loss (0: none)")
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints (an "
                                  "interrupted study resumes from the last one)")
    shards: int = Field(2, ge=1, description="slices of each batch (must divide batch_size): "
                        "2 lets both CPU cores share a step; 1 on a GPU, where each slice "
                        "costs its own kernel launches")

    def train_config(self, history: Path, env: str, seed: int, out: Path,
                     context_len: int, threads: int | None, gap_episodes: int = 1) -> Any:
        from outlearn.students.train import TrainConfig

        return TrainConfig.model_validate({
            "history": history, "env": env, "seed": seed, "out": out, "threads": threads,
            "student": {"kind": self.kind, "preset": self.preset, "model": self.model},
            "data": {"context_len": context_len, "labels": self.labels,
                     "batch_size": self.batch_size, "val_fraction": self.val_fraction,
                     "gap_episodes": gap_episodes},
            "optim": {"lr": self.lr, "total_steps": self.train_steps,
                      "warmup_steps": min(self.warmup_steps, self.train_steps)},
            "checkpoint_every": self.checkpoint_every, "val_every": self.train_steps,
            "shards": self.shards})

    def check(self, context_len: int | None = None) -> None:
        """Refuse an unknown kind, preset, model key or label now, not after collection."""
        from outlearn.students.train import model_config

        n = context_len or self.context_len
        tc = self.train_config(Path("unused.h5"), "unused", 0, Path("unused"), n, None)
        model_config(tc.student, n)


class EvalSection(Config):
    """The in-context evaluation on the held-out tasks."""

    episodes: int = Field(ge=1, description=">= 3x every cut and >= teacher_episodes")
    seeds: list[Seed] = Field(default=[0], min_length=1, description="evaluation seeds: each "
                              "student and reference runs once per seed on every held-out task")
    last_n: int | None = Field(None, ge=1, description="episodes of the asymptote (10%)")
    mode: Literal["sample", "greedy"] = Field(
        "sample", description="how students act: 'sample' from their output, or its argmax "
        "('greedy')")


class TeacherStudyConfig(Config):
    """Teacher histories on train tasks, students trained on them (one per seed), run in
    context on held-out tasks next to the teacher run fresh and the baselines."""

    env: EnvSection = Field(description="the task family ([env] table, as collect's)")
    teacher: TeacherSection = Field(description="the teacher whose histories the students "
                                    "learn from, also run fresh as a reference ([teacher] table)")
    tasks: TasksSection = Field(description="train tasks (histories to learn from) and "
                                "held-out test tasks (evaluation) ([tasks] table)")
    learners_per_task: int = Field(1, ge=1, description="teacher runs recorded per task")
    teacher_episodes: int = Field(ge=2, description="the full horizon of the histories")
    seed: Seed = Field(0, description="seed of the teacher learners' keys (the collection)")
    student: StudentSection = Field(default_factory=StudentSection,
                                    description="the student and its training ([student] table)")
    eval: EvalSection = Field(description="the in-context evaluation ([eval] table)")
    train_seeds: list[Seed] = Field(description="one student per seed and setting (at least 2 "
                                    "distinct: CIs are over students)")
    resolution: float = Field(0.1, gt=0, le=1, description="fraction of optimal that matters")
    threads: int | None = Field(None, ge=1, description="threads of each student's training, "
                                "as train's threads (unset: $OUTLEARN_TORCH_THREADS, which "
                                "--workers sets to 1, else every core)")

    def judged_tasks(self) -> int:
        """How many tasks the students are judged on: the held-out ones (a study that
        judges them elsewhere says so here)."""
        return self.tasks.n_test

    @model_validator(mode="after")
    def _check_common(self) -> TeacherStudyConfig:
        if len(set(self.train_seeds)) < 2:
            raise ValueError(f"train_seeds={self.train_seeds}: give at least 2 distinct seeds "
                             "(one student per seed), e.g. train_seeds = [0, 1]")
        if self.tasks.n_train < 1 or self.judged_tasks() < 1:
            raise ValueError("tasks.n_train and tasks.n_test must both be >= 1 (students train "
                             "on train tasks and are evaluated on held-out test tasks)")
        if self.eval.episodes < self.teacher_episodes:
            raise ValueError(
                f"eval.episodes={self.eval.episodes} is shorter than the teacher's horizon "
                f"teacher_episodes={self.teacher_episodes}: raise eval.episodes to at least "
                f"{self.teacher_episodes}")
        if self.eval.last_n is not None and self.eval.last_n > self.eval.episodes:
            raise ValueError(f"eval.last_n={self.eval.last_n} > eval.episodes: lower it")
        family = make_family(self.env)  # unknown names: the registries' ConfigError
        make_teacher(self.teacher.name, family, **self.teacher.kwargs)
        self.student.check()
        from outlearn.resources import check_memory, estimate_in_context

        # refuse absurd sizes now, before the collection and the training run
        check_memory(estimate_in_context(family, self.judged_tasks(), len(self.eval.seeds),
                                         self.eval.episodes, len(self.train_seeds) + 4,
                                         "eval.episodes, eval.seeds or tasks.n_test"))
        return self


def held_out_tasks(family: Any, tasks: TasksSection) -> np.ndarray:
    from outlearn.envs.base import split_tasks

    return split_tasks(family, tasks.seed, tasks.n_train, tasks.n_test)[1]


def training_tasks(family: Any, tasks: TasksSection) -> np.ndarray:
    from outlearn.envs.base import split_tasks

    return split_tasks(family, tasks.seed, tasks.n_train, tasks.n_test)[0]


def collect_histories(cfg: TeacherStudyConfig, d: Path, quiet: bool,
                      study: str = "cutoff") -> Path:
    """The teacher's full histories on the train and test tasks: one HDF5 file."""
    cc = CollectConfig(env=cfg.env, teacher=cfg.teacher, tasks=cfg.tasks,
                       learners_per_task=cfg.learners_per_task,
                       num_episodes=cfg.teacher_episodes, seed=cfg.seed, out=d / "full.h5")
    return collect(cc, progress=not quiet, created_by=f"outlearn study {study}")


def train_student(cfg: TeacherStudyConfig, history: Path, context_len: int, seed: int,
                  d: Path, quiet: bool, gap_episodes: int = 1,
                  student: StudentSection | None = None) -> Path:
    """One student on one history file; resumes from the checkpoints in ``d``.
    ``gap_episodes``: g of gap-g labels (used when the student's labels are "gap");
    ``student``: its section (default ``cfg.student``)."""
    from outlearn.students.train import train

    tc = (student or cfg.student).train_config(history, cfg.env.name, seed, d / "student",
                                               context_len, cfg.threads, gap_episodes)
    return train(tc, quiet=quiet)


def eval_students(cfg: TeacherStudyConfig, family: Any, ids: np.ndarray, ckpts: list[Path],
                  num_episodes: int | None = None, regret: bool = False) -> np.ndarray:
    """Returns (or per-episode regret) of every student on (eval seeds, tasks), stacked:
    (students, eval seeds, tasks, episodes): students and tasks are crossed, eval seeds
    nested in each (student, task) cell (see :mod:`outlearn.stats`)."""
    out = []
    for ck in ckpts:
        spec = LearnerSpec(name="student", kind="student", checkpoint=ck)
        r = run_learner(family, spec, ids, cfg.eval.seeds, num_episodes or cfg.eval.episodes,
                        mode=cfg.eval.mode)
        out.append(r[1] if regret else r[0])
    return np.stack(out, axis=0)


def run_references(cfg: TeacherStudyConfig, family: Any,
                   ids: np.ndarray) -> dict[str, np.ndarray]:
    """The teacher run fresh (its unseen continuation) and the baselines, each
    (eval seeds, tasks, episodes) on the same tasks and seeds as the students."""
    learners = {"teacher": make_teacher(cfg.teacher.name, family, **cfg.teacher.kwargs),
                "random": make_baseline("random", family),
                "optimum": make_baseline("oracle", family)}
    if stay_action(family) is not None:
        learners["no-op"] = make_baseline("noop", family)
    return {n: run_learner(family, lr, ids, cfg.eval.seeds, cfg.eval.episodes)[0]
            for n, lr in learners.items()}


def mean_optimum(family: Any, ids: np.ndarray) -> float:
    """The mean optimal episode return over tasks ``ids``."""
    import jax

    return float(np.mean(np.asarray(jax.vmap(family.optimal_return)(family.task_params(ids)))))


@overload
def improvement_row(label: str, curves: np.ndarray, n: int,
                    tol: None = None) -> tuple[dict[str, Cell], None]: ...


@overload
def improvement_row(label: str, curves: np.ndarray, n: int,
                    tol: float) -> tuple[dict[str, Cell], Verdict]: ...


def improvement_row(label: str, curves: np.ndarray, n: int,
                    tol: float | None = None) -> tuple[dict[str, Cell], Verdict | None]:
    """A table row of a learner's first ``n`` and last ``n`` episodes and its in-context
    improvement (last - first, with CIs); with a resolution ``tol``, also its
    :func:`~outlearn.studies.verdicts.in_context_verdict` (column "verdict")."""
    imp = M.in_context_improvement(curves, n)
    row: dict[str, Cell] = {"learner": label,
                            f"first {n} episodes": M.asymptote(curves[..., :n], n),
                            f"last {n} episodes": M.asymptote(curves, n), "improvement": imp}
    if tol is None:
        return row, None
    v = in_context_verdict(imp, tol)
    row["verdict"] = v.label
    return row, v


def compare_episodes(compare_n: int | None, episodes: int) -> int:
    """Episodes at each end of a run of ``episodes`` whose returns are compared (the
    configured ``compare_n``, default a tenth of the run)."""
    return M.last_episodes(episodes, compare_n)


def students_figure(path: Path, students: dict[str, np.ndarray], base: dict[str, np.ndarray],
                    title: str) -> Path:
    """Mean return curves with 95% bands: each student setting, the teacher, random."""
    lines = {label: M.mean_curve_ci(c) for label, c in students.items()}
    lines.update({name: M.mean_curve_ci(base[name]) for name in ("teacher", "random")})
    return curves_figure(path, lines, "episode", "return", None, title)


# ------------------------------------------------------------------ stages, composed
def collect_stage(cfg: TeacherStudyConfig, ctx: RunContext, study: str) -> Path:
    """The teacher's histories (train and held-out tasks), collected once per run."""
    return ctx.stage("collect", [cfg.env, cfg.teacher, cfg.tasks, cfg.learners_per_task,
                                 cfg.teacher_episodes, cfg.seed],
                     lambda d: collect_histories(cfg, d, ctx.quiet, study))


def references_stage(cfg: TeacherStudyConfig, ctx: RunContext, family: Any,
                     ids: np.ndarray, extra: list[Any] | None = None) -> dict[str, np.ndarray]:
    """The teacher run fresh and the baselines on the held-out tasks ``ids``
    (:func:`run_references`); ``extra``: stage inputs that say which tasks when they are
    not the held-out ones."""
    return ctx.stage("baselines", [cfg.env, cfg.tasks, cfg.eval, cfg.teacher, *(extra or [])],
                     lambda d: run_references(cfg, family, ids))


@dataclass(frozen=True)
class Setting:
    """One student setting of a study: the history it trains on, its context (steps), the
    g of its gap-g labels, extra stage inputs that tell settings apart, and the student
    (None: ``cfg.student``; a study of several students names each one's section, which
    then enters the inputs of its train and evaluate stages)."""

    history: Path
    context_len: int
    gap_episodes: int = 1
    extra: tuple[Any, ...] = field(default_factory=tuple)
    student: StudentSection | None = None


K = TypeVar("K", bound=Hashable)


def train_by_setting(cfg: TeacherStudyConfig, ctx: RunContext,
                     settings: dict[K, Setting]) -> dict[K, list[Path]]:
    """One student per (setting, train seed), as independent stages (at once with
    ``--workers``); returns each setting's checkpoints, in train-seed order."""
    quiet = ctx.quiet or ctx.executor.workers > 1
    runs = [(key, seed) for key in settings for seed in cfg.train_seeds]
    ckpts = ctx.stages(
        "train", [[str(settings[k].history), settings[k].context_len,
                   settings[k].student or cfg.student, seed, cfg.env, *settings[k].extra]
                  for k, seed in runs],
        [lambda d, st=settings[k], seed=seed: train_student(
            cfg, st.history, st.context_len, seed, d, quiet, st.gap_episodes, st.student)
         for k, seed in runs])
    n = len(cfg.train_seeds)
    return {k: ckpts[i * n:(i + 1) * n] for i, k in enumerate(settings)}


def students_by_setting(cfg: TeacherStudyConfig, ctx: RunContext, ids: np.ndarray,
                        settings: dict[K, Setting]) -> dict[K, np.ndarray]:
    """One student per (setting, train seed), then each setting's students in context on
    the held-out tasks ``ids``: independent stages (run at once with ``--workers``).
    Returns each setting's returns, (students x eval seeds, tasks, episodes)."""
    return evaluate_by_setting(cfg, ctx, ids, settings, train_by_setting(cfg, ctx, settings))


def evaluate_by_setting(cfg: TeacherStudyConfig, ctx: RunContext, ids: np.ndarray,
                        settings: dict[K, Setting],
                        per: dict[K, list[Path]]) -> dict[K, np.ndarray]:
    """Each setting's trained students ``per`` (:func:`train_by_setting`) in context on the
    held-out tasks ``ids``, one stage per student; returns as :func:`students_by_setting`."""
    named = lambda k: [] if settings[k].student is None else [settings[k].student]  # noqa: E731
    # one evaluation stage per student, so that all of them can run at once
    flat = [(k, p) for k in settings for p in per[k]]
    curves = ctx.stages(
        "evaluate", [[cfg.env, cfg.tasks, cfg.eval, [str(p)], *named(k)] for k, p in flat],
        [lambda d, p=p: eval_students(cfg, make_family(cfg.env), ids, [p]) for _, p in flat])
    return {k: np.concatenate([c for (kk, _), c in zip(flat, curves, strict=True) if kk == k])
            for k in settings}


def improvement_notes(n: int, tol: float, resolution: float, optimum: float) -> str:
    """The note that explains :func:`improvement_row` 's columns and verdict."""
    return (f"Improvement: each (student, task) cell's mean return over its last {n} "
            f"episodes minus its first {n} (eval seeds averaged), averaged, with a 95% CI "
            "over students and tasks (crossed). "
            f"Resolution: {tol:.3g} = {resolution:g} x the mean optimal return {optimum:.3g}; "
            "a student learns in context when the CI's lower end is above it.")


def data_text(cfg: TeacherStudyConfig) -> str:
    """The teacher-data part of a report's setting line."""
    return (f"{cfg.env.name} {cfg.env.kwargs or ''}, teacher {cfg.teacher.name} "
            f"{cfg.teacher.kwargs or ''}: {cfg.tasks.n_train} train / {cfg.tasks.n_test} "
            f"held-out tasks x {cfg.learners_per_task} teacher learners, "
            f"{cfg.teacher_episodes} episodes")


def run_text(cfg: TeacherStudyConfig) -> str:
    """The training-and-evaluation part of a report's setting line."""
    return (f"{cfg.student.train_steps} training steps, seeds {cfg.train_seeds}; run in "
            f"context for {cfg.eval.episodes} episodes x eval seeds {cfg.eval.seeds}")
