"""Memory estimates of collect, train and eval runs, checked before anything is allocated.

An absurd size (``num_steps = 10**9``, ``10**9`` learners or arms, a ``10**9``-episode
evaluation) would otherwise run for hours growing memory, or end in a MemoryError
traceback. :func:`estimate` computes, from a config alone (shapes, not data: task
parameters and learner states via ``jax.eval_shape``, a student's weights on torch's
``meta`` device), an :class:`Estimate` of the largest allocations, each naming the
config fields that set it; :func:`check_memory` refuses one above the memory this
machine has available (psutil, else ``/proc/meminfo``; a cgroup limit when lower), with
a :class:`~outlearn.errors.ResourceError` that names the field to lower.

The estimates count the big arrays and a copy or two of them, not Python's or the
libraries' own overhead: they catch sizes that cannot fit, not runs that barely fit.

A study runner checks a stage with ``check_memory(estimate(stage_cfg))`` (a
:class:`~outlearn.collect.CollectConfig`, :class:`~outlearn.students.train.TrainConfig`
or :class:`~outlearn.evaluation.evaluate.EvalConfig`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outlearn.errors import ResourceError

__all__ = ["Estimate", "Need", "available_memory", "check_memory", "estimate",
           "estimate_collect", "estimate_eval", "estimate_train", "fmt_bytes"]

#: bytes of one step of a history (obs, actions, rewards, terminated, truncated,
#: optimal_actions, expected_rewards), plus 4 per action for ``probs``
STEP_BYTES = 4 + 4 + 4 + 1 + 1 + 4 + 4


@dataclass(frozen=True)
class Need:
    """One allocation: ``what`` it is, its ``nbytes``, the config ``fields`` that set it
    (with their values) and the ``fix``."""

    what: str
    nbytes: int
    fields: str
    fix: str


@dataclass(frozen=True)
class Estimate:
    """The main allocations of a run (``kind``: "collect", "train", "eval")."""

    kind: str
    needs: tuple[Need, ...]

    @property
    def total(self) -> int:
        return sum(n.nbytes for n in self.needs)

    @property
    def largest(self) -> Need:
        return max(self.needs, key=lambda n: n.nbytes)


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup (v2) memory limit, or None without one."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (None when unknown)."""
    avail: int | None = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unsupported here: the kernel's own figure
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            avail = None
    room = _cgroup_room()
    if room is not None:
        avail = room if avail is None else min(avail, room)
    return avail


def check_memory(est: Estimate, available: int | None = None) -> Estimate:
    """Raise :class:`ResourceError` when ``est`` exceeds the available memory (measured
    now unless given); the message names the largest allocation's fields. Returns ``est``."""
    avail = available_memory() if available is None else available
    if avail is None or est.total <= avail:
        return est
    big = est.largest
    rest = [f"{n.what} {fmt_bytes(n.nbytes)}" for n in est.needs if n is not big and n.nbytes]
    others = f" (besides: {', '.join(rest)})" if rest else ""
    raise ResourceError(
        f"this {est.kind} would need about {fmt_bytes(est.total)} of memory but the machine "
        f"has {fmt_bytes(avail)} available. The largest part is {big.what}, "
        f"{fmt_bytes(big.nbytes)}: {big.fields}{others}. {big.fix}; nothing was run")


def _nbytes(tree: Any) -> int:
    import jax

    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _per_learner(family: Any, learner: Any | None) -> tuple[int, int, int]:
    """Bytes per learner of (task params, env state, learner state), from shapes only."""
    import jax
    import jax.numpy as jnp

    from outlearn.core import Learner
    from outlearn.rollout import init_learners

    n = 1024  # any batch: every leaf has the batch as its leading axis
    ids = jax.ShapeDtypeStruct((n,), jnp.int32)
    keys = jax.ShapeDtypeStruct((n,), jax.random.key(0).dtype)
    params = jax.eval_shape(family.task_params, ids)
    state = jax.eval_shape(lambda k, p: jax.vmap(family.reset)(k, p), keys, params)
    lstate = (jax.eval_shape(lambda k, p: init_learners(learner, k, p), keys, params)
              if isinstance(learner, Learner) else ())
    return _nbytes(params) // n, _nbytes(state) // n, _nbytes(lstate) // n


def _obs_bytes(family: Any) -> int:
    """Bytes of one observation: 4 for an index, the frame's size otherwise."""
    from outlearn.envs.base import obs_dtype, obs_shape

    return math.prod(obs_shape(family)) * obs_dtype(family).itemsize


