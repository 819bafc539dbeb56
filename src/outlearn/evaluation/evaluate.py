"""``outlearn eval``: every learner on the SAME tasks and seeds, curves with 95% CIs.

Students run through the step path (:func:`outlearn.rollout.rollout_steps` with a
``StudentLearner``); teachers and baselines run fused (:func:`rollout_scan`). Learner
``(seed, task)`` always uses the key :func:`unit_keys` gives it, whatever else runs.

The run directory holds ``config.json``, ``results.csv`` (learner, seed, task_id,
episode, return, and for bandits regret and cum_regret), ``summary.json`` (each
learner's asymptote with its CI) and ``curves.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field, model_validator

from outlearn.atomic import atomic_path, atomic_write_text, check_output
from outlearn.config import Config, Seed, load_toml
from outlearn.core import Learner, StepLearner, Trajectory
from outlearn.envs import make_family
from outlearn.envs.base import TaskFamily, obs_shape, split_tasks
from outlearn.errors import CheckpointError, ConfigError
from outlearn.evaluation.baselines import BASELINES, make_baseline, make_teacher
from outlearn.evaluation.metrics import (
    asymptote,
    episode_returns_from_traj,
    last_episodes,
    mean_curve_ci,
)
from outlearn.rng import unit_keys
from outlearn.rollout import rollout_scan, rollout_steps
from outlearn.stats import crossed_mean_ci
from outlearn.students.device import check_device_name
from outlearn.students.threads import configure_threads

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class EnvSpec(Config):
    """Which task family: a registered env name and its settings."""

    name: str = Field(description="a registered task family, e.g. 'bernoulli-bandit' "
                      "(`outlearn explain envs` lists them); the one the students trained on")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="the family's settings "
                                   "(`outlearn explain envs/<name>`): those of the collection")


class TaskSpec(Config):
    """Which tasks: ``split_tasks(family, seed, n_train, n_test)``, then one split.

    Use the collection's ``tasks`` values (seed, n_train, n_test) so that ``test`` means
    tasks the student never saw. ``n`` takes the first n of the split (all: None).
    """

    seed: Seed = Field(0, description="seed of the train/test split (the collection's "
                       "tasks.seed)")
    split: Literal["train", "test"] = Field(
        "test", description="which half of the split to run on: 'test' (held out from "
        "training) or 'train'")
    n_train: int = Field(0, ge=0, description="training tasks in the split (the collection's "
                         "tasks.n_train)")
    n_test: int = Field(0, ge=0, description="test tasks in the split (the collection's "
                        "tasks.n_test)")
    n: int | None = Field(None, ge=1, description="run on the first n tasks of the chosen "
                          "split only; unset: all of them")


class LearnerSpec(Config):
    """One learner to evaluate.

    kind ``student``: ``checkpoint`` (and optionally ``context_len``); kind ``teacher``:
    ``teacher`` name and ``kwargs``; kind ``baseline``: ``baseline`` in random/noop/oracle.
    """

    name: str = Field(description="the learner's label in the table, results.csv and the "
                      "figure (unique)")
    kind: Literal["student", "teacher", "baseline"] = Field(
        description="'student' (a trained checkpoint, acting in context), 'teacher' (a "
        "registered teacher run fresh) or 'baseline' (random, noop, oracle)")
    checkpoint: Path | None = Field(None, description="student: the training run's folder or "
                                    "a checkpoint file in it")
    context_len: int | None = Field(None, ge=1, description="student: context (steps) while "
                                    "acting; unset: the context it was trained with")
    teacher: str | None = Field(None, description="teacher: its registered name, e.g. "
                                "'thompson' (`outlearn explain teachers`)")
    baseline: str | None = Field(None, description="baseline: 'random' (uniform), 'noop' (the "
                                 "stay action; dark rooms only) or 'oracle' (the optimal action)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="teacher: its settings "
                                   "(`outlearn explain teachers/<name>`)")
    device: str | None = Field(
        None, description="students: torch device ('cpu', 'cuda', 'auto'...); unset: "
        "$OUTLEARN_DEVICE or cpu")

    @model_validator(mode="after")
    def _check_kind(self) -> LearnerSpec:
        check_device_name(self.device)
        need = {"student": "checkpoint", "teacher": "teacher", "baseline": "baseline"}[self.kind]
        if getattr(self, need) is None:
            raise ValueError(f"learner {self.name!r} of kind {self.kind!r} needs '{need}': add it")
        if self.kind == "baseline" and self.baseline not in BASELINES:
            raise ValueError(
                f"learner {self.name!r}: unknown baseline {self.baseline!r}; "
                f"use one of {', '.join(BASELINES)}"
            )
        return self


class EvalConfig(Config):
    """An evaluation: learners x seeds x tasks, each for ``num_episodes`` episodes."""

    env: EnvSpec = Field(description="the task family ([env] table)")
    tasks: TaskSpec = Field(description="the tasks every learner runs on ([tasks] table)")
    learners: list[LearnerSpec] = Field(min_length=1, description="the learners, each a "
                                        "[[learners]] table; all run on the same tasks and "
                                        "seeds")
    num_episodes: int = Field(ge=1, description="horizon; may exceed anything in training")
    seeds: list[Seed] = Field(default=[0], min_length=1, description="evaluation seeds: every "
                              "learner runs once per seed on every task")
    mode: Literal["greedy", "sample"] = Field(
        "sample", description="students only: 'sample' an action from the model's output, or "
        "take its argmax ('greedy')")
    out_dir: Path = Field(Path("runs"), description="parent of the run folder eval-<config "
                          "hash> (config.json, results.csv, summary.json, curves.png)")
    last_n: int | None = Field(None, ge=1, description="episodes averaged for the asymptote "
                               "(unset: the last tenth of num_episodes)")

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        names = [lr.name for lr in self.learners]
        if len(set(names)) != len(names):
            raise ValueError(f"learner names must be unique; got {names}: rename the duplicates")
        if self.last_n is not None and self.last_n > self.num_episodes:
            raise ValueError(f"last_n={self.last_n} exceeds num_episodes={self.num_episodes}")
        return self


# ----------------------------------------------------------------------------- building blocks


def select_tasks(family: TaskFamily, spec: TaskSpec) -> np.ndarray:
    """Task ids (T,) int64 of the chosen split."""
    train, test = split_tasks(family, spec.seed, spec.n_train, spec.n_test)
    ids = train if spec.split == "train" else test
    if spec.n is not None:
        if spec.n > ids.size:
            raise ConfigError(
                f"tasks.n={spec.n} but the {spec.split} split has {ids.size} tasks: "
                f"lower tasks.n or raise tasks.n_{spec.split}"
            )
        ids = ids[: spec.n]
    if ids.size == 0:
        raise ConfigError(f"the {spec.split} split is empty: set tasks.n_{spec.split} >= 1")
    return ids


def _jax_learner(spec: LearnerSpec, family: TaskFamily) -> Learner:
    if spec.kind == "baseline":
        return make_baseline(str(spec.baseline), family)
    return make_teacher(str(spec.teacher), family, **spec.kwargs)


def student_factory(spec: LearnerSpec, family: TaskFamily, mode: str
                    ) -> tuple[Callable[[int, int], StepLearner], int]:
    """A student checkpoint (``spec.kind == "student"``), loaded once and checked against
    ``family``: a factory ``(num_envs, seed) -> StudentLearner`` (a
    :class:`~outlearn.core.StepLearner`) and the context (steps) it acts with."""
    from outlearn.students import StudentLearner, load_student
    from outlearn.students.policy import check_obs

    configure_threads()
    assert spec.checkpoint is not None  # LearnerSpec requires it of a student
    model: Any  # a student nn.Module: its sizes are plain attributes
    model, _ = load_student(spec.checkpoint, spec.device)
    check_obs(getattr(model, "obs_shape", ()), obs_shape(family), f"env {family.name!r}",
              f"learner {spec.name!r} (checkpoint {spec.checkpoint})")
    if (model.num_actions, model.num_obs) != (family.num_actions, family.num_obs):
        raise CheckpointError(
            f"learner {spec.name!r}: checkpoint {spec.checkpoint} was trained for "
            f"{model.num_actions} actions / {model.num_obs} observations, but env "
            f"{family.name!r} has {family.num_actions} / {family.num_obs}: evaluate it on "
            "the env it was trained on"
        )
    ctx = spec.context_len or model.context_len
    return (lambda n, seed: StudentLearner(model, num_envs=n, context_len=ctx, mode=mode,
                                           seed=seed)), ctx


LearnerLike = LearnerSpec | Learner | Callable[[int, int], StepLearner]


def run_learner(
    family: TaskFamily,
    learner: LearnerLike,
    task_ids: np.ndarray,
    seeds: Sequence[int],
    num_episodes: int,
    mode: str = "sample",
    on_step: Callable[[int], None] | None = None,
    *,
    unit_ids: np.ndarray | None = None,
    prime: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run one learner on every (seed, task) for ``num_episodes`` episodes.

    ``learner``: a :class:`LearnerSpec`, a JAX :class:`~outlearn.core.Learner` (run
    fused), or a factory ``(num_envs, seed) ->`` :class:`~outlearn.core.StepLearner`
    (run on the step path); see :func:`rollout_units`, which runs it for
    ``num_episodes x episode_len`` steps (every episode ends by then). Returns
    (returns, regret), each (seeds, tasks, episodes) float64; ``regret`` is the
    per-episode pseudo-regret (optimal return - expected return; exact for bandits).
    ``on_step(steps_done)`` reports progress (every step, or every chunk when fused).
    ``unit_ids`` and ``prime`` (a history each unit's context starts from, a student's
    only) are :func:`rollout_units`'s; rows are then units, in ``task_ids`` order.
    """
    task_ids = np.asarray(task_ids, dtype=np.int64)
    trajs = rollout_units(family, learner, task_ids, seeds, num_episodes * family.episode_len,
                          unit_ids=unit_ids, prime=prime, mode=mode, on_step=on_step)
    params = family.task_params(jnp.asarray(task_ids))
    opt = np.asarray(jax.vmap(family.optimal_return)(params), dtype=np.float64)
    rets, regs = zip(*[_curves(t, opt, num_episodes) for t in trajs], strict=True)
    return np.stack(rets), np.stack(regs)


