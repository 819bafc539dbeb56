"""What the bandit studies of regret share (claims 7 and 8: :mod:`outlearn.studies.source`,
:mod:`outlearn.studies.labels`).

A bandit study trains students on a source's histories of T pulls (one pull = one episode)
and runs each in context on held-out bandits for ``eval.episodes`` pulls (past T, the
window slides), beside the source run fresh on the same tasks and seeds. What it compares
is regret: each pull's pseudo-regret (the best arm's mean - the pulled arm's, exact for
bandits), summed. Stages: ``collect`` and ``train`` as every study of teacher histories,
``regret`` each student's per-pull regret, ``regret-references`` the source's and random's.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import Field, model_validator

from outlearn.evaluation import metrics as M
from outlearn.evaluation.baselines import make_baseline, make_teacher
from outlearn.evaluation.evaluate import run_learner
from outlearn.report.figures import CurvesPanel
from outlearn.stats import Estimate, crossed_mean_ci, crossed_ratio_ci
from outlearn.studies.base import RunContext
from outlearn.studies.common import (
    Setting,
    TeacherStudyConfig,
    eval_students,
    held_out_tasks,
    make_family,
    train_by_setting,
)

__all__ = ["BanditStudyConfig", "Regret", "cumulative", "regret_panel", "regret_references",
           "student_regret", "students_regret"]

K = TypeVar("K", bound=Hashable)


class BanditStudyConfig(TeacherStudyConfig):
    """A study of regret on a bandit family: ``within`` is the claim's tolerance."""

    within: float = Field(0.1, gt=0, lt=1, description="the claim's tolerance: regret within "
                          "this fraction of the source's counts as about equal to it")

    @model_validator(mode="after")
    def _check_bandit(self) -> BanditStudyConfig:
        family = make_family(self.env)
        if family.episode_len != 1 or family.num_obs != 1:
            raise ValueError(
                f"env {self.env.name!r} is not a bandit (one state, episodes of one pull): "
                "regret against the best arm needs one; use name = \"bernoulli-bandit\" or "
                "\"gaussian-bandit\" in [env]")
        return self


def students_regret(cfg: TeacherStudyConfig, ctx: RunContext,
                    runs: dict[K, tuple[TeacherStudyConfig, Setting]]) -> dict[K, np.ndarray]:
    """One student per (setting, train seed) (:func:`train_by_setting`), then each one's
    per-pull regret on its run's held-out tasks, as independent stages. ``runs``: each
    setting with the config it runs under (its env, teacher and tasks). Returns each
    setting's regret, (students, eval seeds, tasks, pulls)."""
    per = train_by_setting(cfg, ctx, {k: st for k, (_, st) in runs.items()})
    flat = [(k, p) for k in runs for p in per[k]]
    named = lambda k: [] if runs[k][1].student is None else [runs[k][1].student]  # noqa: E731
    out = ctx.stages(
        "regret", [[runs[k][0].env, runs[k][0].tasks, cfg.eval, [str(p)], *named(k)]
                   for k, p in flat],
        [lambda d, sub=runs[k][0], p=p: student_regret(sub, p) for k, p in flat])
    return {k: np.concatenate([r for (kk, _), r in zip(flat, out, strict=True) if kk == k])
            for k in runs}


def student_regret(cfg: TeacherStudyConfig, checkpoint: Path) -> np.ndarray:
    """One trained student's per-pull regret on ``cfg``'s held-out tasks, (1, eval seeds,
    tasks, pulls)."""
    family = make_family(cfg.env)
    return eval_students(cfg, family, held_out_tasks(family, cfg.tasks), [checkpoint],
                         regret=True)


def run_regret_references(cfg: TeacherStudyConfig) -> dict[str, np.ndarray]:
    """The source (``cfg.teacher``) run fresh and random on the held-out tasks: per-pull
    regret, each (eval seeds, tasks, pulls)."""
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    learners = {"source": make_teacher(cfg.teacher.name, family, **cfg.teacher.kwargs),
                "random": make_baseline("random", family)}
    return {n: run_learner(family, lr, ids, cfg.eval.seeds, cfg.eval.episodes)[1]
            for n, lr in learners.items()}


def regret_references(cfg: TeacherStudyConfig, ctx: RunContext) -> dict[str, np.ndarray]:
    """:func:`run_regret_references` as a stage."""
    return ctx.stage("regret-references", [cfg.env, cfg.tasks, cfg.eval, cfg.teacher],
                     lambda d: run_regret_references(cfg))


def cumulative(cells: np.ndarray, n: int) -> np.ndarray:
    """Each cell's cumulative regret over its first ``n`` pulls: (..., pulls) -> (...)."""
    return cells[..., :n].sum(axis=-1)


class Regret:
    """A student's (or a fresh learner's) per-pull regret, read against a source's.

    ``curves``: (students, eval seeds, tasks, pulls) of trained students, or (seeds,
    tasks, pulls) of a fresh learner; ``source``: the source's (seeds, tasks, pulls) on
    the same tasks. Cells and CIs as in :mod:`outlearn.stats`: students and tasks crossed,
    eval seeds averaged in each cell; the source enters a ratio as its mean on each task.
    """

    def __init__(self, curves: np.ndarray, source: np.ndarray):
        self.curves, self.cells = curves, M.cells(curves)
        self.source_per_task = M.per_task(source)

    def total(self, n: int) -> Estimate:
        """Mean cumulative regret at pull ``n``, with its crossed CI."""
        return crossed_mean_ci(cumulative(self.cells, n))

    def ratio(self, n: int) -> Estimate:
        """Cumulative regret at pull ``n`` / the source's, with its crossed CI."""
        return crossed_ratio_ci(cumulative(self.cells, n), cumulative(self.source_per_task, n))


def regret_panel(title: str, curves: dict[str, np.ndarray]) -> CurvesPanel:
    """A figure panel of mean cumulative regret with 95% bands, one curve per learner."""
    return CurvesPanel(title, "cumulative regret",
                       {k: M.mean_curve_ci(np.cumsum(c, axis=-1)) for k, c in curves.items()})
