"""The cut-off study: does a student trained on a truncated learning history keep learning?

Claim 1 (truncated imitation plateaus): cut the teacher's histories where it first
reaches a fraction of optimal (or, beside it, after a fraction of its episodes, as
published truncation studies cut their datasets: ``"episodes:0.33"``), train a student on
what is left, run it in context on held-out tasks for at least 3x the cut, and compare its
asymptote with the data ceiling (the teacher's best return in the kept data) and with the
teacher's own continuation.
Claim 2 (early data alone teaches nothing): the same with only the episodes where the
teacher is no better than random. Claim 3 (horizon extrapolation, optional): a bandit
student trained on horizon T, run to factor x T with a sliding window
(:mod:`outlearn.studies.horizon`).

Several students (``[[students]]``, e.g. AD and the RL student ``adq``): each trains on
the very same cuts with the same training seeds and runs on the same held-out tasks; each
gets claim 1 (and 2) exactly as a study of it alone would (:class:`Results`, one per
student), and :mod:`outlearn.studies.cutoff_students` sets them side by side with a
verdict on the difference of two students' exceedances, paired by training seed and task.
A config of one ``[student]`` runs as it always did: the same stage inputs, sections and
run directory.

:func:`run` reads as the protocol. Every stage is cached by its inputs' hash, so a
re-run skips finished stages and an interrupted one resumes (training from its last
checkpoint). Cuts that the data cannot support are refused after the (seconds-long)
collection and before any training.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from outlearn.errors import ConfigError
from outlearn.evaluation import metrics as M
from outlearn.registry import STUDIES
from outlearn.report.figures import CutPanel, cutoff_figure
from outlearn.report.section import Section, without_empty_columns
from outlearn.stats import Estimate
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    collect_stage,
    evaluate_by_setting,
    held_out_tasks,
    mean_optimum,
    references_stage,
    train_by_setting,
)
from outlearn.studies.cutoff_config import (
    CutoffConfig,
    HorizonSection,
    NamedStudentSection,
    StudentSection,
    acting,
    make_family,
)
from outlearn.studies.cutoff_text import (  # noqa: F401  (headline: re-exported)
    ceiling_shares,
    cut_what,
    headline,
    headline_text,
    headline_verdict,
    horizon_problem,
    panel_title,
)
from outlearn.studies.cutspec import cut_name
from outlearn.studies.cutting import (  # noqa: F401  (re-exported: the cut stage's parts)
    CutInfo,
    cut_history,
    early_steps,
    episode_boundary,
)
from outlearn.studies.greedy_measures import (
    greedy_asymptote,
    greedy_exceedance,
    student_minus_greedy,
)
from outlearn.studies.greedy_teacher import greedy_teacher_at_cut
from outlearn.studies.horizon import horizon_section
from outlearn.studies.verdicts import (
    Verdict,
    beyond_greedy_teacher_text,
    competence_gate,
    cutoff_verdict,
    inconclusive,
    versus_random_verdict,
)

# ------------------------------------------------------------------------------ the study
K = TypeVar("K", bound=Hashable)


def evaluate_students(cfg: CutoffConfig, ctx: RunContext, test_ids: np.ndarray,
                      settings: dict[K, Setting]) -> dict[K, np.ndarray]:
    """:func:`~outlearn.studies.common.students_by_setting`, with each named student acting
    its own way (``eval_mode``): training sees the sections without it (students that
    differ only in how they act share their training stages), and each group of students
    that act alike is evaluated under that ``[eval] mode``."""
    trained = {k: s if s.student is None else replace(
                   s, student=s.student.trained())  # type: ignore[attr-defined]
               for k, s in settings.items()}
    per = train_by_setting(cfg, ctx, trained)
    out: dict[K, np.ndarray] = {}
    for mode in sorted({acting(s.student, cfg.eval.mode) for s in settings.values()}):
        group = {k: s for k, s in settings.items() if acting(s.student, cfg.eval.mode) == mode}
        as_run = cfg if mode == cfg.eval.mode else cfg.model_copy(
            update={"eval": cfg.eval.model_copy(update={"mode": mode})})
        out.update(evaluate_by_setting(as_run, ctx, test_ids, group, {k: per[k] for k in group}))
    return {k: out[k] for k in settings}


def run(cfg: CutoffConfig, ctx: RunContext) -> list[Section]:
    """Collect, cut, check, train, evaluate, measure, judge; returns the report sections."""

    from outlearn.students.train import fit_context

    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    test_ids = held_out_tasks(family, cfg.tasks)
    full = collect_stage(cfg, ctx, "cutoff")
    # the cut reads the held-out tasks (its ceiling), the seed (early: random's run) and
    # the context (the students' window; with several students, the longest)
    cuts = {cut_name(c): ctx.stage("cut", [str(full), c, cfg.smoothing, cfg.env, cfg.tasks,
                                           cfg.seed, cfg.cut_context()],
                                   lambda d, c=c: cut_history(cfg, family, full, c, d))
            for c in cfg.cuts}
    check_eval_horizon(cfg, cuts)  # refuse before any training
    base = references_stage(cfg, ctx, family, test_ids)
    # the teacher as each cut leaves it, acting greedily: the data without its exploration
    last_n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)
    greedy = ctx.stage_each(
        "teacher-greedy", [n for n in cuts if n != "early"],
        lambda n: [str(cuts[n].path), cfg.env, cfg.tasks, cfg.teacher, cfg.seed, last_n],
        lambda n, d: greedy_teacher_at_cut(cfg, family, cuts[n].path, test_ids, last_n,
                                           cfg.seed))
    # one student per (student, cut, seed), then each (student, cut)'s students in
    # context: independent stages, run at once with `outlearn run --workers N`. A config
    # of one student has the name None and names no student in its stages' inputs.
    sts = cfg.student_sections()
    settings = {
        (who, name): Setting(cut.path, fit_context(  # adq: a window and its successor
            st.kind, min(st.context_len, cut.context_len), cut.steps),
            student=None if who is None else st)
        for who, st in sts.items() for name, cut in cuts.items()}
    curves = evaluate_students(cfg, ctx, test_ids, settings)
    per = {who: Results(cfg, family, test_ids, cuts,
                        {name: curves[who, name] for name in cuts}, base, st, greedy)
           for who, st in sts.items()}
    if cfg.students is None:
        res = per[None]
        sections = [claim1_section(res, res.figure(ctx.run_dir / "cutoff.png"))]
        if "early" in cuts:
            sections.append(claim2_section(res))
    else:
        from outlearn.studies.cutoff_students import students_sections

        sections = students_sections(
            cfg, {str(who): r for who, r in per.items()}, ctx.run_dir)
    if cfg.horizon_extrapolation is not None:
        sections.append(horizon_section(cfg, cfg.horizon_extrapolation, ctx))
    return sections


def check_eval_horizon(cfg: CutoffConfig, cuts: dict[str, CutInfo]) -> None:
    """Refuse an evaluation shorter than 3x any cut (the uncut reference is exempt)."""
    for name, cut in cuts.items():
        why = horizon_problem(name, cut.episodes, cfg.eval.episodes)
        if name != "uncut" and why is not None:
            raise ConfigError(why)


# ------------------------------------------------------------------------------ the numbers
class Results:
    """Curves and metrics of a finished run. Students' curves: (students, eval seeds,
    tasks, episodes); the references': (eval seeds, tasks, episodes); the same tasks."""

    def __init__(self, cfg: CutoffConfig, family: Any, ids: np.ndarray,
                 cuts: dict[str, CutInfo], students: dict[str, np.ndarray],
                 base: dict[str, np.ndarray], student: StudentSection | None = None,
                 greedy: dict[str, dict[str, Any]] | None = None):
        self.cfg, self.cuts, self.students, self.base = cfg, cuts, students, base
        #: per cut, :func:`~outlearn.studies.greedy_teacher.greedy_teacher_at_cut`'s result
        self.greedy = greedy or {}
        self.student = student or cfg.student  # whose curves (a study of several: one)
        self.optimum = mean_optimum(family, ids)
        self.tol = cfg.resolution * self.optimum
        self.last_n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)

    def asymptote(self, name: str) -> Estimate:
        return M.asymptote(self.students[name], self.last_n)

    def base_asymptote(self, name: str) -> Estimate:
        return M.asymptote(self.base[name], self.last_n)

    def exceedance(self, name: str) -> Estimate:
        return M.exceedance(self.students[name], self.cuts[name].ceiling, self.last_n)

    def gap(self, name: str) -> Estimate:
        return M.continuation_gap(self.base["teacher"], self.students[name], self.last_n)

    def versus_random(self, name: str) -> Estimate:
        return M.versus(self.students[name], self.base["random"], self.last_n)

    def measures(self, name: str) -> dict[str, Estimate]:
        """Cut ``name``'s student against its data and the teacher: the columns every table
        of a cut-off run gives a student (data ceiling, asymptote, exceedance, continuation
        gap)."""
        return {"data ceiling": self.cuts[name].ceiling.best, "asymptote": self.asymptote(name),
                "exceedance": self.exceedance(name), "continuation gap": self.gap(name)}

    def greedy_returns(self, name: str) -> np.ndarray | None:
        """The teacher at cut ``name`` acting greedily: its returns (learners per task,
        tasks, episodes); None without that reference."""
        return self.greedy.get(name, {}).get("returns")

    def greedy_asymptote(self, name: str) -> Estimate | None:
        """The teacher at cut ``name`` acting greedily: its mean return over all its
        episodes (it is frozen), CI over tasks; None without that reference."""
        g = self.greedy_returns(name)
        return None if g is None else greedy_asymptote(g)

    def versus_greedy(self, name: str) -> Estimate | None:
        """Student asymptote - the teacher at the same cut acting greedily, task for task,
        with a crossed CI (:func:`~outlearn.studies.greedy_teacher.student_minus_greedy`);
        None without that reference."""
        g = self.greedy_returns(name)
        return None if g is None else student_minus_greedy(self.students[name], g, self.last_n)

    def gate(self) -> Verdict | None:
        """Inconclusive when the uncut student does not reach its own data ceiling (the
        competence gate); None when it does, or when there is no uncut reference."""
        if "uncut" not in self.students:
            return None
        return competence_gate(self.exceedance("uncut"), self.asymptote("uncut"),
                               self.cuts["uncut"].ceiling.best, self.tol)

    def reference_rows(self) -> list[dict[str, Any]]:
        names = {"teacher": "teacher run fresh (unseen continuation)", "random": "random",
                 "no-op": "no-op", "optimum": "optimum (oracle)"}
        return [{"learner": label, "asymptote": self.base_asymptote(n)}
                for n, label in names.items() if n in self.base] + self.greedy_rows()

    def greedy_rows(self) -> list[dict[str, Any]]:
        """Per cut, the teacher as the cut leaves it acting greedily (its exploration
        dropped): its return and how far that is above the data ceiling."""
        rows = []
        for name in self.greedy:
            g = self.greedy_returns(name)
            if g is None or name not in self.cuts:
                continue
            cut = self.cuts[name]
            rows.append({"learner": f"teacher, {cut_what(name)}, greedy (replayed, frozen)",
                         "data ceiling": cut.ceiling.best,
                         "asymptote": self.greedy_asymptote(name),
                         "exceedance": greedy_exceedance(g, cut.ceiling)})
        return rows

    def greedy_note(self) -> str:
        """What the greedy-teacher rows are, or why a cut has none."""
        why = {n: g["why"] for n, g in self.greedy.items() if g.get("returns") is None}
        text = ("Teacher at the cut, greedy: each held-out teacher learner's state rebuilt "
                "by replaying its kept history with its own update (checked against the "
                "policy the history recorded), then frozen and run on its task acting on the "
                "argmax of its policy: the data without the teacher's exploration (CI over "
                "tasks, its learners nested). A student above the data ceiling but not above "
                "this row has dropped the teacher's noise rather than learned past it: "
                "'student - greedy teacher' is that difference, the student's asymptote "
                "minus this row's return task for task (CI over students and tasks, "
                "crossed), and the verdict of a student above its data says where it lies.")
        if why:
            text += " Not measured: " + "; ".join(f"{n}: {w}" for n, w in why.items()) + "."
        return text

    def setting(self) -> str:
        c, s = self.cfg, self.student
        return (f"{c.env.name} {c.env.kwargs or ''}, teacher {c.teacher.name} "
                f"{c.teacher.kwargs or ''}: {c.tasks.n_train} train / {c.tasks.n_test} held-out "
                f"tasks x {c.learners_per_task} teacher learners, {c.teacher_episodes} teacher "
                f"episodes (cuts smoothed over {c.smoothing}). Student {s.kind} ({s.preset}), "
                f"context {s.context_len} steps, {s.train_steps} steps, seeds {c.train_seeds}; "
                f"run in context for {c.eval.episodes} episodes x eval seeds {c.eval.seeds}.")

    def figure(self, path: Path, who: str | None = None) -> Path:
        """One panel per cut (``who``: the student's name in the title, for a study of
        several)."""
        teacher = self.base["teacher"].mean(axis=(0, 1))
        title = {"uncut": "uncut (the whole history)", "early": "early episodes only"}
        panels = [CutPanel(f"{title.get(n, panel_title(n))}: {c.episodes} ep. seen",
                           M.mean_curve_ci(self.students[n]), c.episodes, c.ceiling.best.value)
                  for n, c in self.cuts.items()]
        lines: dict[str, np.ndarray | float] = {
            n: self.base[n].mean(axis=(0, 1)) for n in ("random", "no-op") if n in self.base}
        lines["optimum"] = self.optimum
        return cutoff_figure(path, teacher, panels, lines,
                             suptitle=f"{self.cfg.env.name}, teacher {self.cfg.teacher.name}: "
                                      f"{'students' if who is None else f'student {who}'} "
                                      "(95% CI) vs the teacher's continuation")