def rollout_units(
    family: TaskFamily,
    learner: LearnerLike,
    task_ids: np.ndarray,
    seeds: Sequence[int],
    num_steps: int,
    *,
    unit_ids: np.ndarray | None = None,
    prime: dict[str, np.ndarray] | None = None,
    mode: str = "sample",
    on_step: Callable[[int], None] | None = None,
) -> list[Trajectory]:
    """Run one learner for ``num_steps`` steps on every (seed, unit): one
    :class:`~outlearn.core.Trajectory` per seed, rows in ``task_ids`` order.

    A unit is one run on task ``task_ids[i]``; its randomness comes from
    :func:`~outlearn.rng.unit_keys` of the seed and ``unit_ids[i]`` (default the task id).
    Give units that share a task distinct ``unit_ids`` (e.g. the history rows of several
    teacher learners of one task), or they share their environment's random stream.

    ``prime``: a history to continue instead of starting with an empty context (step
    learners only, e.g. a student): per-step arrays ``obs`` (U, P, ...), ``actions``,
    ``rewards``, ``terminated``, ``truncated`` (U, P) and optionally ``next_obs``, one row
    per unit, replayed through ``policy``/``observe`` (every seed alike) before the first
    step. Its last step counts as the end of an episode: the environment starts a fresh
    one, as it cannot resume the recorded one's state. The learner runs from ``t = 0``.
    """
    task_ids = np.asarray(task_ids, dtype=np.int64)
    ids = task_ids if unit_ids is None else np.asarray(unit_ids, dtype=np.int64)
    if ids.shape != task_ids.shape:
        raise ValueError(f"unit_ids {ids.shape} must match task_ids {task_ids.shape}")
    params = family.task_params(jnp.asarray(task_ids))
    if isinstance(learner, LearnerSpec):
        learner = (student_factory(learner, family, mode)[0] if learner.kind == "student"
                   else _jax_learner(learner, family))
    n = task_ids.size
    keys = jnp.concatenate([unit_keys(s, ids) for s in seeds])  # (S*T,) seed-major
    tiled = jax.tree.map(lambda x: jnp.concatenate([x] * len(seeds)), params)
    if isinstance(learner, Learner):  # a JAX learner: fused
        if prime is not None:
            raise ValueError("rollout_units: prime continues a history in a step learner's "
                             "context (a student); a JAX learner has no context to prime")
        traj, _ = rollout_scan(family, learner, keys, tiled, num_steps,
                               chunk=_chunk(num_steps), on_chunk=on_step)
    else:  # a StepLearner factory: the step path, all seeds in one batch
        stepper = learner(n * len(seeds), int(seeds[0]))
        if not isinstance(stepper, StepLearner):
            raise TypeError(
                f"run_learner: the factory returned a {type(stepper).__name__}, which is not "
                "a StepLearner (policy(obs, t) and observe(tr, keys, t)); pass a JAX Learner "
                "(init/policy/update) or a factory (num_envs, seed) -> StepLearner")
        if prime is not None:
            replay_history(stepper, prime, len(seeds))
        traj = rollout_steps(family, stepper.policy, stepper.observe, keys, tiled, num_steps,
                             on_step=on_step)
    return [Trajectory._make([None if x is None else x[i * n:(i + 1) * n] for x in traj])
            for i in range(len(seeds))]


