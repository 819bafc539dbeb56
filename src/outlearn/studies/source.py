"""The source study: does AD match the bandit algorithm it was trained on?

Claim 7: AD trained on a source's histories of T pulls of a Bernoulli bandit (UCB1,
Thompson sampling, epsilon-greedy with epsilon 0.3; 5 arms and 10) plays like its source.
For every source: collect its histories on the train tasks, train one student per seed on
them, run each in context on the held-out tasks for ``eval.episodes`` pulls (2T: past T
the window slides), and run the source fresh on the same tasks and seeds. Confirmed for a
source when the student's cumulative regret at the end of the run / the source's has its
95% CI (students and tasks crossed) inside ``1 +- within``; refuted when the CI lies
outside; the claim as a whole is refuted when one source refutes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from outlearn.collect import EnvSection, TeacherSection
from outlearn.config import Config
from outlearn.evaluation.baselines import make_teacher
from outlearn.registry import STUDIES
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
from outlearn.studies.common import Setting, collect_stage, make_family, run_text
from outlearn.studies.verdicts import Verdict, all_parts_verdict, matches_source_verdict


class SourceSection(Config):
    """One source of the study: a teacher on the study's bandit family."""

    teacher: TeacherSection | None = Field(None, description="the source ([teacher] table "
                                           "syntax); unset: the study's [teacher]")
    num_arms: int | None = Field(None, ge=2, description="arms of this source's bandits; "
                                 "unset: env.kwargs.num_arms")


class SourceConfig(BanditStudyConfig):
    """``sources``: the sources, each a teacher and a number of arms (default: the study's
    teacher on its env alone)."""

    sources: list[SourceSection] = Field(
        default_factory=lambda: [SourceSection()], min_length=1,
        description="the sources ([[sources]] tables): each a teacher and a number of arms, "
                    "unset ones the study's [teacher] and env.kwargs.num_arms; one student "
                    "per source and train seed")

    @model_validator(mode="after")
    def _check_sources(self) -> SourceConfig:
        labels = [source_label(self, s) for s in self.sources]
        if len(set(labels)) != len(labels):
            raise ValueError(f"sources repeat a setting ({', '.join(labels)}): remove the "
                             "duplicates")
        for s in self.sources:
            sub = source_config(self, s)
            family = make_family(sub.env)
            make_teacher(sub.teacher.name, family, **sub.teacher.kwargs)
        return self


def source_config(cfg: SourceConfig, s: SourceSection) -> BanditStudyConfig:
    """The study's config with the source's teacher and arms (what its stages read)."""
    env = cfg.env if s.num_arms is None else EnvSection(
        name=cfg.env.name, kwargs={**cfg.env.kwargs, "num_arms": s.num_arms})
    return cfg.model_copy(update={"env": env, "teacher": s.teacher or cfg.teacher})


def source_label(cfg: SourceConfig, s: SourceSection) -> str:
    """e.g. "egreedy eps=0.3, 5 arms"."""
    sub = source_config(cfg, s)
    kw = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in sorted(sub.teacher.kwargs.items()))
    return f"{sub.teacher.name}{' ' + kw if kw else ''}, {make_family(sub.env).num_actions} arms"


def run(cfg: SourceConfig, ctx: RunContext) -> list[Section]:
    """For every source: collect, train students, run them and the source; judge."""
    configure_threads(cfg.threads)
    subs = {source_label(cfg, s): source_config(cfg, s) for s in cfg.sources}
    context = min(cfg.student.context_len, cfg.teacher_episodes)
    histories = {k: collect_stage(sub, ctx, "source") for k, sub in subs.items()}
    students = students_regret(cfg, ctx, {
        k: (sub, Setting(histories[k], context, extra=(sub.env, sub.teacher)))
        for k, sub in subs.items()})
    refs = {k: regret_references(sub, ctx) for k, sub in subs.items()}
    return [source_section(cfg, students, refs, ctx.run_dir / "source.png")]


def source_section(cfg: SourceConfig, students: dict[str, np.ndarray],
                   refs: dict[str, dict[str, np.ndarray]], fig_path: Path) -> Section:
    T, n = cfg.teacher_episodes, cfg.eval.episodes
    cols = ["learner", f"cumulative regret at T={T}", f"cumulative regret at {n}",
            f"ratio to the source at T={T}", f"ratio to the source at {n}", "verdict"]
    rows: list[dict[str, Cell]] = []
    parts: dict[str, Verdict] = {}
    for k, curves in students.items():
        src = refs[k]["source"]
        st, fresh, rnd = Regret(curves, src), Regret(src, src), Regret(refs[k]["random"], src)
        parts[k] = matches_source_verdict(st.ratio(n), cfg.within, k.split(",")[0])
        rows += [{"learner": f"student of {k}", cols[1]: st.total(T), cols[2]: st.total(n),
                  cols[3]: st.ratio(T), cols[4]: st.ratio(n), "verdict": parts[k].label},
                 {"learner": f"{k} (the source, run fresh)", cols[1]: fresh.total(T),
                  cols[2]: fresh.total(n)},
                 {"learner": f"random, {k.split(', ')[-1]}", cols[1]: rnd.total(T),
                  cols[2]: rnd.total(n), cols[3]: rnd.ratio(T), cols[4]: rnd.ratio(n)}]
    verdict = all_parts_verdict(parts)
    fig = panels_figure(fig_path, [regret_panel(k, {"student": c, "source": refs[k]["source"]})
                                   for k, c in students.items()],
                        "pull", {"T (training horizon)": T},
                        f"{cfg.env.name}: students and their sources (95% CI)")
    s = cfg.student
    return Section(
        key="source", title="Claim 7: AD matches its source",
        claim=f"A student trained on a bandit algorithm's histories of T={T} pulls, run in "
              f"context for {n} pulls, has a cumulative regret within {cfg.within:.0%} of "
              "that algorithm's.",
        setting=f"{cfg.env.name} {cfg.env.kwargs}; sources: {'; '.join(students)}; "
                f"{cfg.tasks.n_train} train / {cfg.tasks.n_test} held-out tasks x "
                f"{cfg.learners_per_task} learners, {T} pulls. Students {s.kind} "
                f"({s.preset}, context {min(s.context_len, T)} pulls, a sliding window), "
                f"{run_text(cfg)}.",
        columns=cols, rows=rows, verdict=verdict.label, verdict_reason=verdict.reason,
        outcome=verdict.outcome, figures=[fig],
        notes=[f"Regret: each pull's best-arm mean minus the pulled arm's mean, summed. CIs: "
               "95%, over trained students and tasks (crossed; eval seeds averaged in each "
               "cell); a fresh learner's over tasks. Ratio: the student's mean cumulative "
               "regret / the source's on the same tasks (delta method). Verdict per source: "
               f"the ratio's CI at {n} inside [{1 - cfg.within:.3g}, {1 + cfg.within:.3g}] "
               "confirms, outside it refutes."])


STUDIES.register("source")(Study(
    name="source",
    description="source study: does AD match the bandit algorithm it imitates?",
    config_model=SourceConfig,
    run=run,
))

__all__ = ["SourceConfig", "SourceSection", "run", "source_config", "source_label"]