# ------------------------------------------------------------------------------ the sections
def claim1_section(res: Results, fig: Path) -> Section:
    """Claim 1: one row per cut, plus the teacher and the baselines."""
    cfg, rows, verdicts, guard = res.cfg, [], {}, res.gate()
    for name, cut in res.cuts.items():
        if name == "early":
            continue
        m, greedy = res.measures(name), res.versus_greedy(name)
        verdicts[name] = v = cutoff_verdict(m["exceedance"], m["continuation gap"], res.tol)
        what = cut_what(name)
        label = guard.label if guard else v.label
        if greedy is not None and guard is None and m["exceedance"].low > 0:
            label += f"; {beyond_greedy_teacher_text(greedy)}"
        rows.append({"learner": f"student, {what} ({cut.episodes} episodes seen)", **m,
                     "student - greedy teacher": greedy,
                     "student - random": res.versus_random(name), "verdict": label})
    rows += res.reference_rows()
    columns, rows = without_empty_columns(
        ["learner", "data ceiling", "asymptote", "exceedance", "continuation gap",
         "student - greedy teacher", "student - random", "verdict"], rows,
        ["student - greedy teacher"])
    share = ceiling_shares(res.cuts, res.optimum)
    head = headline(list(verdicts), share)
    if head is None:
        v = inconclusive("no fractional cut to judge", "add a cut below convergence, e.g. "
                                                       "cuts = [0.4]")
    elif guard is not None:
        v = headline_verdict(head, verdicts[head], share)
        v = inconclusive(guard.label, f"{guard.reason}. {headline_text(head)}: {v.reason}")
    else:
        v = headline_verdict(head, verdicts[head], share)
    return Section(
        key="cutoff", title="Claim 1: truncated imitation plateaus",
        claim="A student trained on histories cut before the teacher converges plateaus at "
              "its data ceiling instead of reaching the teacher's unseen continuation.",
        setting=res.setting(),
        columns=columns, rows=rows, verdict=v.label, verdict_reason=v.reason, outcome=v.outcome,
        figures=[fig],
        notes=[f"Asymptote: mean return over the last {res.last_n} of {cfg.eval.episodes} "
               f"episodes on held-out tasks. Data ceiling: the teacher's best {cfg.smoothing}-"
               "episode mean return in the kept data, on the same held-out tasks (its "
               "histories there, cut at the same step), task for task. Competence gate: the "
               "uncut student must reach its own data ceiling within the resolution, or every "
               "verdict reads inconclusive. CIs: 95%, over trained students and tasks "
               "(crossed; eval seeds nested). Exceedance = asymptote - data ceiling; "
               "continuation gap = teacher run fresh on the same tasks - student, over the "
               f"same last episodes. Resolution (the smallest difference that counts): "
               f"{res.tol:.3g} = {cfg.resolution:g} x the mean optimal return "
               f"{res.optimum:.3g}.", res.greedy_note()])