def replay_history(stepper: StepLearner, steps: dict[str, np.ndarray], repeats: int) -> None:
    """Feed recorded steps (U, P, ...) into a step learner of ``repeats x U`` rows (the
    rows repeated seed-major), as if it had taken them: its context then holds them. The
    last step is marked truncated (the end of an episode). Steps are fed at ``t = -P ..
    -1``, so that the run that follows starts at ``t = 0``."""
    from outlearn.core import Transition

    need = ("obs", "actions", "rewards", "terminated", "truncated")
    missing = [k for k in need if k not in steps]
    if missing:
        raise ValueError(f"prime needs per-step arrays {need}; missing {missing}")
    tile = lambda a: np.concatenate([np.asarray(a)] * repeats)  # noqa: E731
    arr = {k: tile(v) for k, v in steps.items()}
    P = arr["actions"].shape[1]
    trunc = arr["truncated"].astype(bool).copy()
    trunc[:, -1] = ~arr["terminated"][:, -1].astype(bool)
    for p in range(P):
        obs = arr["obs"][:, p]
        nxt = arr["next_obs"][:, p] if "next_obs" in arr else obs
        stepper.policy(obs, p - P)
        step = (obs, arr["actions"][:, p], arr["rewards"][:, p], nxt,
                arr["terminated"][:, p].astype(bool), trunc[:, p])
        stepper.observe(Transition(*cast(tuple[Any, ...], step)), None, p - P)


