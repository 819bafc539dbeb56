"""The labels study: does DPT's edge over its data come from its privileged labels?

Claim 8: on a source's bandit histories (Thompson sampling), the same model on the same
data, trained once on the source's actions (imitation, AD's labels) and once on each
task's best arm (the privileged label DPT learns), run in context on held-out bandits
beside the source run fresh. Confirmed when the optimal-label student's cumulative regret
is clearly below the source's (its ratio's 95% CI under ``1 - within``) while the
imitation student's is about equal to it (its CI inside ``1 +- within``); see
:func:`~outlearn.studies.verdicts.privileged_labels_verdict`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import model_validator

from outlearn.registry import STUDENTS, STUDIES
from outlearn.report.figures import panels_figure
from outlearn.report.section import Cell, Section
from outlearn.students.threads import configure_threads
from outlearn.studies.bandit import (
    BanditStudyConfig,
    Regret,
    regret_panel,
    regret_references,
    students_regret,
)
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import Setting, collect_stage, data_text, run_text
from outlearn.studies.verdicts import (
    about_equal_verdict,
    clearly_below_verdict,
    privileged_labels_verdict,
)

#: the two students: label -> what they are trained to predict
LABELS = {"actions": "imitation (the source's actions)",
          "optimal": "privileged (the task's best arm)"}


class LabelsConfig(BanditStudyConfig):
    """The [student] is trained twice on the same histories: once with labels "actions",
    once with labels "optimal"."""

    @model_validator(mode="after")
    def _check_labels(self) -> LabelsConfig:
        if "labels" in self.student.model_fields_set:
            raise ValueError("student.labels is set by this study (one student on the "
                             "source's actions, one on the best arm): remove it")
        kind = STUDENTS.get(self.student.kind)
        if getattr(kind, "inputs", None) != "sequence" or getattr(kind, "transitions", False):
            raise ValueError(f"student.kind {self.student.kind!r} cannot be trained on both "
                             "labels (it takes one kind of label only): use a sequence student, "
                             "kind = \"ad\" or \"gru\"")
        return self


def run(cfg: LabelsConfig, ctx: RunContext) -> list[Section]:
    """Collect the source's histories, train both students on them, run them and the source."""
    configure_threads(cfg.threads)
    history = collect_stage(cfg, ctx, "labels")
    context = min(cfg.student.context_len, cfg.teacher_episodes)
    students = students_regret(cfg, ctx, {
        lab: (cfg, Setting(history, context,
                           student=cfg.student.model_copy(update={"labels": lab})))
        for lab in LABELS})
    return [labels_section(cfg, students, regret_references(cfg, ctx),
                           ctx.run_dir / "labels.png")]


def labels_section(cfg: LabelsConfig, students: dict[str, np.ndarray],
                   refs: dict[str, np.ndarray], fig_path: Path) -> Section:
    T, n, src = cfg.teacher_episodes, cfg.eval.episodes, cfg.teacher.name
    at = [T] if n == T else [T, n]  # pulls where regret is read: T, and the run's end
    total = {m: f"cumulative regret at {'T=' if m == T else ''}{m}" for m in at}
    ratio_col = {m: f"ratio to {src} at {'T=' if m == T else ''}{m}" for m in at}
    cols = ["learner", *total.values(), *ratio_col.values(), "reading"]
    reg = {lab: Regret(c, refs["source"]) for lab, c in students.items()}
    ratio = {lab: r.ratio(n) for lab, r in reg.items()}
    reading = {"optimal": clearly_below_verdict(ratio["optimal"], cfg.within, src),
               "actions": about_equal_verdict(ratio["actions"], cfg.within, src)}

    def row(label: str, r: Regret, ratios: bool) -> dict[str, Cell]:
        return {"learner": label, **{total[m]: r.total(m) for m in at},
                **({ratio_col[m]: r.ratio(m) for m in at} if ratios else {})}

    rows = [row(f"student, labels: {LABELS[lab]}", r, True) | {"reading": reading[lab].label}
            for lab, r in reg.items()]
    rows += [row(f"{src} (the source, run fresh)", Regret(refs["source"], refs["source"]), False),
             row("random", Regret(refs["random"], refs["source"]), True)]
    verdict = privileged_labels_verdict(ratio["optimal"], ratio["actions"], cfg.within, src)
    fig = panels_figure(fig_path, [regret_panel(
        "cumulative regret", {f"labels {lab}": c for lab, c in students.items()}
        | {src: refs["source"]})], "pull", {"T (training horizon)": T} if n > T else None,
        f"{cfg.env.name}: one model, two labels (95% CI)")
    s = cfg.student
    return Section(
        key="labels", title="Claim 8: DPT's edge comes from privileged labels",
        claim=f"Trained on {src}'s histories, a student whose labels are each task's best arm "
              f"has clearly less regret than {src}, while the same student trained on "
              f"{src}'s actions has about as much.",
        setting=f"{data_text(cfg)}. Students {s.kind} ({s.preset}, context "
                f"{min(s.context_len, T)} pulls), one per label and seed; {run_text(cfg)}.",
        columns=cols, rows=rows, verdict=verdict.label, verdict_reason=verdict.reason,
        outcome=verdict.outcome, figures=[fig],
        notes=["Regret: each pull's best-arm mean minus the pulled arm's mean, summed. CIs: "
               "95%, over trained students and tasks (crossed; eval seeds averaged in each "
               "cell); a fresh learner's over tasks. Ratio: mean cumulative regret / the "
               f"source's on the same tasks (delta method). Clearly below: the CI under "
               f"{1 - cfg.within:.3g}; about equal: the CI inside [{1 - cfg.within:.3g}, "
               f"{1 + cfg.within:.3g}]."])


STUDIES.register("labels")(Study(
    name="labels",
    description="labels study: does DPT's edge come from its privileged labels?",
    config_model=LabelsConfig,
    run=run,
))

__all__ = ["LABELS", "LabelsConfig", "run"]