def claim2_section(res: Results) -> Section:
    """Claim 2: the early-only student against random."""
    cut, diff = res.cuts["early"], res.versus_random("early")
    v = res.gate() or versus_random_verdict(diff, res.tol)
    # claim 1's measures too (the verdict reads only "student - random"): the ceiling map's
    # early-only rows
    rows = [{"learner": f"student, early only ({cut.episodes} episodes seen)",
             **res.measures("early"), "student - random": diff, "verdict": v.label},
            {"learner": "random", "asymptote": res.base_asymptote("random")}]
    return Section(
        key="early", title="Claim 2: early data alone teaches nothing",
        claim="A student trained only on the episodes where the teacher is no better than "
              "random is itself no better than random.",
        setting=f"{res.setting()} Early episodes: the first {cut.episodes}, before the "
                "teacher's smoothed mean return rises above random's 95% CI.",
        columns=["learner", "data ceiling", "asymptote", "exceedance", "continuation gap",
                 "student - random", "verdict"], rows=rows,
        verdict=v.label, verdict_reason=v.reason, outcome=v.outcome,
        notes=["The early-only student's curve is the 'early' panel of the figure above. The "
               "verdict reads 'student - random' alone; the data ceiling (the teacher's best "
               "in its early episodes), exceedance and continuation gap are as in claim 1's "
               "table."])


STUDIES.register("cutoff")(Study(
    name="cutoff",
    description="cut-off study: does a student trained on truncated histories keep learning?",
    config_model=CutoffConfig,
    run=run,
))

__all__ = ["CutInfo", "CutoffConfig", "HorizonSection", "NamedStudentSection", "Results",
           "StudentSection", "run"]
