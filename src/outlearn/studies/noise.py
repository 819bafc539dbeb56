"""The noise-distillation study: can a student beat the best policy in its data?

Claim 4 (AD-epsilon, Zisman et al. 2024): histories made by a noise curriculum (the
optimal action, mixed with uniform noise that decays; the ``noise`` teacher) whose best
policy is well below optimal, ~40-50%, still teach AD a student that beats them:
published Dark Room 6.36 -> 14.08, Key-to-Door 1.0 -> 1.74. Confirmed if the student's
asymptote is at least 1.5x the best in its data. The study also measures whether the
optimal action is in the data's support: the share of the data's steps that take it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from outlearn.evaluation import metrics as M
from outlearn.histories import History
from outlearn.registry import STUDIES
from outlearn.report.section import Section
from outlearn.stats import bootstrap_ci
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    TeacherStudyConfig,
    collect_stage,
    data_text,
    make_family,
    mean_optimum,
    references_stage,
    run_text,
    students_by_setting,
    students_figure,
    test_tasks,
)
from outlearn.studies.verdicts import (
    INCONCLUSIVE,
    Verdict,
    beats_data_verdict,
    ratio_of_means,
)


class NoiseStudyConfig(TeacherStudyConfig):
    """``smoothing``: episodes in the teacher's trailing mean (the best in data);
    ``ratio_bar``: student asymptote / best in data that confirms the claim."""

    smoothing: int = Field(3, ge=1)
    ratio_bar: float = Field(1.5, gt=1)


def data_summary(path: Path, smoothing: int) -> tuple[M.DataCeiling, float]:
    """The best in the data on the held-out tasks (the teacher's histories there: the
    tasks the students run on, task for task) and the share of the training data's steps
    that take the task's optimal action."""
    with History(path) as h:
        idx = h.learners("train")
        ceiling = M.data_ceiling_from_history(h, "test", window=smoothing)
        taken = np.mean(h.dataset("actions")[idx] == h.dataset("optimal_actions")[idx])
    return ceiling, float(taken)


def run(cfg: NoiseStudyConfig, ctx: RunContext) -> list[Section]:
    """Collect the noisy histories, train students on them, run them in context, compare."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    ids = test_tasks(family, cfg.tasks)
    history = collect_stage(cfg, ctx, "noise")
    ceiling, optimal_share = data_summary(history, cfg.smoothing)
    steps = min(cfg.student.context_len, cfg.teacher_episodes * family.episode_len)
    student = students_by_setting(cfg, ctx, ids, {"students": Setting(history, steps)})[
        "students"]
    base = references_stage(cfg, ctx, family, ids)
    return [noise_section(cfg, family, ids, ceiling, optimal_share, student, base,
                          ctx.run_dir / "noise.png")]


def noise_section(cfg: NoiseStudyConfig, family, ids: np.ndarray, ceiling: M.DataCeiling,
                  optimal_share: float, student: np.ndarray, base: dict[str, np.ndarray],
                  fig_path: Path) -> Section:
    optimum = mean_optimum(family, ids)
    last_n = cfg.eval.last_n or max(1, cfg.eval.episodes // 10)
    units = M.asymptote_units(student, last_n)
    if ceiling.units.mean() > 0:
        ratio = ratio_of_means(units, ceiling.units, paired=False)
        verdict = beats_data_verdict(ratio, cfg.ratio_bar)
        cell = {"ratio to best in data": ratio}
    else:
        verdict = Verdict(INCONCLUSIVE, "the best return in the data is 0: there is no ratio "
                                        "to take; collect data that reaches the goal")
        cell = {}
    rows = [{"learner": f"student ({cfg.student.kind})", "asymptote": bootstrap_ci(units),
             "share of optimal": bootstrap_ci(units / optimum), **cell},
            {"learner": f"best in data (episode {ceiling.best_episode + 1})",
             "asymptote": ceiling.best, "share of optimal": bootstrap_ci(ceiling.units / optimum)}]
    for name, label in (("teacher", "teacher run fresh"), ("random", "random"),
                        ("optimum", "optimum (oracle)")):
        u = M.asymptote_units(base[name], last_n)
        rows.append({"learner": label, "asymptote": bootstrap_ci(u),
                     "share of optimal": bootstrap_ci(u / optimum)})
    fig = students_figure(fig_path, {"student": student}, base,
                          f"{cfg.env.name}: student on noise-curriculum data (95% CI)")
    s = cfg.student
    return Section(
        key="noise", title="Claim 4: noise distillation beats its data",
        claim=f"A student trained on noise-curriculum histories reaches at least "
              f"{cfg.ratio_bar:g}x the best return in its data.",
        setting=f"{data_text(cfg)}. Student {s.kind} ({s.preset}), context "
                f"{steps_text(cfg, family)}, {run_text(cfg)}.",
        columns=["learner", "asymptote", "share of optimal", "ratio to best in data"],
        rows=rows, verdict=verdict.label, verdict_reason=verdict.reason, figures=[fig],
        notes=[f"Asymptote: mean return over the last {last_n} episodes on held-out tasks. "
               f"Best in data: the peak of the teacher's mean return on the held-out tasks (the "
               f"tasks the students run on; they trained on the train tasks' histories), "
               f"smoothed over {cfg.smoothing} episodes (units: each learner's mean over that "
               f"window). "
               f"The optimal action is in the data's support: the data takes it on "
               f"{optimal_share:.1%} of its steps."])


def steps_text(cfg: NoiseStudyConfig, family) -> str:
    return f"{min(cfg.student.context_len, cfg.teacher_episodes * family.episode_len)} steps"


STUDIES.register("noise")(Study(
    name="noise",
    description="noise-distillation study: does a student beat the best policy in its data?",
    config_model=NoiseStudyConfig,
    run=run,
))

__all__ = ["NoiseStudyConfig", "run"]