def _rollout_needs(L: int, S: int, num_actions: int, per_learner: tuple[int, int, int],
                   copies: int, sizes: str, fix: str, task_fields: str,
                   learner_fields: str, obs_bytes: int = 4) -> list[Need]:
    """The arrays of a fused rollout of L learners for S steps: the per-step outputs
    (``copies`` of them: the chunks, their concatenation, ...), the task parameters and
    the env and learner states (a few copies in the jitted scan)."""
    params, state, lstate = per_learner
    base = STEP_BYTES - 4 + obs_bytes  # STEP_BYTES counts an int32 observation
    step = base + 4 * num_actions
    return [
        Need("the per-step arrays", copies * L * S * step,
             f"{sizes} = {L:,} learners x {S:,} steps x {step:,} bytes per step ({base} "
             f"+ 4 x {num_actions:,} actions, set by {task_fields})"
             f"{f' x {copies} copies' if copies > 1 else ''}",
             f"{fix}, or use fewer actions ({task_fields})"),
        Need("the task parameters", 2 * L * params,
             f"{L:,} learners x {params:,} bytes each (set by {task_fields})",
             f"Make the tasks smaller ({task_fields}) or run fewer learners"),
        Need("the learner states", 3 * L * (lstate + state),
             f"{L:,} learners x {lstate + state:,} bytes each (set by {learner_fields})",
             f"Use a smaller learner ({learner_fields}) or fewer learners"),
    ]


def estimate_collect(cfg: Any, family: Any = None, teacher: Any = None) -> Estimate:
    """A collection: L learners x S steps of history (the scan's chunks, their
    concatenation and the file image: 3 copies), plus task parameters and states."""
    from outlearn.collect import _build

    if family is None or teacher is None:
        family, teacher = _build(cfg)
    per_task = cfg.tasks.n_train + cfg.tasks.n_test
    L = per_task * cfg.learners_per_task
    if cfg.num_steps is not None:
        S, s_field = cfg.num_steps, f"num_steps ({cfg.num_steps:,})"
    else:
        S = cfg.num_episodes * int(family.episode_len)
        s_field = f"num_episodes ({cfg.num_episodes:,}) x episode_len ({family.episode_len})"
    sizes = (f"{s_field} x learners_per_task ({cfg.learners_per_task:,}) x tasks.n_train + "
             f"tasks.n_test ({per_task:,})")
    fix = ("Lower num_steps (or num_episodes), learners_per_task or tasks.n_train/n_test, "
           "or collect in several files")
    needs = _rollout_needs(L, S, int(family.num_actions), _per_learner(family, teacher), 3,
                           sizes, fix, "env.kwargs", "teacher.kwargs", _obs_bytes(family))
    return Estimate("collect", tuple(needs))


def _model_bytes(cfg: Any, src: Any) -> tuple[int, Any]:
    """(bytes of the weights, the model config) of the student of ``cfg`` on the history
    ``src``, built on torch's meta device (no memory)."""
    import torch

    from outlearn.registry import STUDENTS
    from outlearn.students.train import model_config

    mcfg = model_config(cfg.student, cfg.data.context_len, src.obs_shape)
    with torch.device("meta"):
        model = STUDENTS.get(cfg.student.kind)(mcfg, src.num_obs, src.num_actions)
    return sum(p.numel() * p.element_size() for p in model.parameters()), mcfg


def estimate_train(cfg: Any, src: Any) -> Estimate:
    """Training on the history ``src`` (a :class:`~outlearn.students.data.HistorySource`):
    the weights with their gradients and AdamW's two moments (4 copies), the activations
    of one batch (a rough transformer count), and the sampler's row cache."""
    from outlearn.students.data import CACHE_BYTES, step_bytes

    weights, mcfg = _model_bytes(cfg, src)
    num_actions = int(src.num_actions)
    d = cfg.data
    T = d.context_len + 1
    width = getattr(mcfg, "d_model", 64)
    ff = getattr(mcfg, "d_ff", 0) or getattr(mcfg, "hidden", 0)
    layers = getattr(mcfg, "n_layers", 1)
    heads = getattr(mcfg, "n_heads", 0)
    frame = 17 * math.prod(src.obs_shape) if src.obs_shape else 0  # as float, conv output
    per_token = 4 * (layers * (16 * width + 3 * ff + 3 * heads * T) + 4 * num_actions + frame)
    acts = 2 * d.batch_size * T * per_token  # forward saved for backward, and its gradient
    rows = min(CACHE_BYTES, len(src.learners("train")) * src.num_steps * step_bytes(src))
    return Estimate("train", (
        Need("the student's weights, gradients and optimiser state", 4 * weights,
             f"student.kind = {cfg.student.kind!r}, preset {cfg.student.preset!r}, "
             f"student.model = {dict(cfg.student.model)} ({weights // 4:,} parameters)",
             "Use a smaller student (student.preset or student.model)"),
        Need("the activations of one batch", acts,
             f"data.batch_size ({d.batch_size:,}) x data.context_len ({d.context_len:,}) "
             f"x the student's width and depth", "Lower data.batch_size or data.context_len"),
        Need("the sampler's cache of history rows", rows, "the history's size",
             "Use a smaller history"),
    ))