def _chunk(num_steps: int) -> int:
    """Steps per jitted chunk: up to 10 equal chunks of >= 500 steps (one compile)."""
    for k in range(10, 1, -1):
        if num_steps % k == 0 and num_steps // k >= 500:
            return num_steps // k
    return num_steps


def _curves(traj: Trajectory, optimal: np.ndarray, num_episodes: int):
    """(returns, regret) each (T, E) from one seed's trajectory."""
    ret = episode_returns_from_traj(traj.rewards, traj.terminated, traj.truncated, num_episodes)
    exp = episode_returns_from_traj(traj.expected_rewards, traj.terminated, traj.truncated,
                                    num_episodes)
    return ret, optimal[:, None] - exp


def run_learner_curves(
    family: TaskFamily,
    learner: LearnerLike,
    task_ids: np.ndarray,
    seeds: Sequence[int],
    num_episodes: int,
    mode: str = "sample",
) -> np.ndarray:
    """Episode returns (seeds, tasks, episodes) of ``learner``; see :func:`run_learner`."""
    return run_learner(family, learner, task_ids, seeds, num_episodes, mode)[0]


# ----------------------------------------------------------------------------- outputs


def write_csv(path: Path, results: dict[str, tuple[np.ndarray, np.ndarray]],
              seeds: Sequence[int], task_ids: np.ndarray, bandit: bool) -> Path:
    """Tidy table, one row per (learner, seed, task, episode); atomic write."""
    head = "learner,seed,task_id,episode,return" + (",regret,cum_regret" if bandit else "")
    lines = [head]
    for name, (ret, reg) in results.items():
        cum = np.cumsum(reg, axis=-1)
        for si, s in enumerate(seeds):
            for ti, tid in enumerate(task_ids):
                for e in range(ret.shape[-1]):
                    row = f"{name},{s},{tid},{e},{ret[si, ti, e]:.9g}"
                    if bandit:
                        row += f",{reg[si, ti, e]:.9g},{cum[si, ti, e]:.9g}"
                    lines.append(row)
    return atomic_write_text(path, "\n".join(lines) + "\n")


