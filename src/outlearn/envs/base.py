"""The task-family protocol (JAX, gymnax style, functional).

A *task family* is a distribution over tasks; a *task* is a pytree of parameters
(``params``) picked by an integer task id. All functions act on ONE task and ONE
environment instance; callers ``jax.vmap`` them over a leading batch axis.

Observations are discrete by default: an int32 in ``[0, num_obs)`` (a grid cell, a cell
plus a carried key, or 0 for bandits). Tabular learners index tables with it; students
embed it. A family may instead declare array observations (frames) with the attributes
``obs_shape`` (a non-empty tuple) and ``obs_dtype`` (a numpy dtype: bool for binary
frames, stored one byte a pixel); its ``num_obs`` is then 0. :func:`obs_shape`,
:func:`obs_dtype` and :func:`has_discrete_obs` read those attributes with the discrete
defaults, and :func:`require_discrete_obs` is the one check a learner that indexes by
the observation makes. A family without an oracle (``has_oracle = False``) returns -1
from ``optimal_action`` and NaN from ``optimal_return`` and ``expected_reward``.

Episodes: ``step`` returns ``terminated`` (the task ended: goal reached) and
``truncated`` (the episode hit ``episode_len``). The rollout loop resets the
environment when either is true. A bandit pull is an episode of length 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np

Params = Any  # a pytree of jnp arrays describing one task
EnvState = Any  # a pytree of jnp arrays


class StepOut(NamedTuple):
    """The result of one environment step (one instance; batched under vmap)."""

    obs: jax.Array  # int32 [] (a frame family: obs_shape, obs_dtype)
    state: EnvState
    reward: jax.Array  # float32 []
    terminated: jax.Array  # bool []
    truncated: jax.Array  # bool []


@runtime_checkable
class TaskFamily(Protocol):
    """What every environment provides. See :mod:`outlearn.envs` for implementations."""

    name: str
    num_actions: int
    num_obs: int
    episode_len: int  # maximum steps per episode
    num_tasks: int | None  # size of a finite task set; None for continuous families
    # optional: ``stay_action: int``, the "do nothing" action (the no-op baseline uses it);
    # ``obs_shape``/``obs_dtype`` for array observations and ``has_oracle`` (module docstring)

    def task_params(self, task_ids: jax.Array) -> Params:
        """Params for a batch of task ids, shape (n,) -> pytree with leading axis n.
        Deterministic: the same id gives the same task on every machine."""

    def reset(self, key: jax.Array, params: Params) -> tuple[jax.Array, EnvState]:
        """Start an episode of one task: (obs int32 [], state)."""

    def step(self, key: jax.Array, state: EnvState, action: jax.Array, params: Params) -> StepOut:
        """Advance one task by one step."""

    def optimal_return(self, params: Params) -> jax.Array:
        """Best expected return of one episode of one task (float32 []), computed
        by planning or by formula. For bandits: the best arm's mean."""

    def expected_reward(self, state: EnvState, action: jax.Array, params: Params) -> jax.Array:
        """Expected reward of ``action`` in ``state`` (used for pseudo-regret)."""

    def optimal_action(self, obs: jax.Array, params: Params) -> jax.Array:
        """An optimal action given observation ``obs`` (int32 []): DPT's privileged
        label, the oracle baseline and the noise-curriculum teacher. Every family's
        observation carries enough to decide it (the cell, the carried key)."""


def obs_shape(family: Any) -> tuple[int, ...]:
    """Shape of one observation: () for a discrete family, the frame's shape otherwise."""
    return tuple(getattr(family, "obs_shape", ()))


def obs_dtype(family: Any) -> np.dtype:
    """dtype of one observation: int32 for a discrete family, ``obs_dtype`` otherwise."""
    return np.dtype(getattr(family, "obs_dtype", np.int32))


def has_discrete_obs(family: Any) -> bool:
    """True when observations are int32 indices in ``[0, num_obs)``."""
    return obs_shape(family) == ()


def has_oracle(family: Any) -> bool:
    """True when ``optimal_action`` / ``optimal_return`` are real (not -1 / NaN)."""
    return bool(getattr(family, "has_oracle", True))


def require_discrete_obs(family: Any, who: str) -> None:
    """Refuse a family with array observations for a learner that indexes by observation
    (a table row, an embedding), with one error naming the problem and the fix."""
    from outlearn.errors import ConfigError

    if not has_discrete_obs(family):
        raise ConfigError(
            f"{who} indexes a table by the observation, but env {family.name!r} has "
            f"{obs_dtype(family).name} frames of shape {obs_shape(family)} as observations: "
            "use a teacher that reads frames (e.g. 'random'), or an env with discrete "
            "observations")


def require_oracle(family: Any, who: str) -> None:
    """Refuse a family without an oracle for a learner that acts on ``optimal_action``."""
    from outlearn.errors import ConfigError

    if not has_oracle(family):
        raise ConfigError(
            f"{who} follows the env's optimal action, but env {family.name!r} has no "
            "oracle (its optimal_action is -1): use a learning teacher on it")


def split_tasks(
    family: TaskFamily, seed: int, n_train: int, n_test: int
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train/test task ids, deterministic in ``seed`` on every machine.

    Finite families permute ``range(num_tasks)`` with numpy's PCG64 (stable across
    platforms) and take the first ``n_train`` for training and the next ``n_test``
    for testing. Continuous families use ids 0.. and draw task parameters from the id,
    so train ids are ``b + [0, n_train)`` and test ids ``b + 2**20 + [0, n_test)`` with
    ``b = (seed % 1024) * 2**21``: every id fits in int32 (1,024 distinct split seeds).
    """
    from outlearn.errors import ConfigError

    if n_train < 0 or n_test < 0:
        raise ConfigError("n_train and n_test must be >= 0")
    if family.num_tasks is not None:
        if n_train + n_test > family.num_tasks:
            raise ConfigError(
                f"{family.name} has {family.num_tasks} tasks; cannot take "
                f"n_train={n_train} + n_test={n_test}. Lower one of them."
            )
        perm = np.random.Generator(np.random.PCG64(seed)).permutation(family.num_tasks)
        return perm[:n_train].astype(np.int64), perm[n_train : n_train + n_test].astype(np.int64)
    if max(n_train, n_test) > 2**20:
        raise ConfigError(f"{family.name}: at most 2**20 train and test tasks per split seed")
    base = np.int64(seed % 1024) * 2**21  # ids fit in int32, so jnp (x64 off) keeps them whole
    train = base + np.arange(n_train, dtype=np.int64)
    test = base + 2**20 + np.arange(n_test, dtype=np.int64)
    return train, test