def estimate_eval(cfg: Any, family: Any = None, num_tasks: int | None = None) -> Estimate:
    """An evaluation: each learner's rollout of tasks x seeds for num_episodes episodes
    (step path: every step's arrays kept, then stacked: 3 copies), the curves of every
    learner, and the results table (one text row per learner, seed, task and episode)."""
    from outlearn.envs import make_family
    from outlearn.evaluation.baselines import make_baseline, make_teacher

    if family is None:
        family = make_family(cfg.env)
    t = cfg.tasks
    if num_tasks is None:
        avail = t.n_train if t.split == "train" else t.n_test
        num_tasks = min(t.n, avail) if t.n is not None else avail
    seeds = len(cfg.seeds)
    B = num_tasks * seeds
    S = cfg.num_episodes * int(family.episode_len)
    E = cfg.num_episodes
    worst: list[Need] = []
    for spec in cfg.learners:  # they run one after another: the largest one counts
        learner = None
        if spec.kind == "baseline":
            learner = make_baseline(str(spec.baseline), family)
        elif spec.kind == "teacher":
            learner = make_teacher(str(spec.teacher), family, **spec.kwargs)
        sizes = (f"num_episodes ({E:,}) x episode_len ({family.episode_len}) x tasks "
                 f"({num_tasks:,}) x seeds ({seeds})")
        needs = _rollout_needs(
            B, S, int(family.num_actions), _per_learner(family, learner), 3, sizes,
            "Lower num_episodes, the number of seeds or tasks.n", "env.kwargs",
            f"learners[{spec.name!r}].kwargs")
        if spec.kind == "student" and spec.checkpoint is not None:
            ck = Path(spec.checkpoint)
            if ck.is_dir():
                from outlearn.students.checkpoint import latest_checkpoint

                ck = latest_checkpoint(ck) or ck
            size = ck.stat().st_size if ck.is_file() else 0
            needs.append(Need(f"learner {spec.name!r}'s model", size,
                              f"the checkpoint {spec.checkpoint}", "Use a smaller student"))
        if sum(n.nbytes for n in needs) > sum(n.nbytes for n in worst):
            worst = needs
    n = len(cfg.learners)
    results = 2 * 8 * n * B * E
    table = 120 * n * B * E  # a text row and its Python string object
    return Estimate("eval", (
        *worst,
        Need("the curves of every learner", results,
             f"{n} learners x tasks ({num_tasks:,}) x seeds ({seeds}) x num_episodes ({E:,}) "
             "x 16 bytes", "Lower num_episodes, the number of seeds or tasks.n"),
        Need("the results table (results.csv)", table,
             f"{n} learners x tasks ({num_tasks:,}) x seeds ({seeds}) x num_episodes ({E:,}) "
             "rows", "Lower num_episodes, the number of seeds or tasks.n"),
    ))


def estimate_in_context(family: Any, num_tasks: int, seeds: int, num_episodes: int,
                        learners: int, fields: str) -> Estimate:
    """A study's in-context runs: each of ``learners`` (students and references, one after
    another) on tasks x seeds for ``num_episodes`` episodes, and all their curves."""
    B, E = num_tasks * seeds, num_episodes
    S = E * int(family.episode_len)
    sizes = (f"{fields}: num_episodes ({E:,}) x episode_len ({family.episode_len}) x tasks "
             f"({num_tasks:,}) x seeds ({seeds})")
    needs = _rollout_needs(B, S, int(family.num_actions), _per_learner(family, None), 3, sizes,
                           f"Lower {fields}", "env.kwargs", "the student", _obs_bytes(family))
    return Estimate("eval", (
        *needs,
        Need("the curves of every learner", 2 * 8 * learners * B * E,
             f"{learners} learners x tasks ({num_tasks:,}) x seeds ({seeds}) x episodes "
             f"({E:,}) x 16 bytes", f"Lower {fields}"),
    ))


def estimate(cfg: Any) -> Estimate:
    """The estimate of a collect, train or eval config (a train config reads its history's
    sizes from the file's metadata)."""
    from outlearn.collect import CollectConfig
    from outlearn.evaluation.evaluate import EvalConfig
    from outlearn.students.train import TrainConfig

    if isinstance(cfg, CollectConfig):
        return estimate_collect(cfg)
    if isinstance(cfg, EvalConfig):
        return estimate_eval(cfg)
    if isinstance(cfg, TrainConfig):
        from outlearn.students.train import HistoryAdapter

        src = HistoryAdapter(Path(cfg.history), verify=False)
        try:
            return estimate_train(cfg, src)
        finally:
            src.close()
    raise TypeError(f"no memory estimate for {type(cfg).__name__}")
