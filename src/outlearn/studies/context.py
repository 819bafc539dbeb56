"""The context-length study: must a student's context span episodes to learn in context?

Claim 9 (AD's finding): with a context shorter than one episode there is no in-context
learning; with 2-4 episodes there is. One student per context length (in episodes of
the task) and seed, all on the same teacher histories; each runs in context on held-out
tasks, and its in-context improvement is its mean return over its last ``n`` episodes
minus over its first ``n``. A student that cannot see past its own episode behaves alike
in every episode, so its improvement is 0 up to noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

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
from outlearn.studies.verdicts import Verdict, context_span_verdict


class ContextConfig(TeacherStudyConfig):
    """``contexts``: the students' context lengths in episodes (0.5 = half an episode);
    ``compare_n``: episodes at each end of the run whose returns are compared
    (default a tenth of ``eval.episodes``)."""

    contexts: list[float] = Field(min_length=1, description="the students' context lengths in "
                                  "episodes (0.5 = half an episode); one student per length "
                                  "and train seed")
    compare_n: int | None = Field(None, ge=1, description="episodes at each end of the "
                                  "evaluation whose returns are compared (unset: a tenth of "
                                  "eval.episodes)")

    @model_validator(mode="after")
    def _check(self) -> ContextConfig:
        if "context_len" in self.student.model_fields_set:
            raise ValueError("student.context_len is set by contexts in this study: remove it "
                             "and list the lengths (in episodes) in contexts")
        ep_len = make_family(self.env).episode_len
        steps = [context_steps(c, ep_len) for c in self.contexts]
        for c, n in zip(self.contexts, steps, strict=True):
            if n < 2:
                raise ValueError(f"context {c:g} episodes is {n} step(s) of this env (episode "
                                 f"length {ep_len}); a student needs at least 2: raise it")
            if n > self.teacher_episodes * ep_len:
                raise ValueError(f"context {c:g} episodes ({n} steps) is longer than the "
                                 f"teacher's histories ({self.teacher_episodes} episodes): "
                                 "raise teacher_episodes or shorten the context")
            self.student.check(n)
        if len(set(steps)) != len(steps):
            raise ValueError(f"contexts={self.contexts} give duplicate step counts {steps} "
                             f"(episode length {ep_len}): remove the duplicates")
        if 2 * compare_episodes(self.compare_n, self.eval.episodes) > self.eval.episodes:
            raise ValueError(f"compare_n={self.compare_n}: the first and last compare_n of "
                             f"eval.episodes={self.eval.episodes} overlap; lower it")
        return self


def context_steps(episodes: float, episode_len: int) -> int:
    if not episodes > 0:
        raise ValueError(f"context {episodes} must be a positive number of episodes")
    return int(round(episodes * episode_len))


def run(cfg: ContextConfig, ctx: RunContext) -> list[Section]:
    """Collect, train one student per (context, seed), run each in context, judge."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    history = collect_stage(cfg, ctx, "context")
    steps = {c: context_steps(c, family.episode_len) for c in cfg.contexts}
    curves = students_by_setting(cfg, ctx, ids,
                                 {c: Setting(history, steps[c]) for c in cfg.contexts})
    base = references_stage(cfg, ctx, family, ids)
    return [context_section(cfg, family, ids, steps, curves, base,
                            ctx.run_dir / "context.png")]


def context_section(cfg: ContextConfig, family, ids: np.ndarray, steps: dict[float, int],
                    curves: dict[float, np.ndarray], base: dict[str, np.ndarray],
                    fig_path: Path) -> Section:
    optimum = mean_optimum(family, ids)
    tol, n = cfg.resolution * optimum, compare_episodes(cfg.compare_n, cfg.eval.episodes)
    verdicts: dict[float, Verdict] = {}
    rows: list[dict[str, Cell]] = []
    for c, cur in curves.items():
        row, verdicts[c] = improvement_row(
            f"student, context {c:g} episodes ({steps[c]} steps)", cur, n, tol)
        rows.append(row)
    rows += [improvement_row(label, base[name], n)[0]
             for name, label in (("teacher", "teacher run fresh"), ("random", "random"))]
    verdict = context_span_verdict(verdicts)
    fig = students_figure(fig_path, {f"context {c:g} ep.": cur for c, cur in curves.items()},
                          base, f"{cfg.env.name}: students by context length (95% CI)")
    s = cfg.student
    return Section(
        key="context", title="Claim 9: context must span episodes",
        claim="A student whose context is shorter than one episode does not learn in "
              "context; with a context of 2-4 episodes it does.",
        setting=f"{data_text(cfg)} (episodes of {family.episode_len} steps). Students "
                f"{s.kind} ({s.preset}), {run_text(cfg)}.",
        columns=["learner", f"first {n} episodes", f"last {n} episodes", "improvement",
                 "verdict"],
        rows=rows, verdict=verdict.label, verdict_reason=verdict.reason, outcome=verdict.outcome,
        figures=[fig],
        notes=[improvement_notes(n, tol, cfg.resolution, optimum)])


STUDIES.register("context")(Study(
    name="context",
    description="context-length study: must a student's context span episodes?",
    config_model=ContextConfig,
    run=run,
))

__all__ = ["ContextConfig", "context_steps", "run"]
