"""The cut-off study's report for several students (``[[students]]``): the students side
by side, one row per cut, with the verdict on the difference of two students' exceedances
(by default "the RL student adq exceeds its data where AD does not"); then each student's
own claim 1 (and claim 2) sections, computed by :mod:`outlearn.studies.cutoff` exactly as
for a study of that student alone.

Only report code: it runs in no stage, so an edit here invalidates no cached stage.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from outlearn.evaluation import metrics as M
from outlearn.report.figures import CurvesPanel, panels_figure
from outlearn.report.section import Section, without_empty_columns
from outlearn.studies.common import data_text
from outlearn.studies.cutoff import (
    CutInfo,
    Results,
    claim1_section,
    claim2_section,
)
from outlearn.studies.cutoff_config import CutoffConfig, acting
from outlearn.studies.cutoff_text import ceiling_shares, cut_what, headline, headline_verdict
from outlearn.studies.verdicts import (
    GREEDY_TEACHER_BAR,
    Verdict,
    exceeds_where_baseline_does_not_verdict,
    inconclusive,
)

__all__ = ["GREEDY_VERDICT", "comparison_section", "cut_label", "for_student",
           "students_sections"]


#: the side-by-side table's column of the verdict against GREEDY_TEACHER_BAR
GREEDY_VERDICT = "verdict against the greedy teacher"


def students_sections(cfg: CutoffConfig, per: dict[str, Results], run_dir: Path
                      ) -> list[Section]:
    """A study of several students (``[[students]]``): the students side by side with the
    verdict on the difference of their exceedances, then each student's claim 1 (and claim
    2) as a study of that student alone reports it (same numbers, gate and verdicts), its
    key and title naming the student."""
    sections = [comparison_section(cfg, per, run_dir / "cutoff-students.png")]
    for who, res in per.items():
        fig = res.figure(run_dir / f"cutoff-student-{who}.png", who)
        sections.append(for_student(claim1_section(res, fig), who))
    if "early" in next(iter(per.values())).cuts:
        sections += [for_student(claim2_section(res), who) for who, res in per.items()]
    return sections


def for_student(section: Section, who: str) -> Section:
    """``section`` of one student of several: its key and title name the student."""
    return replace(section, key=f"{section.key}-{who}", title=f"{section.title} ({who})")


def cut_label(name: str, cut: CutInfo) -> str:
    return f"{cut_what(name)} ({cut.episodes} episodes seen)"


def comparison_section(cfg: CutoffConfig, per: dict[str, Results], fig: Path) -> Section:
    """The students side by side, one row per cut (columns per student: asymptote,
    exceedance, continuation gap), and for the compared pair (``cfg.compared()``: the RL
    student and AD by default) the difference of their exceedances, paired by training
    seed and task (:func:`~outlearn.evaluation.metrics.exceedance_difference`), with the
    verdict :func:`~outlearn.studies.verdicts.exceeds_where_baseline_does_not_verdict`,
    gated by both students' competence gates."""
    a, b = cfg.compared()
    ra, rb = per[a], per[b]
    gates = {a: ra.gate(), b: rb.gate()}
    diff_col = f"exceedance {a} - {b}"
    rows: list[dict[str, Any]] = []
    verdicts: dict[str, Verdict] = {}
    for name, cut in ra.cuts.items():
        row: dict[str, Any] = {"cut": cut_label(name, cut), "data ceiling": cut.ceiling.best,
                               "greedy teacher": ra.greedy_asymptote(name)}
        for who, res in per.items():
            row.update({f"{who}: {k}": v for k, v in res.measures(name).items()
                        if k != "data ceiling"})  # common to the students: once, above
            row[f"{who}: - greedy teacher"] = res.versus_greedy(name)
        diff = M.exceedance_difference(ra.students[name], rb.students[name], cut.ceiling,
                                       ra.last_n)
        verdicts[name] = v = exceeds_where_baseline_does_not_verdict(
            diff, row[f"{a}: exceedance"], row[f"{b}: exceedance"], ra.tol, gates, (a, b))
        row[diff_col], row["verdict"] = diff, v.label
        ga, gb = row[f"{a}: - greedy teacher"], row[f"{b}: - greedy teacher"]
        if ga is not None and gb is not None:
            row[GREEDY_VERDICT] = exceeds_where_baseline_does_not_verdict(
                diff, ga, gb, ra.tol, gates, (a, b), GREEDY_TEACHER_BAR).label
        rows.append(row)
    per_student = ("asymptote", "exceedance", "continuation gap", "- greedy teacher")
    columns, rows = without_empty_columns(
        ["cut", "data ceiling", "greedy teacher",
         *[f"{who}: {c}" for who in per for c in per_student], diff_col, "verdict",
         GREEDY_VERDICT], rows,
        ["greedy teacher", *[f"{who}: - greedy teacher" for who in per], GREEDY_VERDICT])
    share = ceiling_shares(ra.cuts, ra.optimum)
    head = headline(list(verdicts), share)
    if head is None:
        v = inconclusive("no fractional cut to judge",
                         "add a cut below convergence, e.g. cuts = [0.4]")
    else:
        v = headline_verdict(head, verdicts[head], share)
    sts = cfg.student_sections()
    who_text = "; ".join(f"{who}: {st.kind} ({st.preset}), context {st.context_len} steps, "
                         f"{st.train_steps} training steps, acting by "
                         f"{acting(st, cfg.eval.mode)}" for who, st in sts.items())
    figure = panels_figure(
        fig, [CurvesPanel(cut_label(name, cut), "return",
                          {**{who: M.mean_curve_ci(res.students[name])
                              for who, res in per.items()},
                           "teacher run fresh": M.mean_curve_ci(ra.base["teacher"])})
              for name, cut in ra.cuts.items()],
        "episode", title=f"{cfg.env.name}, teacher {cfg.teacher.name}: the students side by "
                         "side (95% CI) on the same cuts, seeds and held-out tasks")
    kinds = {who: st.kind for who, st in sts.items()}
    return Section(
        key="students", title=f"Students side by side: {a} against {b}",
        claim=f"Trained on the same cut histories with the same seeds, the student {a} "
              f"({kinds[a]}) exceeds its data where {b} ({kinds[b]}) does not: its "
              f"exceedance is above 0, {b}'s is not, and the difference is above 0.",
        setting=f"{data_text(cfg)} (cuts smoothed over {cfg.smoothing}). Students: "
                f"{who_text}; seeds {cfg.train_seeds} for each; run in context for "
                f"{cfg.eval.episodes} episodes x eval seeds {cfg.eval.seeds}.",
        columns=columns, rows=rows, verdict=v.label, verdict_reason=v.reason, outcome=v.outcome,
        figures=[figure],
        notes=[f"Each student as in its own claim 1 section below: asymptote over the last "
               f"{ra.last_n} of {cfg.eval.episodes} episodes on the held-out tasks, exceedance "
               "= asymptote - data ceiling (the same ceiling for every student of a cut), "
               "continuation gap = teacher run fresh - student; greedy teacher: the teacher "
               "at the cut rebuilt from its kept history, frozen and acting on its argmax "
               "(the data without its exploration), and '- greedy teacher' the student's "
               "asymptote minus it, task for task (a student above its data ceiling but not "
               "above this has only dropped the teacher's exploration). "
               f"{diff_col}: per (training seed, held-out task) cell, {a}'s exceedance minus "
               f"{b}'s (both trained with that seed on that cut, run on that task; eval seeds "
               "averaged in the cell), averaged, with a 95% CI over seeds and tasks crossed. "
               f"Verdict per cut: {a} exceeds its data (its CI above 0), {b} does not (its CI "
               "not above 0 and not past the resolution), and the difference's CI is above 0; "
               f"refuted when {a} plateaus, {b} exceeds too, or the difference's CI rules out "
               "an advantage past the resolution. "
               f"{GREEDY_VERDICT} (when the run measures it): the same rule with the teacher's "
               "greedy policy at the cut as the bar in place of the data ceiling (each "
               "student's '- greedy teacher' in place of its exceedance; the difference is "
               "the same, the bar being common to both); the section's verdict stays the one "
               "on the data ceiling. Gate: when either student's uncut "
               "reference does not reach its own data ceiling within the resolution, every "
               f"verdict here is inconclusive. Resolution: {ra.tol:.3g} = {cfg.resolution:g} "
               f"x the mean optimal return {ra.optimum:.3g}. Headline: the cut closest to 0.4 "
               "of optimal (by history length only when no cut is by performance: the one "
               "whose data ceiling is closest to 0.4 of optimal)."])
