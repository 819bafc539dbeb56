"""The task-count study: how many training tasks does a student need to learn in context?

Claim 10 (AD's finding on Key-to-Door): no in-context learning with 18 or fewer training
tasks, some with 37-151, the best with about 1,200-2,400. The teacher's histories are
collected once, on the most tasks; each count keeps the learners of its first tasks
(:func:`~outlearn.histories.keep_train_tasks`), so every student is run on the same
held-out tasks. One student per count and seed; its in-context improvement (mean return
over its last ``n`` episodes - over its first ``n``) decides whether it learns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from outlearn.histories import keep_train_tasks
from outlearn.registry import STUDIES
from outlearn.report.section import Cell, Section
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    TeacherStudyConfig,
    collect_stage,
    compare_episodes,
    data_text,
    held_out_tasks,
    improvement_notes,
    improvement_row,
    make_family,
    mean_optimum,
    references_stage,
    run_text,
    students_by_setting,
    students_figure,
)
from outlearn.studies.verdicts import Verdict, task_count_verdict


class TaskCountConfig(TeacherStudyConfig):
    """``train_tasks``: the numbers of training tasks, each at most ``tasks.n_train``;
    ``none_up_to`` / ``learns_from``: the claim's bounds (AD: 18 and 37); ``compare_n``:
    episodes at each end of the run (default a tenth of ``eval.episodes``)."""

    train_tasks: list[int] = Field(min_length=1, description="numbers of training tasks, each "
                                   "in [1, tasks.n_train]: one student per number and train "
                                   "seed, on the histories of that many tasks")
    none_up_to: int = Field(18, ge=1, description="the claim: a student trained on this many "
                            "tasks or fewer does not learn in context (AD: 18)")
    learns_from: int = Field(37, ge=1, description="the claim: from this many tasks on it does "
                             "(AD: 37); above none_up_to")
    compare_n: int | None = Field(None, ge=1, description="episodes at each end of the "
                                  "evaluation whose returns are compared (unset: a tenth of "
                                  "eval.episodes)")

    @model_validator(mode="after")
    def _check(self) -> TaskCountConfig:
        bad = [n for n in self.train_tasks if not 1 <= n <= self.tasks.n_train]
        if bad:
            raise ValueError(f"train_tasks {bad} must lie in [1, tasks.n_train="
                             f"{self.tasks.n_train}]: raise tasks.n_train or lower them")
        if len(set(self.train_tasks)) != len(self.train_tasks):
            raise ValueError(f"train_tasks={self.train_tasks} has duplicates: remove them")
        if self.learns_from <= self.none_up_to:
            raise ValueError(f"learns_from={self.learns_from} must exceed none_up_to="
                             f"{self.none_up_to}")
        if 2 * compare_episodes(self.compare_n, self.eval.episodes) > self.eval.episodes:
            raise ValueError(f"compare_n={self.compare_n}: the first and last compare_n of "
                             f"eval.episodes={self.eval.episodes} overlap; lower it")
        return self


def subset(full: Path, n: int, n_all: int, d: Path) -> Path:
    """The history of the first ``n`` train tasks (the full file when ``n`` is all)."""
    if n == n_all:
        return full
    with keep_train_tasks(full, n, d / "tasks.h5") as h:
        return Path(h.path)


def run(cfg: TaskCountConfig, ctx: RunContext) -> list[Section]:
    """Collect on the most tasks, keep the first n per count, train, run in context, judge."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    full = collect_stage(cfg, ctx, "taskcount")
    counts = sorted(cfg.train_tasks)
    hists = {n: ctx.stage("subset", [str(full), n],
                          lambda d, n=n: subset(full, n, cfg.tasks.n_train, d))
             for n in counts}
    steps = min(cfg.student.context_len, cfg.teacher_episodes * family.episode_len)
    curves = students_by_setting(cfg, ctx, ids, {n: Setting(hists[n], steps) for n in counts})
    base = references_stage(cfg, ctx, family, ids)
    return [taskcount_section(cfg, family, ids, curves, base, ctx.run_dir / "taskcount.png")]


def taskcount_section(cfg: TaskCountConfig, family, ids: np.ndarray,
                      curves: dict[int, np.ndarray], base: dict[str, np.ndarray],
                      fig_path: Path) -> Section:
    optimum = mean_optimum(family, ids)
    tol, n = cfg.resolution * optimum, compare_episodes(cfg.compare_n, cfg.eval.episodes)
    verdicts: dict[float, Verdict] = {}
    rows: list[dict[str, Cell]] = []
    for count, cur in curves.items():
        row, verdicts[count] = improvement_row(f"student, {count} train tasks", cur, n, tol)
        rows.append(row)
    rows += [improvement_row(label, base[name], n)[0]
             for name, label in (("teacher", "teacher run fresh"), ("random", "random"))]
    verdict = task_count_verdict(verdicts, cfg.none_up_to, cfg.learns_from)
    fig = students_figure(fig_path, {f"{c} tasks": cur for c, cur in curves.items()}, base,
                          f"{cfg.env.name}: students by number of training tasks (95% CI)")
    s = cfg.student
    return Section(
        key="taskcount", title="Claim 10: task count",
        claim=f"A student trained on {cfg.none_up_to} or fewer tasks does not learn in "
              f"context; from {cfg.learns_from} tasks on it does.",
        setting=f"{data_text(cfg)}; students on the learners of the first "
                f"{sorted(curves)} train tasks: {s.kind} ({s.preset}), context "
                f"{s.context_len} steps, {run_text(cfg)}.",
        columns=["learner", f"first {n} episodes", f"last {n} episodes", "improvement",
                 "verdict"],
        rows=rows, verdict=verdict.label, verdict_reason=verdict.reason, outcome=verdict.outcome,
        figures=[fig],
        notes=[improvement_notes(n, tol, cfg.resolution, optimum)
               + " Every count trains for the same number of steps."])


STUDIES.register("taskcount")(Study(
    name="taskcount",
    description="task-count study: how many training tasks before a student learns in context?",
    config_model=TaskCountConfig,
    run=run,
))

__all__ = ["TaskCountConfig", "run"]
