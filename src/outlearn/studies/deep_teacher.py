"""The deep-teacher study: does a student keep learning past the cut when its teacher's
learning lives in network weights (DQN on MinAtar), as against a tabular teacher?

Each setting (a game and a teacher: DQN on Breakout-MinAtar, Q-learning on Dark Room)
records the teacher's histories, cuts the train tasks' histories at ``cut_steps``, trains
one student per seed on what is left, and asks three questions on held-out tasks:

(a) **At the cut.** The student continues each held-out teacher's history: its context
    is primed with that teacher's last steps before the cut, then it plays. Does it play
    at the teacher's level at the cut (its first window against the teacher's last
    window before the cut)?
(b) **Past the cut.** Run on for ``eval_steps`` (at least ``episodes_factor`` x the cut's
    episodes at the cut's pace), does it keep improving like the same teacher's own
    continuation, which the histories hold past the cut, or plateau at the cut's level?
(c) **From scratch on unseen games.** Started with an empty context on the original
    game and on each ``transfer`` game (another game with the same actions, frames
    padded to a common channel count; the same game with its actions permuted), does it
    learn in context, against the teacher run fresh on that game and random?

Returns are compared over windows of ``window_steps`` steps (the mean return of the
episodes that end in each window: :func:`~outlearn.evaluation.metrics.window_returns`),
because MinAtar's episodes vary in length. CIs are over trained students crossed with
held-out tasks (:mod:`outlearn.stats`); eval seeds and the several teacher learners of a
task are nested in each (student, task) cell. Verdicts and tables:
:mod:`outlearn.studies.deep_teacher_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from pydantic import Field, model_validator

from outlearn.collect import CollectConfig, EnvSection, TasksSection, TeacherSection, collect
from outlearn.config import Config, Seed
from outlearn.envs.base import has_oracle, obs_shape
from outlearn.errors import ConfigError
from outlearn.evaluation import metrics as M
from outlearn.evaluation.baselines import make_baseline, make_teacher
from outlearn.evaluation.evaluate import LearnerSpec, rollout_units, student_factory
from outlearn.histories.io import History
from outlearn.histories.transforms import cut_at_step
from outlearn.registry import STUDIES
from outlearn.report.section import Section
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    StudentSection,
    TeacherStudyConfig,
    held_out_tasks,
    make_family,
    train_by_setting,
)


class GameSection(Config):
    """A game the students are run on from scratch in question (c)."""

    name: str = Field(description="its label in the report, e.g. 'freeway'")
    env: EnvSection = Field(description="the task family ([env] table): the same actions and "
                            "observation shape as the setting's game")


class DeepSetting(Config):
    """One teacher on one game: its histories, the cut, the student, the runs."""

    name: str = Field(description="the setting's label in the report, e.g. 'dqn-breakout'")
    env: EnvSection = Field(description="the game the teacher learns ([env] table)")
    teacher: TeacherSection = Field(description="the teacher ([teacher] table), e.g. dqn")
    tasks: TasksSection = Field(description="train tasks (the students' data) and held-out "
                                "tasks (every question is answered there)")
    learners_per_task: int = Field(1, ge=1, description="teacher runs recorded per task; on "
                                   "held-out tasks each is one history the students continue")
    cut_steps: int = Field(ge=1, description="the students train on the first cut_steps steps "
                           "of every train learner's history (a multiple of window_steps)")
    eval_steps: int = Field(ge=1, description="steps the students play past the cut "
                            "(questions a, b); the teacher's histories run this far past it")
    scratch_steps: int = Field(ge=1, description="steps of the from-scratch runs of "
                               "question (c), for the students, the teacher run fresh and random")
    window_steps: int = Field(ge=1, description="steps per window of the return curves "
                              "(>= every game's episode_len, so each window ends an episode)")
    student: StudentSection = Field(default_factory=StudentSection,
                                    description="the student and its training ([student] table)")
    transfer: list[GameSection] = Field(default_factory=list, description="games the students "
                                        "never saw, run from scratch in question (c)")

    @model_validator(mode="after")
    def _check(self) -> DeepSetting:
        for what in ("cut_steps", "eval_steps", "scratch_steps"):
            n = getattr(self, what)
            if n % self.window_steps or n < 2 * self.window_steps:
                raise ValueError(
                    f"setting {self.name!r}: {what}={n} must be a multiple of window_steps="
                    f"{self.window_steps} and at least two windows: set it to a multiple of "
                    f"{self.window_steps} >= {2 * self.window_steps}")
        if self.tasks.n_train < 1 or self.tasks.n_test < 1:
            raise ValueError(f"setting {self.name!r}: tasks.n_train and tasks.n_test must both "
                             "be >= 1 (students train on train tasks, answer on held-out ones)")
        names = [g.name for g in self.transfer]
        if len(set(names)) != len(names) or self.name in names:
            raise ValueError(f"setting {self.name!r}: transfer game names {names} must be "
                             "unique and differ from the setting's name: rename them")
        return self


class DeepTeacherConfig(Config):
    """Settings (each a teacher on a game) answered side by side; the first is the one
    the study is about (the deep teacher), the others its contrast."""

    settings: list[DeepSetting] = Field(min_length=1, description="[[settings]] tables, "
                                        "e.g. DQN on Breakout-MinAtar and Q-learning on Dark Room")
    train_seeds: list[Seed] = Field(description="one student per seed and setting (at least 2 "
                                    "distinct: CIs are over students)")
    eval_seeds: list[Seed] = Field(default=[0], min_length=1, description="each student and "
                                   "reference runs once per seed on every held-out unit")
    seed: Seed = Field(0, description="seed of the teacher learners' keys (the collection)")
    mode: Literal["sample", "greedy"] = Field("sample", description="how students act: "
                                              "'sample' from their output or its argmax")
    resolution: float = Field(0.1, gt=0, le=1, description="the difference that matters, as a "
                              "fraction of the setting's scale: the optimal return where the "
                              "game has one, else the teacher's return at the end of its "
                              "continuation")
    episodes_factor: float = Field(10.0, gt=0, description="the run past the cut must last at "
                                   "least this many times the cut's episodes, at the teacher's "
                                   "episode length at the cut (checked after collection)")
    threads: int | None = Field(None, ge=1, description="threads of each student's training "
                                "(unset: $OUTLEARN_TORCH_THREADS, which --workers sets to 1)")

    @model_validator(mode="after")
    def _check(self) -> DeepTeacherConfig:
        if len(set(self.train_seeds)) < 2:
            raise ValueError(f"train_seeds={self.train_seeds}: give at least 2 distinct seeds")
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names):
            raise ValueError(f"setting names {names} must be unique: rename the duplicates")
        for s in self.settings:
            check_games(s)
            s.student.check(s.student.context_len)
        return self


def check_games(s: DeepSetting) -> None:
    """Every game of a setting builds, has the teacher's actions and observation shape,
    and episodes no longer than a window (ConfigError naming the fix)."""
    base = make_family(s.env)
    make_teacher(s.teacher.name, base, **s.teacher.kwargs)
    for g in [GameSection(name=s.name, env=s.env), *s.transfer]:
        fam = make_family(g.env)
        if g.name != s.name and (fam.num_actions, fam.num_obs, obs_shape(fam)) != (
                base.num_actions, base.num_obs, obs_shape(base)):
            raise ConfigError(
                f"setting {s.name!r}: transfer game {g.name!r} has {fam.num_actions} actions, "
                f"{fam.num_obs} observations, frames {obs_shape(fam)}; the students trained on "
                f"{s.env.name} see {base.num_actions}, {base.num_obs}, {obs_shape(base)}. Pick "
                "a game with the same actions; for MinAtar frames set env.kwargs.pad_channels "
                "to the larger channel count in both games")
        if fam.episode_len > s.window_steps:
            raise ConfigError(
                f"setting {s.name!r}: game {g.name!r} has episodes of up to {fam.episode_len} "
                f"steps, longer than window_steps={s.window_steps}, so a window may end no "
                f"episode: raise window_steps to >= {fam.episode_len} or shorten its "
                "episodes (env.kwargs.episode_len)")


# ------------------------------------------------------------------------------ the study
@dataclass(frozen=True)
class SettingView:
    """What the shared training stages read of a study config (one setting's student)."""

    train_seeds: list[int]
    student: StudentSection
    env: EnvSection
    threads: int | None


@dataclass(frozen=True)
class SettingResult:
    """One setting's measurements (see :func:`run_setting`): window curves of return,
    (students, eval seeds x learners, tasks, windows) for students and (learners or eval
    seeds, tasks, windows) for the references."""

    setting: DeepSetting
    data: dict[str, Any]  # the cut's numbers and the teacher's window curves
    continue_curves: np.ndarray  # students continuing the held-out histories (a, b)
    scratch: dict[str, np.ndarray]  # game -> students from scratch (c)
    fresh: dict[str, dict[str, np.ndarray]]  # game -> {"teacher", "random"} from scratch
    optimum: float  # the mean optimal return on the held-out tasks (NaN: no oracle)


def run(cfg: DeepTeacherConfig, ctx: RunContext) -> list[Section]:
    """Every setting's collection, cut, students and runs; then the report's sections."""
    from outlearn.studies.deep_teacher_report import sections

    configure_threads(cfg.threads)
    results = [run_setting(cfg, s, ctx) for s in cfg.settings]
    return sections(cfg, results, ctx.run_dir)


def run_setting(cfg: DeepTeacherConfig, s: DeepSetting, ctx: RunContext) -> SettingResult:
    family = make_family(s.env)
    full = ctx.stage("dt-collect", [s.env, s.teacher, s.tasks, s.learners_per_task,
                                    s.cut_steps + s.eval_steps, cfg.seed],
                     lambda d: collect_histories(cfg, s, d, ctx.quiet))
    data = ctx.stage("dt-cut", [str(full), s.cut_steps, s.window_steps, s.tasks, s.env],
                     lambda d: cut_data(s, full, d))
    check_horizon(cfg, s, data)  # refuse before any training
    view = cast(TeacherStudyConfig, SettingView(cfg.train_seeds, s.student, s.env, cfg.threads))
    context = min(s.student.context_len, s.cut_steps)
    ckpts = train_by_setting(view, ctx, {s.name: Setting(Path(data["cut"]), context)})[s.name]
    games = {s.name: s.env, **{g.name: g.env for g in s.transfer}}
    run_in = [s.env, s.tasks, s.learners_per_task, cfg.eval_seeds, cfg.mode, s.window_steps]
    cont = ctx.stages(
        "dt-continue", [[*run_in, str(full), s.cut_steps, s.eval_steps, [str(p)]]
                        for p in ckpts],
        [lambda d, p=p: continue_history(cfg, s, full, p) for p in ckpts])
    runs = [(g, p) for g in games for p in ckpts]
    scratch = ctx.stages(
        "dt-scratch", [[games[g], s.tasks, cfg.eval_seeds, cfg.mode, s.window_steps,
                        s.scratch_steps, [str(p)]] for g, p in runs],
        [lambda d, g=g, p=p: from_scratch(cfg, s, games[g], student=p) for g, p in runs])
    fresh = ctx.stages(
        "dt-fresh", [[games[g], s.tasks, cfg.eval_seeds, s.window_steps, s.scratch_steps,
                      s.teacher, who] for g in games for who in ("teacher", "random")],
        [lambda d, g=g, who=who: from_scratch(cfg, s, games[g], reference=who)
         for g in games for who in ("teacher", "random")])
    n = len(ckpts)
    by_game = {g: np.stack([scratch[i * n + k] for k in range(n)]) for i, g in enumerate(games)}
    refs = {g: {"teacher": fresh[2 * i], "random": fresh[2 * i + 1]}
            for i, g in enumerate(games)}
    optimum = float(np.nanmean(data["optimal"])) if has_oracle(family) else float("nan")
    return SettingResult(s, data, np.stack(cont), by_game, refs, optimum)


def collect_histories(cfg: DeepTeacherConfig, s: DeepSetting, d: Path, quiet: bool) -> Path:
    """The teacher's histories on train and held-out tasks, ``cut_steps + eval_steps``
    steps each (the held-out ones past the cut are the teacher's own continuation)."""
    cc = CollectConfig(env=s.env, teacher=s.teacher, tasks=s.tasks,
                       learners_per_task=s.learners_per_task,
                       num_steps=s.cut_steps + s.eval_steps, seed=cfg.seed, out=d / "full.h5",
                       chunk_steps=min(s.window_steps, 10_000))
    return collect(cc, progress=not quiet, created_by="outlearn study deep-teacher")


def cut_data(s: DeepSetting, full: Path, d: Path) -> dict[str, Any]:
    """Cut every history at ``cut_steps`` (the students' data) and measure, from the
    histories: the held-out teachers' window curves over their whole run (their level at
    the cut and their continuation), the episodes before the cut and their length."""
    cut = cut_at_step(full, s.cut_steps, d / "cut.h5")
    cut.close()
    with History(full) as h:
        test = h.learners("test")
        train = h.learners("train")
        curves = M.window_returns(h.read_steps("rewards", test), h.read_steps("terminated", test),
                                  h.read_steps("truncated", test), s.window_steps)
        lengths = h.episode_lengths.astype(np.int64)
        ends = np.cumsum(lengths, axis=1)
        before = (ends <= s.cut_steps) & (lengths > 0)
        episodes = before.sum(axis=1)
        # the teacher's pace at the cut: mean length of the episodes ending in its last window
        last = before & (ends > s.cut_steps - s.window_steps)
        pace = float(lengths[last].mean()) if last.any() else float(s.window_steps)
        return {"cut": str(d / "cut.h5"), "teacher_curves": curves,
                "test_tasks": h.task_ids[test], "cut_episodes": float(episodes[train].mean()),
                "cut_episodes_min": int(episodes[train].min()), "pace": pace,
                "optimal": h.optimal_return[test].astype(np.float64)}


def check_horizon(cfg: DeepTeacherConfig, s: DeepSetting, data: dict[str, Any]) -> None:
    """Refuse a run past the cut shorter than ``episodes_factor`` x the cut's episodes at
    the teacher's pace there (ConfigError naming the steps it needs)."""
    need = cfg.episodes_factor * data["cut_episodes"] * data["pace"]
    if s.eval_steps < need:
        w = s.window_steps
        fix = int(np.ceil(need / w) * w)
        raise ConfigError(
            f"setting {s.name!r}: the teachers finished {data['cut_episodes']:.0f} episodes "
            f"before the cut (at {data['pace']:.1f} steps each there), so {cfg.episodes_factor:g}"
            f"x the cut's episodes is about {need:,.0f} steps, more than eval_steps="
            f"{s.eval_steps:,}: raise eval_steps to {fix:,} (and scratch_steps as you like), "
            "or cut earlier")


def unit_curves(trajs: list[Any], window: int, learners: int) -> np.ndarray:
    """Window curves of one run over (eval seeds, held-out learners): (seeds x learners,
    tasks, windows), the learners of a task nested with the eval seeds in its cell."""
    per_seed = [M.window_returns(t.rewards, t.terminated, t.truncated, window) for t in trajs]
    c = np.stack(per_seed)  # (K, T*L, W), learners task-major
    K, TL, W = c.shape
    c = c.reshape(K, TL // learners, learners, W).transpose(0, 2, 1, 3)
    return c.reshape(K * learners, TL // learners, W)


def load_factory(cfg: DeepTeacherConfig, family: Any, ckpt: Path) -> tuple[Any, int]:
    """A checkpoint, loaded once: a factory ``(num_envs, seed) -> StudentLearner`` acting
    in ``cfg.mode`` and the context (steps) it was trained with."""
    return student_factory(LearnerSpec(name="student", kind="student", checkpoint=ckpt),
                           family, cfg.mode)


def continue_history(cfg: DeepTeacherConfig, s: DeepSetting, full: Path,
                     ckpt: Path) -> np.ndarray:
    """Questions (a) and (b): one student continues every held-out teacher learner's
    history from the cut (its context primed with that learner's last steps before it)
    for ``eval_steps`` steps; window curves (eval seeds x learners, tasks, windows)."""
    family = make_family(s.env)
    make, context = load_factory(cfg, family, ckpt)
    n = min(context, s.cut_steps) - 1
    with History(full) as h:
        test = h.learners("test")
        tasks = h.task_ids[test]
        sl = slice(s.cut_steps - n, s.cut_steps)
        prime = {k: h.dataset(name)[test, sl] for k, name in (
            ("obs", "obs"), ("actions", "actions"), ("rewards", "rewards"),
            ("terminated", "terminated"), ("truncated", "truncated"))}
    trajs = rollout_units(family, make, tasks, cfg.eval_seeds,
                          s.eval_steps, unit_ids=test, prime=prime if n > 0 else None)
    return unit_curves(trajs, s.window_steps, s.learners_per_task)


def from_scratch(cfg: DeepTeacherConfig, s: DeepSetting, env: EnvSection,
                 student: Path | None = None, reference: str | None = None) -> np.ndarray:
    """Question (c): a student (``student``, a checkpoint) or a reference (``"teacher"``
    run fresh, ``"random"``) from an empty start on the held-out tasks of ``env`` for
    ``scratch_steps``; window curves (eval seeds, tasks, windows)."""
    family = make_family(env)
    ids = held_out_tasks(family, s.tasks)
    if student is not None:
        learner = load_factory(cfg, family, student)[0]
    elif reference == "teacher":
        learner = make_teacher(s.teacher.name, family, **s.teacher.kwargs)
    else:
        learner = make_baseline("random", family)
    trajs = rollout_units(family, learner, ids, cfg.eval_seeds, s.scratch_steps)
    return unit_curves(trajs, s.window_steps, 1)


STUDIES.register("deep-teacher")(Study(
    name="deep-teacher",
    description="deep-teacher study: does a student keep learning past the cut of a DQN's "
                "history (MinAtar), as against a tabular teacher's?",
    config_model=DeepTeacherConfig,
    run=run,
))

__all__ = ["DeepSetting", "DeepTeacherConfig", "GameSection", "SettingResult", "run",
           "unit_curves"]
