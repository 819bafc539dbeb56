"""The cut-off study's config: what to collect, where to cut, how to train and evaluate.

Impossible settings are refused when the config is parsed (before any work); cuts that
only the teacher's curve can rule out are refused after collection, before training
(see :func:`outlearn.studies.cutoff.check_eval_horizon`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from outlearn.collect import EnvSection, TasksSection, TeacherSection
from outlearn.config import Config
from outlearn.evaluation.baselines import make_teacher
from outlearn.registry import ENVS

Cut = float | Literal["uncut", "early"]


class StudentSection(Config):
    """The student and its training (see :class:`outlearn.students.TrainConfig`)."""

    kind: str = "ad"
    preset: str = "small"
    model: dict[str, Any] = Field(default_factory=dict)
    context_len: int = Field(60, ge=2, description="steps; cut to the history's length")
    labels: str = "actions"
    train_steps: int = Field(500, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(50, ge=0)
    val_fraction: float = Field(0.0, ge=0, lt=1)
    checkpoint_every: int = Field(100, ge=1)

    def train_config(self, history: Path, env: str, seed: int, out: Path,
                     context_len: int, threads: int | None) -> Any:
        from outlearn.students.train import TrainConfig

        return TrainConfig.model_validate({
            "history": history, "env": env, "seed": seed, "out": out, "threads": threads,
            "student": {"kind": self.kind, "preset": self.preset, "model": self.model},
            "data": {"context_len": context_len, "labels": self.labels,
                     "batch_size": self.batch_size, "val_fraction": self.val_fraction},
            "optim": {"lr": self.lr, "total_steps": self.train_steps,
                      "warmup_steps": min(self.warmup_steps, self.train_steps)},
            "checkpoint_every": self.checkpoint_every, "val_every": self.train_steps})

    def check(self) -> None:
        """Refuse an unknown kind, preset, model key or label now, not after collection."""
        from outlearn.students.train import model_config

        tc = self.train_config(Path("unused.h5"), "unused", 0, Path("unused"),
                               self.context_len, None)
        model_config(tc.student, self.context_len)


class EvalSection(Config):
    episodes: int = Field(ge=1, description=">= 3x every cut and >= teacher_episodes")
    seeds: list[int] = Field(default=[0], min_length=1)
    last_n: int | None = Field(None, ge=1, description="episodes of the asymptote (10%)")
    mode: Literal["sample", "greedy"] = "sample"


class HorizonSection(Config):
    """Claim 3: bandit student trained on ``T`` pulls, run to ``factor * T``."""

    env: EnvSection = EnvSection(name="bernoulli-bandit", kwargs={"num_arms": 5})
    teacher: TeacherSection = TeacherSection(name="ucb1")
    T: int = Field(100, ge=4)
    factor: int = Field(10, ge=2)
    n_train: int = Field(40, ge=1)
    n_test: int = Field(20, ge=1)
    within: float = Field(0.2, gt=0)
    student: StudentSection | None = None


class CutoffConfig(Config):
    """The cut-off study. ``cuts``: fractions of optimal in (0, 1), ``"uncut"`` (the whole
    history, the reference) and ``"early"`` (only the episodes where the teacher is no
    better than random)."""

    env: EnvSection
    teacher: TeacherSection
    tasks: TasksSection
    learners_per_task: int = Field(1, ge=1)
    teacher_episodes: int = Field(ge=2, description="the full horizon of the histories")
    seed: int = Field(0, ge=0)
    cuts: list[Cut] = Field(min_length=1)
    student: StudentSection = Field(default_factory=StudentSection)
    eval: EvalSection
    train_seeds: list[int]
    smoothing: int = Field(3, ge=1, description="episodes in the teacher's trailing mean")
    resolution: float = Field(0.1, gt=0, le=1, description="fraction of optimal that matters")
    threads: int | None = Field(None, ge=1)
    horizon_extrapolation: HorizonSection | None = None

    @model_validator(mode="after")
    def _check(self) -> CutoffConfig:
        if len(set(self.train_seeds)) < 2:
            raise ValueError(f"train_seeds={self.train_seeds}: give at least 2 distinct seeds "
                             "(one student per seed), e.g. train_seeds = [0, 1]")
        for c in self.cuts:
            if isinstance(c, float) and not 0.0 < c < 1.0:
                raise ValueError(f"cut {c} must be a fraction of optimal in (0, 1), or "
                                 "\"uncut\" / \"early\": fix cuts")
        if len({cut_name(c) for c in self.cuts}) != len(self.cuts):
            raise ValueError(f"cuts={self.cuts} has duplicates: remove them")
        if self.tasks.n_train < 1 or self.tasks.n_test < 1:
            raise ValueError("tasks.n_train and tasks.n_test must both be >= 1 (students train "
                             "on train tasks and are evaluated on held-out test tasks)")
        if self.eval.episodes < self.teacher_episodes:
            raise ValueError(
                f"eval.episodes={self.eval.episodes} is shorter than the teacher's horizon "
                f"teacher_episodes={self.teacher_episodes}: raise eval.episodes to at least "
                f"{self.teacher_episodes}")
        if self.eval.last_n is not None and self.eval.last_n > self.eval.episodes:
            raise ValueError(f"eval.last_n={self.eval.last_n} > eval.episodes: lower it")
        family = make_family(self.env)  # unknown names: the registries' ConfigError
        make_teacher(self.teacher.name, family, **self.teacher.kwargs)
        self.student.check()
        if self.horizon_extrapolation is not None:
            h = self.horizon_extrapolation
            if make_family(h.env).episode_len != 1:
                raise ValueError(f"horizon_extrapolation.env {h.env.name!r} is not a bandit "
                                 "(episode_len 1): use e.g. 'bernoulli-bandit'")
            make_teacher(h.teacher.name, make_family(h.env), **h.teacher.kwargs)
        return self


def cut_name(c: Cut) -> str:
    return c if isinstance(c, str) else f"{c:g}"


def make_family(env: EnvSection) -> Any:
    import outlearn.envs  # noqa: F401  (registers the families)

    return ENVS.get(env.name)(**env.kwargs)


