"""The gap-g study: do labels from g episodes ahead speed learning, or lift the ceiling?

Claim 6: a student labelled with the action its teacher took in the same state g episodes
later (gap-g labels, GLA) learns in context faster, roughly g times, but never rises past
the best return in its data. One student per g and seed on the same histories; each is
run on held-out tasks (or, in a family too small to hold some out, on its training tasks:
``judge_on``). Speed: episodes until its mean return reaches a fraction of the
best in the data, against g = 1. Ceiling: its asymptote minus the best in the data. A
student above its data is also set against the teacher as its whole history leaves it,
acting greedily (:mod:`~outlearn.studies.greedy_teacher`): labels from g episodes ahead
carry the teacher's later, less exploratory actions, so going past the data's smoothed best
may only be its exploration dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from outlearn.evaluation import metrics as M
from outlearn.histories import History
from outlearn.registry import STUDIES
from outlearn.report.section import Cell, Section, without_empty_columns
from outlearn.stats import Estimate
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
    training_tasks,
)
from outlearn.studies.greedy_measures import (
    greedy_asymptote,
    greedy_exceedance,
    student_minus_greedy,
)
from outlearn.studies.greedy_teacher import greedy_teacher_of_history
from outlearn.studies.verdicts import (
    GREEDY_TEACHER_AT_END,
    Outcome,
    Verdict,
    beyond_greedy_teacher_text,
    competence_gate,
    exceedance_verdict,
    gap_verdict,
    inconclusive,
)


class GapConfig(TeacherStudyConfig):
    """``gaps``: the g values (1 included, the reference); ``threshold``: the fraction of
    the best return in the data that times the learning; ``smoothing``: episodes in the
    teacher's trailing mean (the best in data). The student's labels are gap-g."""

    gaps: list[int] = Field(min_length=2, description="the g values: each student is labelled "
                            "with its teacher's action g episodes later (distinct, 1 included: "
                            "the reference)")
    threshold: float = Field(0.8, gt=0, le=1, description="fraction of the best return in the "
                             "data whose first crossing times the learning")
    smoothing: int = Field(3, ge=1, description="episodes in the teacher's trailing mean (the "
                           "best in data)")
    judge_on: Literal["held-out", "train"] = Field(
        "held-out", description="the tasks the students and the fresh teacher run on, and "
        "whose histories give the best in data: the held-out tasks, or the training tasks "
        "themselves (for a family too small to hold tasks out, such as a 3x3 room's 9 goals: "
        "the students then search among goals they were trained on)")

    def judged_tasks(self) -> int:
        return self.tasks.n_train if self.judge_on == "train" else self.tasks.n_test

    @model_validator(mode="after")
    def _check(self) -> GapConfig:
        if 1 not in self.gaps or min(self.gaps) < 1 or len(set(self.gaps)) != len(self.gaps):
            raise ValueError(f"gaps={self.gaps}: give distinct g >= 1, including 1 (the "
                             "reference the speed-ups are measured against)")
        if "labels" in self.student.model_fields_set and self.student.labels != "gap":
            raise ValueError(f"student.labels={self.student.labels!r}: this study trains on "
                             "gap-g labels; remove the key")
        if max(self.gaps) >= self.teacher_episodes:
            raise ValueError(f"g={max(self.gaps)} needs more than {max(self.gaps)} teacher "
                             f"episodes (teacher_episodes={self.teacher_episodes}): raise it")
        return self


def run(cfg: GapConfig, ctx: RunContext) -> list[Section]:
    """Collect, train one gap-g student per (g, seed), run each in context, compare."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    ids, split, where = judged(cfg, family)
    history = collect_stage(cfg, ctx, "gap")
    gcfg = cfg.model_copy(update={"student": cfg.student.model_copy(update={"labels": "gap"})})
    steps = min(cfg.student.context_len, cfg.teacher_episodes * family.episode_len)
    curves = students_by_setting(gcfg, ctx, ids, {g: Setting(history, steps, g, (g, *where))
                                                  for g in sorted(cfg.gaps)})
    base = references_stage(cfg, ctx, family, ids, extra=list(where))
    greedy = greedy_stage(cfg, ctx, family, history)
    ceiling = judged_ceiling(cfg, family, history)
    return [gap_section(cfg, family, ids, ceiling, curves, base, ctx.run_dir / "gap.png",
                        greedy)]


def judged(cfg: GapConfig, family: Any) -> tuple[np.ndarray, Literal["train", "test"],
                                                 tuple[str, ...]]:
    """The tasks the students are judged on, the history split that ran on them, and what
    the stage keys add to say so (nothing for the held-out tasks, the default)."""
    if cfg.judge_on == "train":
        return training_tasks(family, cfg.tasks), "train", ("train tasks",)
    return held_out_tasks(family, cfg.tasks), "test", ()


def judged_ceiling(cfg: GapConfig, family: Any, history: Path) -> M.DataCeiling:
    """The best in data: the teacher's histories on the tasks the students are judged on,
    task for task."""
    ids, split, _ = judged(cfg, family)
    with History(history) as h:
        return M.data_ceiling_from_history(h, ids, split, window=cfg.smoothing)


def greedy_stage(cfg: GapConfig, ctx: RunContext, family: Any, history: Path
                 ) -> dict[str, Any]:
    """The teacher as its whole history leaves it, acting greedily on the judged tasks for
    as many episodes as the asymptote averages (a cached stage:
    :func:`~outlearn.studies.greedy_teacher.greedy_teacher_of_history`'s result)."""
    ids, split, where = judged(cfg, family)
    last_n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)
    return ctx.stage("teacher-greedy", [str(history), cfg.env, cfg.tasks, cfg.teacher,
                                        cfg.seed, last_n, *where],
                     lambda d: greedy_teacher_of_history(cfg.teacher, family, history, ids,
                                                         last_n, cfg.seed, split))


