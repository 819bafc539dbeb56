"""Learners that do not learn: uniform random, the oracle, and DPT's random mixtures.

``random`` acts uniformly; its state is a dummy scalar. ``oracle`` keeps the task
parameters in its state and puts all probability on ``family.optimal_action(obs,
params)``. ``mixture`` draws, once per learner, a fixed action distribution as the
Decision-Pretrained Transformer's bandit data does (Lee et al. 2023): a Dirichlet draw mixed
with a point mass on a random action, so that the contexts cover every degree of
concentration on one arm, from uniform-like to all on one (right or wrong) arm.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from pydantic import Field, field_validator

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily, require_oracle
from outlearn.registry import TEACHERS


class RandomConfig(Config):
    """The random teacher has no settings."""


class OracleConfig(Config):
    """The oracle teacher has no settings."""


_TENTHS = [round(0.1 * i, 1) for i in range(11)]


class MixtureConfig(Config):
    """Per learner: probs = (1 - c) * Dirichlet(alpha) + c * one-hot(uniform random action),
    with c drawn uniformly from ``point_mass`` (DPT's bandit data: alpha 1, c in 0, 0.1..1)."""

    alpha: float = Field(1.0, gt=0.0, description="concentration of the symmetric "
                         "Dirichlet(alpha) each learner's base distribution is drawn from")
    point_mass: list[float] = Field(
        default_factory=lambda: list(_TENTHS), min_length=1,
        description="weights c in [0, 1], one drawn uniformly per learner: the share of a "
        "point mass on a random action mixed into the Dirichlet draw")

    @field_validator("point_mass")
    @classmethod
    def _weights(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= c <= 1.0 for c in v):
            raise ValueError(f"every point-mass weight must lie in [0, 1], got {v}")
        return v


class MixtureLearner:
    """A fixed random action distribution per learner, drawn at ``init`` (DPT's contexts)."""

    name = "mixture"

    def __init__(self, num_actions: int, cfg: MixtureConfig):
        self.num_actions = num_actions
        self.alpha = cfg.alpha
        self.point_mass = jnp.asarray(cfg.point_mass, jnp.float32)

    def init(self, key: jax.Array, params: Any) -> jax.Array:
        """State: float32 (A,), the learner's action distribution."""
        k_dir, k_c, k_arm = jax.random.split(key, 3)
        probs = jax.random.dirichlet(k_dir, jnp.full((self.num_actions,), self.alpha))
        c = jax.random.choice(k_c, self.point_mass)
        arm = jax.random.randint(k_arm, (), 0, self.num_actions)
        mixed = (1.0 - c) * probs + c * jax.nn.one_hot(arm, self.num_actions)
        return (mixed / mixed.sum()).astype(jnp.float32)

    def policy(self, probs: jax.Array, obs: jax.Array, t: jax.Array) -> jax.Array:
        return probs

    def update(self, key: jax.Array, probs: jax.Array, tr: Transition, t: jax.Array) -> jax.Array:
        return probs


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


@TEACHERS.register("random", config=RandomConfig)
def make_random(family: TaskFamily, **kwargs: Any) -> RandomLearner:
    """Uniform random learner for ``family`` (no settings)."""
    parse_config(RandomConfig, kwargs, "teacher 'random'")
    return RandomLearner(family.num_actions)


@TEACHERS.register("oracle", config=OracleConfig)
def make_oracle(family: TaskFamily, **kwargs: Any) -> OracleLearner:
    """Oracle learner for ``family`` (no settings)."""
    require_oracle(family, "teacher 'oracle'")
    parse_config(OracleConfig, kwargs, "teacher 'oracle'")
    return OracleLearner(family)


@TEACHERS.register("mixture", config=MixtureConfig)
def make_mixture(family: TaskFamily, **kwargs: Any) -> MixtureLearner:
    """DPT-style random action mixtures for ``family`` (see :class:`MixtureConfig`)."""
    return MixtureLearner(family.num_actions, parse_config(MixtureConfig, kwargs,
                                                           "teacher 'mixture'"))
