"""Claim 3 (horizon extrapolation), the cut-off study's optional section: a bandit student
trained on histories of horizon T, run in context to ``factor`` x T with a sliding window of
T pulls, against the teacher run fresh for as long.

Stages (the names and inputs the cut-off study has always given them, so their caches
carry over): ``h-collect`` the teacher's histories of T pulls, ``h-train`` one student per
train seed, ``h-evaluate`` the students' per-pull regret to factor x T, ``h-reference`` the
teacher's. Configured by :class:`~outlearn.studies.cutoff_config.HorizonSection`.
"""

from __future__ import annotations

import numpy as np

from outlearn.collect import TasksSection
from outlearn.evaluation import metrics as M
from outlearn.evaluation.baselines import make_teacher
from outlearn.evaluation.evaluate import run_learner
from outlearn.report.figures import CurvesPanel, panels_figure
from outlearn.report.section import Section
from outlearn.stats import crossed_mean_ci, crossed_ratio_ci
from outlearn.studies.base import RunContext
from outlearn.studies.common import (
    collect_histories,
    eval_students,
    held_out_tasks,
    make_family,
    train_student,
)
from outlearn.studies.cutoff_config import CutoffConfig, HorizonSection
from outlearn.studies.verdicts import (
    Outcome,
    Verdict,
    inconclusive,
    regret_trend_verdict,
    tracks_reference_verdict,
)

__all__ = ["horizon_section", "horizon_verdict"]


def horizon_section(cfg: CutoffConfig, h: HorizonSection, ctx: RunContext) -> Section:
    """Claim 3: bandit student trained on T pulls, run to factor x T with a sliding window."""
    family, T, factor = make_family(h.env), h.T, h.factor
    from outlearn.students.train import fit_context

    st = h.student or cfg.student
    context = fit_context(st.kind, T, T)  # the whole history (adq: but its last step)
    st = st.model_copy(update={"context_len": context})
    tasks = TasksSection(seed=cfg.tasks.seed, n_train=h.n_train, n_test=h.n_test)
    sub = cfg.model_copy(update={"env": h.env, "teacher": h.teacher, "tasks": tasks,
                                 "teacher_episodes": T, "student": st, "smoothing": 1})
    inputs = [h, cfg.seed, cfg.tasks.seed, cfg.learners_per_task]
    full = ctx.stage("h-collect", inputs, lambda d: collect_histories(sub, d, ctx.quiet))
    quiet = ctx.quiet or ctx.executor.workers > 1
    ckpts = ctx.stages("h-train", [[h, st, s, str(full)] for s in cfg.train_seeds],
                       [lambda d, s=s: train_student(sub, full, context, s, d, quiet)
                        for s in cfg.train_seeds])
    ids = held_out_tasks(family, tasks)
    student = ctx.stage("h-evaluate", [*inputs, cfg.eval, [str(p) for p in ckpts]],
                        lambda d: eval_students(sub, family, ids, ckpts, factor * T, regret=True))
    ref = ctx.stage("h-reference", [*inputs, cfg.eval.seeds], lambda d: run_learner(
        family, make_teacher(h.teacher.name, family, **h.teacher.kwargs), ids,
        cfg.eval.seeds, factor * T)[1])
    # per-pull regret of each (student, task) cell and each (UCB seed, task) cell
    s_cells, r_cells = M.cells(student), M.cells(ref)
    before = lambda c: c[..., T // 2:T].mean(-1)  # noqa: E731
    after = lambda c: c[..., -(T // 2):].mean(-1)  # noqa: E731
    drop = crossed_mean_ci(before(s_cells) - after(s_cells))
    ratio = crossed_ratio_ci(s_cells.sum(-1), r_cells.sum(-1).mean(0))
    trend = regret_trend_verdict(drop, cfg.resolution * max(float(before(s_cells).mean()), 1e-9))
    track = tracks_reference_verdict(ratio, h.within, h.teacher.name)
    verdict = horizon_verdict(trend, track)
    fig = panels_figure(
        ctx.run_dir / "horizon.png",
        [CurvesPanel("cumulative regret", "cumulative regret",
                     {"student": M.mean_curve_ci(np.cumsum(student, -1)),
                      h.teacher.name: M.mean_curve_ci(np.cumsum(ref, -1))}),
         CurvesPanel("per-pull regret (the verdict's windows shaded)", "regret per pull",
                     {"student": M.mean_curve_ci(student),
                      h.teacher.name: M.mean_curve_ci(ref)},
                     {"before T": (T // 2 + 0.5, T + 0.5),  # pulls drawn at x = 1..factor*T
                      "at the end": (factor * T - T // 2 + 0.5, factor * T + 0.5)})],
        "pull", {"T (training horizon)": T}, f"{h.env.name}: trained on T={T}, run to {factor}T")
    cum = lambda c: crossed_mean_ci(c.sum(-1))  # noqa: E731
    rows = [{"learner": "student", "regret/pull before T": crossed_mean_ci(before(s_cells)),
             "regret/pull at the end": crossed_mean_ci(after(s_cells)), "drop": drop,
             f"cumulative regret at {factor}T": cum(s_cells),
             f"ratio to {h.teacher.name}": ratio},
            {"learner": h.teacher.name,
             "regret/pull before T": crossed_mean_ci(before(r_cells)),
             "regret/pull at the end": crossed_mean_ci(after(r_cells)),
             f"cumulative regret at {factor}T": cum(r_cells)}]
    return Section(
        key="horizon", title="Claim 3: horizon extrapolation",
        claim=f"A bandit student trained on T={T} pulls stops improving past T; it does not "
              f"track {h.teacher.name}'s cumulative regret to {factor}T within {h.within:.0%}.",
        setting=f"{h.env.name} {h.env.kwargs}, teacher {h.teacher.name}: {h.n_train} train / "
                f"{h.n_test} held-out tasks; student context = T = {T} pulls (sliding window), "
                f"seeds {cfg.train_seeds} x eval seeds {cfg.eval.seeds}.",
        columns=["learner", "regret/pull before T", "regret/pull at the end", "drop",
                 f"cumulative regret at {factor}T", f"ratio to {h.teacher.name}"],
        rows=rows, verdict=verdict.label, verdict_reason=verdict.reason,
        outcome=verdict.outcome, figures=[fig],
        notes=[f"Before T: pulls [{T // 2}, {T}); at the end: the last {T // 2} pulls. CIs: "
               "95%, over trained students and tasks (crossed; eval seeds nested)."])


def horizon_verdict(trend: Verdict, track: Verdict) -> Verdict:
    """Claim 3 from its two parts: confirmed when per-step regret stops falling after T and
    the student does not track the reference; refuted when both are the other way."""
    label, reason = f"{trend.label}; {track.label}", f"{trend.reason}; {track.reason}"
    if trend.inconclusive or track.inconclusive:
        return inconclusive(label, reason)
    if trend.outcome is Outcome.NO and track.outcome is Outcome.NO:
        return Verdict(f"{label} (confirmed)", reason, Outcome.CONFIRMED)
    if trend.outcome is Outcome.YES and track.outcome is Outcome.YES:
        return Verdict(f"{label} (refuted)", reason, Outcome.REFUTED)
    return inconclusive(f"{label} (the two parts disagree)", reason)
