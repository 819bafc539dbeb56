"""The subsampling study: is AD's data efficiency an artefact of skipping episodes?

Claim 5 (AD's own text: the gain "is a byproduct of distilling a multi-stream algorithm
into a single-stream one"; its single-stream result kept every 10th of 2,000 episodes):
train a student on the teacher's histories with only every k-th episode kept, and it
learns about k times faster than the teacher, and at the teacher's pace when k = 1. Speed:
episodes until the mean return reaches a fraction of the optimal return; the speed-up is
the teacher's episodes / the student's, with a two-way bootstrap CI (tasks and learners).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from outlearn.evaluation import metrics as M
from outlearn.histories import History, keep_every_kth_episode
from outlearn.registry import STUDIES
from outlearn.report.section import Cell, Section
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    TeacherStudyConfig,
    collect_stage,
    data_text,
    held_out_tasks,
    make_family,
    mean_optimum,
    references_stage,
    run_text,
    students_by_setting,
    students_figure,
)
from outlearn.studies.verdicts import speedup_about_verdict, subsample_verdict


class SubsampleConfig(TeacherStudyConfig):
    """``factors``: the k values (keep every k-th episode; 1 keeps all); ``threshold``: the
    fraction of the optimal return that times the learning."""

    factors: list[int] = Field(min_length=1, description="the k values: each student trains "
                               "on every k-th episode of the history (1 keeps all)")
    threshold: float = Field(0.8, gt=0, le=1, description="fraction of the optimal return whose "
                             "first crossing times the learning")

    @model_validator(mode="after")
    def _check(self) -> SubsampleConfig:
        if min(self.factors) < 1 or len(set(self.factors)) != len(self.factors):
            raise ValueError(f"factors={self.factors}: give distinct k >= 1")
        if self.teacher_episodes // max(self.factors) < 2:
            raise ValueError(f"k={max(self.factors)} keeps fewer than 2 of the "
                             f"{self.teacher_episodes} teacher episodes: raise teacher_episodes")
        return self


def subsample(full: Path, k: int, d: Path) -> tuple[Path, int]:
    """The history with every k-th episode kept (the full file for k = 1) and its steps."""
    if k == 1:
        with History(full) as h:
            return full, h.num_steps
    with keep_every_kth_episode(full, k, d / "subsampled.h5") as h:
        return Path(h.path), h.num_steps


def run(cfg: SubsampleConfig, ctx: RunContext) -> list[Section]:
    """Collect, subsample per k, train one student per (k, seed), run each in context."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    full = collect_stage(cfg, ctx, "subsample")
    factors = sorted(cfg.factors)
    hists = {k: ctx.stage("subsample", [str(full), k], lambda d, k=k: subsample(full, k, d))
             for k in factors}
    curves = students_by_setting(cfg, ctx, ids, {
        k: Setting(hists[k][0], min(cfg.student.context_len, hists[k][1])) for k in factors})
    base = references_stage(cfg, ctx, family, ids)
    return [subsample_section(cfg, family, ids, curves, base, ctx.run_dir / "subsample.png")]


def subsample_section(cfg: SubsampleConfig, family, ids: np.ndarray,
                      curves: dict[int, np.ndarray], base: dict[str, np.ndarray],
                      fig_path: Path) -> Section:
    level = cfg.threshold * mean_optimum(family, ids)
    speed = f"episodes to {cfg.threshold:g} x optimal"
    teacher = base["teacher"]
    rows: list[dict[str, Cell]] = []
    speedups = {}
    for k, cur in curves.items():
        speedups[k] = sp = M.speedup_ci(teacher, cur, level)
        rows.append({"learner": f"student, one episode in k = {k}" if k > 1 else
                     "student, every episode", speed: M.episodes_to_threshold_ci(cur, level),
                     "speed-up vs teacher": sp, "verdict": speedup_about_verdict(sp, k).label})
    rows += [{"learner": label, speed: M.episodes_to_threshold_ci(base[name], level)}
             for name, label in (("teacher", "teacher run fresh"), ("random", "random"))]
    verdict = subsample_verdict(speedups)
    fig = students_figure(fig_path, {f"k = {k}": cur for k, cur in curves.items()}, base,
                          f"{cfg.env.name}: students on every k-th episode (95% CI)")
    s = cfg.student
    return Section(
        key="subsample", title="Claim 5: AD's data efficiency is a subsampling artefact",
        claim="A student trained on every k-th episode of its teacher's histories learns "
              "about k times faster than the teacher, and at its pace when k = 1.",
        setting=f"{data_text(cfg)}, k in {sorted(curves)}. Students {s.kind} ({s.preset}), "
                f"context {s.context_len} steps (at most the kept history), {run_text(cfg)}.",
        columns=["learner", speed, "speed-up vs teacher", "verdict"], rows=rows,
        verdict=verdict.label, verdict_reason=verdict.reason, outcome=verdict.outcome,
        figures=[fig],
        notes=[f"Timing level: {cfg.threshold:g} x the mean optimal return = {level:.3g} "
               "(inf: never reached). Speed-up: the teacher's episodes to that level / the "
               "student's, each from its mean curve; CI by a two-way bootstrap (the tasks "
               "shared, each one's learners resampled). 'About k': k lies inside the "
               "speed-up's 95% CI."])


STUDIES.register("subsample")(Study(
    name="subsample",
    description="subsampling study: is AD's data efficiency an artefact of skipping episodes?",
    config_model=SubsampleConfig,
    run=run,
))

__all__ = ["SubsampleConfig", "run"]