def gap_section(cfg: GapConfig, family, ids: np.ndarray, ceiling: M.DataCeiling,
                curves: dict[int, np.ndarray], base: dict[str, np.ndarray],
                fig_path: Path, greedy: dict | None = None) -> Section:
    """The claim-6 table and verdict. ``greedy``: :func:`greedy_teacher_of_history`'s
    result for the whole history (None, or no returns: the reference is left out)."""
    tol = cfg.resolution * mean_optimum(family, ids)
    last_n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)
    level = cfg.threshold * ceiling.best.value
    speed = f"episodes to {cfg.threshold:g} x best in data"
    rows: list[dict[str, Cell | None]] = []
    ceilings: dict[int, Verdict] = {}
    speedups: dict[int, Estimate] = {}
    exceed = {g: M.exceedance(cur, ceiling, last_n) for g, cur in curves.items()}
    asym = {g: M.asymptote(cur, last_n) for g, cur in curves.items()}
    times = {}
    # gap 1 (gaps always hold it) is the plain full-data student: it must reach its data
    gate = competence_gate(exceed[1], asym[1], ceiling.best, tol)
    g_ret = None if greedy is None else greedy.get("returns")
    for g, cur in curves.items():
        times[g] = M.episodes_to_threshold_ci(cur, level)
        ceilings[g] = exceedance_verdict(exceed[g], tol)
        speedups[g] = M.speedup_ci(curves[1], cur, level)
        versus = None if g_ret is None else student_minus_greedy(cur, g_ret, last_n)
        label = ceilings[g].label
        if versus is not None and gate is None and ceilings[g].outcome is Outcome.YES:
            label += f"; {beyond_greedy_teacher_text(versus, GREEDY_TEACHER_AT_END)}"
        rows.append({"learner": f"student, gap {g}", "asymptote": asym[g],
                     "exceedance": exceed[g], "student - greedy teacher": versus,
                     speed: times[g], "speed-up vs gap 1": speedups[g], "ceiling": label})
    rows.append({"learner": f"best in data (episode {ceiling.best_episode + 1})",
                 "asymptote": ceiling.best})
    if g_ret is not None:
        rows.append({"learner": "teacher at the end of its history, greedy (replayed, frozen)",
                     "asymptote": greedy_asymptote(g_ret),
                     "exceedance": greedy_exceedance(g_ret, ceiling)})
    for name, label in (("teacher", "teacher run fresh"), ("random", "random")):
        rows.append({"learner": label, "asymptote": M.asymptote(base[name], last_n),
                     speed: M.episodes_to_threshold_ci(base[name], level)})
    verdict = gap_verdict(speedups, ceilings, times[1].value)
    if gate is not None:
        verdict = inconclusive(gate.label, f"{gate.reason}. {verdict.reason}")
    fig = students_figure(fig_path, {f"gap {g}": cur for g, cur in curves.items()}, base,
                          f"{cfg.env.name}: gap-g students (95% CI)")
    s = cfg.student
    columns, rows = without_empty_columns(
        ["learner", "asymptote", "exceedance", "student - greedy teacher", speed,
         "speed-up vs gap 1", "ceiling"], rows, ["student - greedy teacher"])
    return Section(
        key="gap", title="Claim 6: gap g speeds learning but does not lift the ceiling",
        claim="Students trained on gap-g labels learn in context faster as g grows (about g "
              "times), and none rises past the best return in its data.",
        setting=f"{data_text(cfg)}. Students {s.kind} ({s.preset}) on gap-g labels, g in "
                f"{sorted(curves)}, context {s.context_len} steps, {run_text(cfg)}.",
        columns=columns, rows=rows, verdict=verdict.label, verdict_reason=verdict.reason,
        outcome=verdict.outcome,
        figures=[fig],
        notes=["Best in data: the peak of the teacher's mean return on the "
               + ("training tasks (the same tasks the students run on, and the same histories "
                  "they trained on)" if cfg.judge_on == "train" else
                  "held-out tasks (the same tasks the students run on; they trained on the "
                  "train tasks' histories)")
               + f", smoothed over {cfg.smoothing} episodes: "
               f"{ceiling.best.value:.3g}; the timing level is "
               f"{cfg.threshold:g} x that = {level:.3g} (inf: never reached). Speed-up: gap "
               f"1's episodes to that level / gap g's, CI by a two-way bootstrap (the tasks "
               f"shared, each one's students resampled). "
               f"Asymptote: the last {last_n} of {cfg.eval.episodes} episodes; exceedance = "
               f"asymptote - best in data; resolution {tol:.3g}.", greedy_note(greedy)])


def greedy_note(greedy: dict | None) -> str:
    """What the greedy-teacher row is, or why it is missing."""
    if greedy is not None and greedy.get("returns") is None:
        return f"Teacher at the end of its history, greedy: not measured: {greedy['why']}."
    return ("Teacher at the end of its history, greedy: each judged teacher learner's state "
            "rebuilt by replaying its whole history with its own update (checked against "
            "the policy the history recorded), then frozen and run on its task acting on the "
            "argmax of its policy, as many episodes as the asymptote averages: the data "
            "without the teacher's exploration (CI over tasks, its learners nested). 'student "
            "- greedy teacher' is the student's asymptote minus that, task for task (CI over "
            "students and tasks, crossed); a student above its data but not above this may "
            "only have dropped the teacher's exploration (its 'ceiling' cell says which, when "
            "the competence gate passes).")


STUDIES.register("gap")(Study(
    name="gap",
    description="gap-g study: do labels from g episodes ahead speed learning or lift the ceiling?",
    config_model=GapConfig,
    run=run,
))

__all__ = ["GapConfig", "run"]
