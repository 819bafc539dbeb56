"""``outlearn collect``: run teachers on train and test tasks, write one history file.

A collection is ``learners_per_task`` independent teacher runs on every task of a
deterministic train/test split, all fused in one jitted ``lax.scan`` (see
:func:`outlearn.rollout.rollout_scan`). Learner ``l`` runs with
``jax.random.key(learner_seeds[l])``; the seeds come from ``seed`` alone, so the same
config gives the same file, byte for byte, on the same machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from pydantic import Field, model_validator
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from outlearn.atomic import check_output
from outlearn.config import Config, Seed, load_toml
from outlearn.errors import ConfigError
from outlearn.histories.io import write_history
from outlearn.histories.schema import HistoryMeta, LearnerInfo, flatten_task_params
from outlearn.rng import learner_keys

__all__ = [
    "CollectConfig",
    "EnvSection",
    "TasksSection",
    "TeacherSection",
    "collect",
    "collect_from_toml",
    "learner_keys",
    "learner_seeds",
]


class EnvSection(Config):
    """The task family: a registered name and its settings."""

    name: str = Field(description="a registered task family, e.g. 'darkroom' (`outlearn "
                      "explain envs` lists them)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="the family's settings "
                                   "(`outlearn explain envs/<name>`); unset keys keep its "
                                   "defaults")


class TeacherSection(Config):
    """The teacher: a registered name and its settings."""

    name: str = Field(description="a registered teacher, e.g. 'qlearning' (`outlearn explain "
                      "teachers` lists them)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="the teacher's settings "
                                   "(`outlearn explain teachers/<name>`); unset keys keep its "
                                   "defaults")


class TasksSection(Config):
    """Which tasks: a deterministic, disjoint train/test split of the family's tasks."""

    seed: Seed = Field(0, description="seed of the train/test task split")
    n_train: int = Field(ge=0, description="number of training tasks (students train on their "
                         "histories)")
    n_test: int = Field(0, ge=0, description="number of held-out test tasks (histories kept "
                        "for evaluation; students never train on them)")


class CollectConfig(Config):
    """A collection. Give exactly one of ``num_steps`` and ``num_episodes``
    (``num_episodes * episode_len`` steps: exact for fixed-length families)."""

    env: EnvSection = Field(description="the task family ([env] table)")
    teacher: TeacherSection = Field(description="the learner whose histories are recorded "
                                    "([teacher] table)")
    tasks: TasksSection = Field(description="the train/test split of tasks ([tasks] table)")
    learners_per_task: int = Field(1, ge=1, description="independent teacher runs on every "
                                   "task, each with its own seed")
    num_steps: int | None = Field(None, ge=1, description="steps per learner (give this or "
                                  "num_episodes)")
    num_episodes: int | None = Field(None, ge=1, description="episodes per learner, i.e. "
                                     "num_episodes x episode_len steps (give this or num_steps)")
    seed: Seed = Field(0, description="seed of the learners' keys")
    out: Path = Field(description="the HDF5 history file to write (relative to the config "
                      "file's folder)")
    chunk_steps: int = Field(1024, ge=1, description="steps per jitted chunk and per file chunk")

    @model_validator(mode="after")
    def _one_length(self) -> CollectConfig:
        if (self.num_steps is None) == (self.num_episodes is None):
            raise ValueError("give exactly one of num_steps and num_episodes")
        if self.tasks.n_train + self.tasks.n_test < 1:
            raise ValueError("tasks.n_train + tasks.n_test must be >= 1 (no learners to run)")
        return self


def learner_seeds(seed: int, num_learners: int) -> np.ndarray:
    """uint32 (L,) per-learner seeds, derived from ``seed`` (numpy SeedSequence)."""
    return np.random.SeedSequence(seed).generate_state(num_learners, dtype=np.uint32)


def resolve_num_steps(cfg: CollectConfig, episode_len: int) -> int:
    """Steps per learner; refuses fewer steps than one episode."""
    steps = cfg.num_steps
    if steps is None:
        assert cfg.num_episodes is not None  # the config holds exactly one of the two
        steps = cfg.num_episodes * episode_len
    if steps < episode_len:
        raise ConfigError(f"num_steps={steps} is shorter than one episode (episode_len="
                          f"{episode_len}): set num_steps >= {episode_len}")
    return steps


