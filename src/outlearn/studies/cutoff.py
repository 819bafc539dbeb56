"""The cut-off study: does a student trained on a truncated learning history keep learning?

Claim 1 (truncated imitation plateaus): cut the teacher's histories where it first
reaches a fraction of optimal, train a student on what is left, run it in context on
held-out tasks for at least 3x the cut, and compare its asymptote with the data ceiling
(the teacher's best return in the kept data) and with the teacher's own continuation.
Claim 2 (early data alone teaches nothing): the same with only the episodes where the
teacher is no better than random. Claim 3 (horizon extrapolation, optional): a bandit
student trained on horizon T, run to factor x T with a sliding window.

:func:`run` reads as the protocol. Every stage is cached by its inputs' hash, so a
re-run skips finished stages and an interrupted one resumes (training from its last
checkpoint). Cuts that the data cannot support are refused after the (seconds-long)
collection and before any training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from outlearn.collect import TasksSection
from outlearn.errors import ConfigError
from outlearn.evaluation import metrics as M
from outlearn.evaluation.baselines import make_baseline, make_teacher
from outlearn.evaluation.evaluate import run_learner
from outlearn.histories.io import History
from outlearn.histories.transforms import cut_at_performance, cut_at_step
from outlearn.registry import STUDIES
from outlearn.report.figures import CutPanel, curves_figure, cutoff_figure
from outlearn.report.section import Section
from outlearn.stats import Estimate, bootstrap_ci
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    collect_histories,
    eval_students,
    run_references,
    test_tasks,
    train_student,
)
from outlearn.studies.cutoff_config import (
    Cut,
    CutoffConfig,
    HorizonSection,
    StudentSection,
    cut_name,
    make_family,
)
from outlearn.studies.verdicts import (
    Verdict,
    cutoff_verdict,
    difference_of_means,
    ratio_of_means,
    reference_learns,
    regret_trend_verdict,
    tracks_reference_verdict,
    versus_random_verdict,
)

NO_REFERENCE = "inconclusive (the uncut student does not learn)"


# ------------------------------------------------------------------------------ the study
def run(cfg: CutoffConfig, ctx: RunContext) -> list[Section]:
    """Collect, cut, check, train, evaluate, measure, judge; returns the report sections."""

    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    test_ids = test_tasks(family, cfg.tasks)
    full = ctx.stage("collect", [cfg.env, cfg.teacher, cfg.tasks, cfg.learners_per_task,
                                 cfg.teacher_episodes, cfg.seed],
                     lambda d: collect_histories(cfg, d, ctx.quiet))
    cuts = {cut_name(c): ctx.stage("cut", [str(full), c, cfg.smoothing],
                                   lambda d, c=c: cut_history(cfg, family, full, c, d))
            for c in cfg.cuts}
    check_eval_horizon(cfg, cuts)  # refuse before any training
    ev = [cfg.env, cfg.tasks, cfg.eval]
    base = ctx.stage("baselines", [*ev, cfg.teacher],
                     lambda d: run_references(cfg, family, test_ids))
    # one student per (cut, seed), then each cut's students in context: independent
    # stages, run at once with `outlearn run --workers N`
    quiet = ctx.quiet or ctx.executor.workers > 1
    runs = [(cut, s) for cut in cuts.values() for s in cfg.train_seeds]
    ckpts = ctx.stages(
        "train", [[str(cut.path), cut.context_len, cfg.student, s, cfg.env] for cut, s in runs],
        [lambda d, cut=cut, s=s: train_student(cfg, cut.path, cut.context_len, s, d, quiet)
         for cut, s in runs])
    per_cut = {name: ckpts[i * len(cfg.train_seeds):(i + 1) * len(cfg.train_seeds)]
               for i, name in enumerate(cuts)}
    evals = ctx.stages(
        "evaluate", [[*ev, [str(p) for p in per_cut[name]]] for name in cuts],
        [lambda d, k=per_cut[name]: eval_students(cfg, make_family(cfg.env), test_ids, k)
         for name in cuts])
    students = dict(zip(cuts, evals, strict=True))
    res = Results(cfg, family, test_ids, cuts, students, base)
    sections = [claim1_section(res, res.figure(ctx.run_dir / "cutoff.png"))]
    if "early" in cuts:
        sections.append(claim2_section(res))
    if cfg.horizon_extrapolation is not None:
        sections.append(horizon_section(cfg, cfg.horizon_extrapolation, ctx))
    return sections


@dataclass(frozen=True)
class CutInfo:
    """A cut history: its file, how much of the teacher it keeps, and its data ceiling."""

    name: str
    path: Path
    steps: int
    episodes: int
    context_len: int
    ceiling: M.DataCeiling


def cut_history(cfg: CutoffConfig, family: Any, full: Path, c: Cut, d: Path) -> CutInfo:
    """Cut ``full`` at a fraction of optimal, at the end of the early episodes, or not."""
    dst = d / "cut.h5"
    if c == "uncut":
        h = History(full)
    elif c == "early":
        h = cut_at_step(full, early_steps(cfg, family, full), dst)
    else:
        h, _ = cut_at_performance(full, float(c), dst, window=cfg.smoothing, split="train")
    with h:
        ret = h.episode_returns[h.learners("train")]
        steps, path = h.num_steps, Path(h.path)
    episodes = int(np.isfinite(ret).sum(axis=1).min())
    ceiling = M.data_ceiling(ret[:, :episodes], window=min(cfg.smoothing, episodes))
    return CutInfo(cut_name(c), path, steps, episodes, min(cfg.student.context_len, steps),
                   ceiling)


def early_steps(cfg: CutoffConfig, family: Any, full: Path) -> int:
    """Steps of the leading episodes where the teacher is no better than random: episode
    ``e`` is the first "better" one when the lower end of the 95% CI of the teacher's mean
    return there (over train learners) is above the upper end of random's on those tasks."""
    with History(full) as h:
        idx = h.learners("train")
        ids, ret = np.unique(h.task_ids[idx]), h.episode_returns[idx].astype(np.float64)
        lengths = h.episode_lengths[idx]
    rand = run_learner(family, make_baseline("random", family), ids, [cfg.seed], 20)[0]
    high = bootstrap_ci(rand.mean(axis=-1).ravel()).high
    n = next((e for e in range(ret.shape[1])
              if bootstrap_ci(ret[np.isfinite(ret[:, e]), e]).low > high), ret.shape[1])
    if n < 1:
        raise ConfigError(
            f"the teacher beats random (CI high {high:.3g}) in its first episode, so there "
            "is no early-only data: remove \"early\" from cuts or use a slower teacher")
    return int(math.ceil(float(np.cumsum(lengths, axis=1)[:, n - 1].mean())))


