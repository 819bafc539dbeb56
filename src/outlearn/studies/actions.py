"""The action-semantics study: does a student rely on what the actions meant in training?

Claim 11: with the actions permuted at test time (in every held-out task each action
does what another did; :mod:`outlearn.envs.permuted`), the student's return falls by at
least half, while a fresh real learner (the teacher, learning from scratch) is
unaffected. Returns are each unit's mean over the whole evaluation run, so both the
learning and where it ends count; the drop is 1 - permuted / original, paired over the
same (seed, task) units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from outlearn.config import Seed
from outlearn.envs.permuted import PermutedActions
from outlearn.evaluation import metrics as M
from outlearn.registry import STUDIES
from outlearn.report.figures import curves_figure
from outlearn.report.section import Section
from outlearn.stats import Estimate, crossed_mean_ci, crossed_ratio_ci
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    TeacherStudyConfig,
    collect_stage,
    data_text,
    eval_students,
    held_out_tasks,
    make_family,
    mean_optimum,
    run_references,
    run_text,
    train_by_setting,
)
from outlearn.studies.verdicts import (
    INCONCLUSIVE,
    action_semantics_verdict,
    inconclusive,
    reference_learns,
)

SETTINGS = ("original", "permuted")


class ActionsConfig(TeacherStudyConfig):
    """``permutation_seed``: draws each held-out task's relabelling; ``drop_bar``: the
    relative drop of the student's return that confirms the claim."""

    permutation_seed: Seed = Field(0, description="seed of the derangement that relabels each "
                                   "held-out task's actions")
    drop_bar: float = Field(0.5, gt=0, lt=1, description="relative drop of the student's return "
                            "under relabelled actions that confirms the claim (0.5: it loses "
                            "half)")


def run(cfg: ActionsConfig, ctx: RunContext) -> list[Section]:
    """Collect, train students, run them and the references on original and permuted tasks."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    history = collect_stage(cfg, ctx, "actions")
    n = min(cfg.student.context_len, cfg.teacher_episodes * family.episode_len)
    ckpts = train_by_setting(cfg, ctx, {"students": Setting(history, n)})["students"]
    ev = [cfg.env, cfg.tasks, cfg.eval, cfg.permutation_seed]
    students = ctx.stage_each(
        "evaluate", SETTINGS, lambda w: [*ev, w, [str(p) for p in ckpts]],
        lambda w, d: eval_students(cfg, families(cfg)[w], ids, ckpts))
    refs = ctx.stage_each("baselines", SETTINGS, lambda w: [*ev, w, cfg.teacher],
                          lambda w, d: run_references(cfg, families(cfg)[w], ids))
    return [actions_section(cfg, family, ids, students, refs, ctx.run_dir / "actions.png")]


def families(cfg: ActionsConfig) -> dict[str, object]:
    base = make_family(cfg.env)
    return {"original": base, "permuted": PermutedActions(base, seed=cfg.permutation_seed)}


def run_means(curves: np.ndarray) -> np.ndarray:
    """Each (learner, task) cell's mean return over the whole run: (S, T)."""
    return M.cells(curves).mean(axis=-1)


def relative_drop(original: np.ndarray, permuted: np.ndarray) -> Estimate | None:
    """1 - mean(permuted) / mean(original) over the same learners and tasks, with its
    crossed CI (None when the original mean return is not positive: nothing to fall from)."""
    if run_means(original).mean() <= 0:
        return None
    r = crossed_ratio_ci(run_means(permuted), run_means(original))
    return Estimate(1.0 - r.value, 1.0 - r.high, 1.0 - r.low, r.confidence)


def actions_section(cfg: ActionsConfig, family, ids: np.ndarray,
                    students: dict[str, np.ndarray], refs: dict[str, dict[str, np.ndarray]],
                    fig_path: Path) -> Section:
    optimum = mean_optimum(family, ids)
    curves = {"student": students, **{name: {w: refs[w][name] for w in SETTINGS}
                                      for name in ("teacher", "random")}}
    drops = {name: relative_drop(c["original"], c["permuted"]) for name, c in curves.items()}
    if drops["student"] is None or drops["teacher"] is None:
        verdict = inconclusive(INCONCLUSIVE, "the student's or the teacher's mean return on the "
                                        "original tasks is 0, so there is no drop to measure")
    else:
        verdict = action_semantics_verdict(drops["student"], drops["teacher"], cfg.drop_bar,
                                           cfg.resolution)
    whole = students["original"].shape[-1]
    guard = reference_learns(M.versus(students["original"], refs["original"]["random"], whole),
                             cfg.resolution * optimum)
    if guard is not None:
        verdict = inconclusive(guard.label, f"{guard.reason}. {verdict.reason}")
    labels = {"student": f"student ({cfg.student.kind})", "teacher": "teacher run fresh",
              "random": "random"}
    rows = [{"learner": labels[name], "original": crossed_mean_ci(run_means(c["original"])),
             "permuted": crossed_mean_ci(run_means(c["permuted"])),
             **({"drop": drops[name]} if drops[name] is not None else {})}
            for name, c in curves.items()]
    lines = {f"{name}, {w}": M.mean_curve_ci(c[w]) for name, c in curves.items()
             if name != "random" for w in SETTINGS}
    fig = curves_figure(fig_path, lines, "episode", "return", None,
                        f"{cfg.env.name}: original vs permuted actions (95% CI)")
    s = cfg.student
    return Section(
        key="actions", title="Claim 11: action semantics",
        claim=f"With the actions permuted at test time the student's return falls by at least "
              f"{cfg.drop_bar:.0%}, while a fresh real learner is unaffected.",
        setting=f"{data_text(cfg)}. Student {s.kind} ({s.preset}), context {s.context_len} "
                f"steps, {run_text(cfg)}; everyone runs on the held-out tasks as they are and "
                f"with each task's actions deranged (permutation seed {cfg.permutation_seed}).",
        columns=["learner", "original", "permuted", "drop"], rows=rows,
        verdict=verdict.label, verdict_reason=verdict.reason, outcome=verdict.outcome,
        figures=[fig],
        notes=["original / permuted: mean return over the whole run (mean over (learner, "
               "task) cells of each cell's mean over its episodes), 95% CIs over learners and "
               "tasks (crossed). Drop: 1 - permuted / original, over the same learners and "
               "tasks. Every action of a permuted task does "
               "what another action did (a derangement drawn from the task id); goals and "
               "optimal returns are unchanged."])


STUDIES.register("actions")(Study(
    name="actions",
    description="action-semantics study: does a student fail when the actions are permuted?",
    config_model=ActionsConfig,
    run=run,
))

__all__ = ["ActionsConfig", "relative_drop", "run"]