def _build(cfg: CollectConfig) -> tuple[Any, Any]:
    import outlearn.teachers  # noqa: F401  (registers the teachers)
    from outlearn.envs import make_family
    from outlearn.registry import TEACHERS

    family = make_family(cfg.env)
    teacher = TEACHERS.get(cfg.teacher.name)(family, **cfg.teacher.kwargs)
    return family, teacher


def plan_learners(cfg: CollectConfig, family: Any) -> tuple[np.ndarray, np.ndarray]:
    """(task_ids int64 (L,), split uint8 (L,)): train tasks first, each repeated
    ``learners_per_task`` times in a row."""
    from outlearn.envs.base import split_tasks

    train, test = split_tasks(family, cfg.tasks.seed, cfg.tasks.n_train, cfg.tasks.n_test)
    ids = np.repeat(np.concatenate([train, test]).astype(np.int64), cfg.learners_per_task)
    split = np.repeat(np.r_[np.zeros(len(train)), np.ones(len(test))].astype(np.uint8),
                      cfg.learners_per_task)
    return ids, split


class _Progress:
    """A rich progress bar: learners, env steps/s, time left (``on_chunk`` callback)."""

    def __init__(self, enabled: bool, num_learners: int, num_steps: int, what: str):
        self.enabled, self.L, self.S = enabled, num_learners, num_steps
        self.t0 = time.perf_counter()
        self.first: tuple[float, int] | None = None
        if not enabled:
            return
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed:,}/{task.total:,} steps"),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("left"), TimeRemainingColumn(), transient=False)
        self.task = self.bar.add_task(f"{what}: {num_learners:,} learners", total=num_steps,
                                      rate="compiling")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()

    def on_chunk(self, steps_done: int) -> None:
        """Rate over the chunks after the first (the first one includes compiling)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, steps_done)
            rate = self.L * steps_done / max(now - self.t0, 1e-9)
        else:
            t1, s1 = self.first
            rate = self.L * (steps_done - s1) / max(now - t1, 1e-9)
        self.bar.update(self.task, completed=steps_done, rate=f"{rate:,.0f} env steps/s")


def collect(cfg: CollectConfig, *, progress: bool = True, created_by: str = "") -> Path:
    """Run the collection ``cfg`` and write its history file atomically; returns the path.

    Before any work: ``out`` must be writable (:func:`outlearn.atomic.check_output`) and
    the run must fit in memory (:func:`outlearn.resources.estimate_collect`)."""
    from outlearn.resources import check_memory, estimate_collect
    from outlearn.rollout import rollout_scan

    check_output(cfg.out, "out", kind="file")
    family, teacher = _build(cfg)
    check_memory(estimate_collect(cfg, family, teacher))
    num_steps = resolve_num_steps(cfg, family.episode_len)
    task_ids, split = plan_learners(cfg, family)
    seeds = learner_seeds(cfg.seed, len(task_ids))
    params = family.task_params(task_ids)
    what = f"collect {cfg.env.name}/{cfg.teacher.name}"
    with _Progress(progress, len(task_ids), num_steps, what) as bar:
        traj, _ = rollout_scan(family, teacher, learner_keys(seeds), params, num_steps,
                               chunk=cfg.chunk_steps, on_chunk=bar.on_chunk)
    meta = HistoryMeta(
        env_name=cfg.env.name, num_actions=int(family.num_actions), num_obs=int(family.num_obs),
        episode_len=int(family.episode_len), teacher_name=cfg.teacher.name, seed=cfg.seed,
        env_kwargs=dict(cfg.env.kwargs), teacher_kwargs=dict(cfg.teacher.kwargs),
        config_json=cfg.to_json(), created_by=created_by or "outlearn.collect.collect",
    )
    opt = np.asarray(jax.vmap(family.optimal_return)(params), dtype=np.float32)
    info = LearnerInfo(task_ids, split, opt, seeds, flatten_task_params(params))
    return write_history(cfg.out, traj, meta, info, chunk_steps=cfg.chunk_steps)


def collect_from_toml(path: str | Path, *, progress: bool = True) -> Path:
    """``outlearn collect <path>``: load the TOML config and run :func:`collect`."""
    cfg = load_toml(CollectConfig, path, "collect")
    return collect(cfg, progress=progress, created_by=f"outlearn collect {path}")