def check_eval_horizon(cfg: CutoffConfig, cuts: dict[str, CutInfo]) -> None:
    """Refuse an evaluation shorter than 3x any cut (the uncut reference is exempt)."""
    for name, cut in cuts.items():
        if name != "uncut" and cfg.eval.episodes < 3 * cut.episodes:
            raise ConfigError(
                f"cut {name} keeps {cut.episodes} teacher episodes, so the student must run "
                f"for at least 3 x {cut.episodes} = {3 * cut.episodes} episodes, but "
                f"eval.episodes = {cfg.eval.episodes}: raise eval.episodes to "
                f"{3 * cut.episodes} or lower the cut")


# ------------------------------------------------------------------------------ the numbers
class Results:
    """Curves and metrics of a finished run. Curves: (units, tasks, episodes)."""

    def __init__(self, cfg: CutoffConfig, family: Any, ids: np.ndarray,
                 cuts: dict[str, CutInfo], students: dict[str, np.ndarray],
                 base: dict[str, np.ndarray]):
        import jax

        self.cfg, self.cuts, self.students, self.base = cfg, cuts, students, base
        opt = jax.vmap(family.optimal_return)(family.task_params(ids))
        self.optimum = float(np.mean(np.asarray(opt)))
        self.tol = cfg.resolution * self.optimum
        self.last_n = cfg.eval.last_n or max(1, cfg.eval.episodes // 10)

    def asymptote(self, name: str) -> Estimate:
        return M.asymptote(self.students[name], self.last_n)

    def base_asymptote(self, name: str) -> Estimate:
        return M.asymptote(self.base[name], self.last_n)

    def exceedance(self, name: str) -> Estimate:
        return M.exceedance(self.students[name], self.cuts[name].ceiling, self.last_n)

    def gap(self, name: str) -> Estimate:
        return M.continuation_gap(self.base["teacher"], self.students[name], self.last_n)

    def versus_random(self, name: str) -> Estimate:
        return difference_of_means(M.asymptote_units(self.students[name], self.last_n),
                                   M.asymptote_units(self.base["random"], self.last_n))

    def guard(self) -> Verdict | None:
        """Inconclusive when the uncut student does not beat random (None: it does, or
        there is no uncut reference to check)."""
        if "uncut" not in self.students:
            return None
        return reference_learns(self.versus_random("uncut"), self.tol)

    def reference_rows(self) -> list[dict[str, Any]]:
        names = {"teacher": "teacher run fresh (unseen continuation)", "random": "random",
                 "no-op": "no-op", "optimum": "optimum (oracle)"}
        return [{"learner": label, "asymptote": self.base_asymptote(n)}
                for n, label in names.items() if n in self.base]

    def setting(self) -> str:
        c, s = self.cfg, self.cfg.student
        return (f"{c.env.name} {c.env.kwargs or ''}, teacher {c.teacher.name} "
                f"{c.teacher.kwargs or ''}: {c.tasks.n_train} train / {c.tasks.n_test} held-out "
                f"tasks x {c.learners_per_task} teacher learners, {c.teacher_episodes} teacher "
                f"episodes (cuts smoothed over {c.smoothing}). Student {s.kind} ({s.preset}), "
                f"context {s.context_len} steps, {s.train_steps} steps, seeds {c.train_seeds}; "
                f"run in context for {c.eval.episodes} episodes x eval seeds {c.eval.seeds}.")

    def figure(self, path: Path) -> Path:
        teacher = self.base["teacher"].mean(axis=(0, 1))
        title = {"uncut": "uncut (the whole history)", "early": "early episodes only"}
        panels = [CutPanel(f"{title.get(n, f'cut at {n} of optimal')}: {c.episodes} ep. seen",
                           M.mean_curve_ci(self.students[n]), c.episodes, c.ceiling.best.value)
                  for n, c in self.cuts.items()]
        lines: dict[str, np.ndarray | float] = {
            n: self.base[n].mean(axis=(0, 1)) for n in ("random", "no-op") if n in self.base}
        lines["optimum"] = self.optimum
        return cutoff_figure(path, teacher, panels, lines,
                             suptitle=f"{self.cfg.env.name}, teacher {self.cfg.teacher.name}: "
                                      "students (95% CI) vs the teacher's continuation")


def headline(names: list[str]) -> str | None:
    """The fractional cut closest to 0.4 of optimal (CLAIMS: ~40%), if any."""
    fr = [n for n in names if n not in ("uncut", "early")]
    return min(fr, key=lambda n: abs(float(n) - 0.4)) if fr else None


# ------------------------------------------------------------------------------ the sections
def claim1_section(res: Results, fig: Path) -> Section:
    """Claim 1: one row per cut, plus the teacher and the baselines."""
    cfg, rows, verdicts, guard = res.cfg, [], {}, res.guard()
    for name, cut in res.cuts.items():
        if name == "early":
            continue
        ex, gap = res.exceedance(name), res.gap(name)
        verdicts[name] = v = cutoff_verdict(ex, gap, res.tol)
        rows.append({"learner": f"student, cut {name} ({cut.episodes} episodes seen)",
                     "data ceiling": cut.ceiling.best, "asymptote": res.asymptote(name),
                     "exceedance": ex, "continuation gap": gap,
                     "student - random": res.versus_random(name),
                     "verdict": NO_REFERENCE if guard else v.label})
    rows += res.reference_rows()
    head = headline(list(verdicts))
    verdict = f"cut {head}: {verdicts[head].label}" if head else "no fractional cut to judge"
    reason = verdicts[head].reason if head else "add a cut below convergence, e.g. cuts = [0.4]"
    if guard is not None and head:
        verdict, reason = guard.label, f"{guard.reason}. Cut {head}: {reason}"
    return Section(
        key="cutoff", title="Claim 1: truncated imitation plateaus",
        claim="A student trained on histories cut before the teacher converges plateaus at "
              "its data ceiling instead of reaching the teacher's unseen continuation.",
        setting=res.setting(),
        columns=["learner", "data ceiling", "asymptote", "exceedance", "continuation gap",
                 "student - random", "verdict"],
        rows=rows, verdict=verdict, verdict_reason=reason, figures=[fig],
        notes=[f"Asymptote: mean return over the last {res.last_n} of {cfg.eval.episodes} "
               f"episodes on held-out tasks. Data ceiling: the teacher's best {cfg.smoothing}-"
               "episode mean return in the kept data. Exceedance = asymptote - data ceiling; "
               "continuation gap = teacher run fresh on the same tasks - student, over the "
               f"same last episodes. Resolution (the smallest difference that counts): "
               f"{res.tol:.3g} = {cfg.resolution:g} x the mean optimal return "
               f"{res.optimum:.3g}."])


def claim2_section(res: Results) -> Section:
    """Claim 2: the early-only student against random."""
    cut, diff = res.cuts["early"], res.versus_random("early")
    v = res.guard() or versus_random_verdict(diff, res.tol)
    rows = [{"learner": f"student, early only ({cut.episodes} episodes seen)",
             "asymptote": res.asymptote("early"), "student - random": diff, "verdict": v.label},
            {"learner": "random", "asymptote": res.base_asymptote("random")}]
    return Section(
        key="early", title="Claim 2: early data alone teaches nothing",
        claim="A student trained only on the episodes where the teacher is no better than "
              "random is itself no better than random.",
        setting=f"{res.setting()} Early episodes: the first {cut.episodes}, before the "
                "teacher's smoothed mean return rises above random's 95% CI.",
        columns=["learner", "asymptote", "student - random", "verdict"], rows=rows,
        verdict=v.label, verdict_reason=v.reason,
        notes=["The early-only student's curve is the 'early' panel of the figure above."])


def horizon_section(cfg: CutoffConfig, h: HorizonSection, ctx: RunContext) -> Section:
    """Claim 3: bandit student trained on T pulls, run to factor x T with a sliding window."""
    family, T, F = make_family(h.env), h.T, h.factor
    st = (h.student or cfg.student).model_copy(update={"context_len": T})
    tasks = TasksSection(seed=cfg.tasks.seed, n_train=h.n_train, n_test=h.n_test)
    sub = cfg.model_copy(update={"env": h.env, "teacher": h.teacher, "tasks": tasks,
                                 "teacher_episodes": T, "student": st, "smoothing": 1})
    hin = [h, cfg.seed, cfg.tasks.seed, cfg.learners_per_task]
    full = ctx.stage("h-collect", hin, lambda d: collect_histories(sub, d, ctx.quiet))
    quiet = ctx.quiet or ctx.executor.workers > 1
    ckpts = ctx.stages("h-train", [[h, st, s, str(full)] for s in cfg.train_seeds],
                       [lambda d, s=s: train_student(sub, full, T, s, d, quiet)
                        for s in cfg.train_seeds])
    ids = test_tasks(family, tasks)
    student = ctx.stage("h-evaluate", [*hin, cfg.eval, [str(p) for p in ckpts]],
                        lambda d: eval_students(sub, family, ids, ckpts, F * T, regret=True))
    ref = ctx.stage("h-reference", [*hin, cfg.eval.seeds], lambda d: run_learner(
        family, make_teacher(h.teacher.name, family, **h.teacher.kwargs), ids,
        cfg.eval.seeds, F * T)[1])
    su, ru = M.units(student), M.units(ref)
    before, after = su[:, T // 2:T].mean(1), su[:, -(T // 2):].mean(1)
    drop = bootstrap_ci(before - after)
    ratio = ratio_of_means(su.sum(1), ru.sum(1), paired=False)
    trend = regret_trend_verdict(drop, cfg.resolution * max(float(before.mean()), 1e-9))
    track = tracks_reference_verdict(ratio, h.within, h.teacher.name)
    fig = curves_figure(ctx.run_dir / "horizon.png",
                        {"student": M.mean_curve_ci(np.cumsum(student, -1)),
                         h.teacher.name: M.mean_curve_ci(np.cumsum(ref, -1))},
                        "pull", "cumulative regret", {"T (training horizon)": T},
                        f"{h.env.name}: trained on T={T}, run to {F}T")
    cum = lambda u: bootstrap_ci(u.sum(1))  # noqa: E731
    rows = [{"learner": "student", "regret/pull before T": bootstrap_ci(before),
             "regret/pull at the end": bootstrap_ci(after), "drop": drop,
             f"cumulative regret at {F}T": cum(su), f"ratio to {h.teacher.name}": ratio},
            {"learner": h.teacher.name, "regret/pull before T": bootstrap_ci(
                ru[:, T // 2:T].mean(1)), "regret/pull at the end": bootstrap_ci(
                ru[:, -(T // 2):].mean(1)), f"cumulative regret at {F}T": cum(ru)}]
    return Section(
        key="horizon", title="Claim 3: horizon extrapolation",
        claim=f"A bandit student trained on T={T} pulls stops improving past T; it does not "
              f"track {h.teacher.name}'s cumulative regret to {F}T within {h.within:.0%}.",
        setting=f"{h.env.name} {h.env.kwargs}, teacher {h.teacher.name}: {h.n_train} train / "
                f"{h.n_test} held-out tasks; student context = T = {T} pulls (sliding window), "
                f"seeds {cfg.train_seeds} x eval seeds {cfg.eval.seeds}.",
        columns=["learner", "regret/pull before T", "regret/pull at the end", "drop",
                 f"cumulative regret at {F}T", f"ratio to {h.teacher.name}"],
        rows=rows, verdict=f"{trend.label}; {track.label}",
        verdict_reason=f"{trend.reason}; {track.reason}", figures=[fig],
        notes=[f"Before T: pulls [{T // 2}, {T}); at the end: the last {T // 2} pulls."])


STUDIES.register("cutoff")(Study(
    name="cutoff",
    description="cut-off study: does a student trained on truncated histories keep learning?",
    config_model=CutoffConfig,
    run=run,
))

__all__ = ["CutInfo", "CutoffConfig", "HorizonSection", "Results", "StudentSection", "run"]
