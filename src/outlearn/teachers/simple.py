"""Baseline learners that do not learn: uniform random, and the oracle.

``random`` acts uniformly; its state is a dummy scalar. ``oracle`` keeps the task
parameters in its state and puts all probability on ``family.optimal_action(obs,
params)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from outlearn.config import Config, parse_config
from outlearn.envs.base import TaskFamily
from outlearn.registry import TEACHERS
from outlearn.teachers.base import Transition


class RandomConfig(Config):
    """The random teacher has no settings."""


class OracleConfig(Config):
    """The oracle teacher has no settings."""


class RandomLearner:
    """Uniform over the actions, whatever happens."""

    name = "random"

    def __init__(self, num_actions: int):
        self.num_actions = num_actions

    def init(self, key: jax.Array, params: Any) -> jax.Array:
        """Dummy state: float32 []."""
        return jnp.zeros((), jnp.float32)

    def policy(self, lstate: jax.Array, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32, all 1/A."""
        return jnp.full((self.num_actions,), 1.0 / self.num_actions, jnp.float32)

    def update(self, key: jax.Array, lstate: jax.Array, tr: Transition, t: jax.Array) -> jax.Array:
        return lstate


class OracleLearner:
    """One-hot on the family's optimal action for the observation (privileged)."""

    name = "oracle"

    def __init__(self, family: TaskFamily):
        self.family = family
        self.num_actions = family.num_actions

    def init(self, key: jax.Array, params: Any) -> Any:
        """State: the task's params pytree."""
        return params

    def policy(self, params: Any, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32 one-hot on ``family.optimal_action(obs, params)``."""
        a = self.family.optimal_action(obs, params)
        return jax.nn.one_hot(a, self.num_actions, dtype=jnp.float32)

    def update(self, key: jax.Array, params: Any, tr: Transition, t: jax.Array) -> Any:
        return params


@TEACHERS.register("random")
def make_random(family: TaskFamily, **kwargs: Any) -> RandomLearner:
    """Uniform random learner for ``family`` (no settings)."""
    parse_config(RandomConfig, kwargs, "teacher 'random'")
    return RandomLearner(family.num_actions)


@TEACHERS.register("oracle")
def make_oracle(family: TaskFamily, **kwargs: Any) -> OracleLearner:
    """Oracle learner for ``family`` (no settings)."""
    parse_config(OracleConfig, kwargs, "teacher 'oracle'")
    return OracleLearner(family)