def plot_curves(path: Path, results: dict[str, tuple[np.ndarray, np.ndarray]], bandit: bool,
                title: str) -> Path:
    """Learning curves (mean and 95% CI band per learner); cumulative regret for bandits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (ret, reg) in results.items():
        y = np.cumsum(reg, axis=-1) if bandit else ret
        band = mean_curve_ci(y)
        x = np.arange(1, y.shape[-1] + 1)
        ax.plot(x, band.mean, label=name)
        ax.fill_between(x, band.low, band.high, alpha=0.25)
    ax.set_xlabel("episode")
    ax.set_ylabel("cumulative regret" if bandit else "episode return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def _run_all(cfg: EvalConfig, family: TaskFamily, task_ids: np.ndarray, progress: bool
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every learner of ``cfg`` in turn, with a rich progress bar (steps per learner)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    steps = cfg.num_episodes * family.episode_len
    units = task_ids.size * len(cfg.seeds)
    cols = [TextColumn("eval {task.description}"), BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} steps"), TimeRemainingColumn()]
    results = {}
    with Progress(*cols, disable=not progress) as bar:
        for lr in cfg.learners:
            task = bar.add_task(f"{lr.name} ({lr.kind}, {units} tasks x seeds)", total=steps)
            results[lr.name] = run_learner(
                family, lr, task_ids, cfg.seeds, cfg.num_episodes, cfg.mode,
                on_step=partial(_advance, bar, task))
    return results


def _advance(bar: Progress, task: TaskID, steps: int) -> None:
    bar.update(task, completed=steps)


def check_checkpoints(cfg: EvalConfig, family: TaskFamily) -> None:
    """Refuse, before any learner runs, a student whose checkpoint is not there or was
    built for other observations than ``family``'s (frames for indices, or the reverse)."""
    from outlearn.students.checkpoint import load_checkpoint
    from outlearn.students.policy import check_obs

    for lr in cfg.learners:
        if lr.kind != "student":
            continue
        p = Path(str(lr.checkpoint))
        if not p.exists():
            raise CheckpointError(
                f"learner {lr.name!r}: checkpoint {p} does not exist: run `outlearn train "
                "<train config>` first (give its `out` directory here), or fix `checkpoint`")
        mcfg = load_checkpoint(p).get("model_config") or {}
        check_obs(tuple(mcfg.get("obs_shape") or ()), obs_shape(family),
                  f"env {family.name!r}", f"learner {lr.name!r} (checkpoint {p})")


def evaluate(cfg: EvalConfig, *, progress: bool = True) -> Path:
    """Run every learner of ``cfg`` on the same tasks and seeds; return the run dir.

    Before any work: ``out_dir`` must be writable and the run must fit in memory
    (:func:`outlearn.resources.estimate_eval`)."""
    from outlearn.resources import check_memory, estimate_eval

    check_output(cfg.out_dir, "out_dir", kind="dir")
    family = make_family(cfg.env)
    check_checkpoints(cfg, family)
    task_ids = select_tasks(family, cfg.tasks)
    check_memory(estimate_eval(cfg, family, int(task_ids.size)))
    bandit = family.episode_len == 1
    results = _run_all(cfg, family, task_ids, progress)
    run_dir = Path(cfg.out_dir) / f"eval-{cfg.content_hash()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", cfg.to_json() + "\n")
    last_n = last_episodes(cfg.num_episodes, cfg.last_n)
    summary: dict[str, Any] = {
        name: {"asymptote": asymptote(ret, last_n).as_dict(), "last_n": last_n,
               "total_regret": crossed_mean_ci(reg.sum(-1)).as_dict()}
        for name, (ret, reg) in results.items()}
    summary["_tasks"] = [int(t) for t in task_ids]
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_csv(run_dir / "results.csv", results, cfg.seeds, task_ids, bandit)
    plot_curves(run_dir / "curves.png", results, bandit, f"{family.name}: {task_ids.size} tasks "
                f"x {len(cfg.seeds)} seeds, 95% CI")
    return run_dir


def summary_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Each learner's line of a finished evaluation's ``summary.json``: name, asymptote
    (mean return over its last episodes) and total regret, each {value, low, high}."""
    doc = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    return [{"learner": name, **v} for name, v in doc.items() if not name.startswith("_")]


def summary_table(run_dir: Path) -> Any:
    """The summary of ``run_dir`` as a rich table, every estimate with its 95% CI."""
    from rich.table import Table

    rows = summary_rows(run_dir)
    ci = lambda d: f"{d['value']:.3g} [{d['low']:.3g}, {d['high']:.3g}]"  # noqa: E731
    last = rows[0]["last_n"] if rows else 0
    t = Table(title=f"{Path(run_dir).name}: mean over tasks x seeds, [95% CI]",
              title_justify="left")
    t.add_column("learner")
    t.add_column(f"asymptote (mean return, last {last} episodes)", justify="right",
                 no_wrap=True)
    t.add_column("total regret", justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["learner"], ci(r["asymptote"]), ci(r["total_regret"]))
    return t


def evaluate_from_toml(path: str | Path) -> Path:
    """``outlearn eval CONFIG``: load an :class:`EvalConfig` from TOML and evaluate it."""
    return evaluate(load_toml(EvalConfig, path, "eval"))


__all__ = [
    "EnvSpec",
    "EvalConfig",
    "LearnerSpec",
    "TaskSpec",
    "evaluate",
    "evaluate_from_toml",
    "make_family",
    "replay_history",
    "rollout_units",
    "run_learner",
    "run_learner_curves",
    "select_tasks",
    "summary_rows",
    "summary_table",
    "unit_keys",
]
