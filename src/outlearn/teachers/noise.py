"""AD-epsilon's noise curriculum: the optimal policy mixed with decaying uniform noise.

At global step ``t`` the teacher acts uniformly with probability ``eps(t)`` and takes
``family.optimal_action(obs, params)`` otherwise, so its probabilities are
``eps/A + (1 - eps) * onehot(optimal)``. ``eps`` falls from ``eps_start`` (1.0) to
``eps_end`` (0.0) over ``decay_steps`` steps, linearly (default, as in Zisman et al.
2024) or exponentially (see :func:`outlearn.teachers.qlearning.epsilon_at`). Its state
is the task's params; nothing is learned, the return rises as the schedule says.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily, require_oracle
from outlearn.registry import TEACHERS
from outlearn.teachers.qlearning import epsilon_at


class NoiseConfig(Config):
    """Noise curriculum: eps from eps_start to eps_end over decay_steps global steps."""

    eps_start: float = Field(1.0, ge=0.0, le=1.0)
    eps_end: float = Field(0.0, ge=0.0, le=1.0)
    decay_steps: int = Field(2000, ge=1)
    schedule: Literal["linear", "exponential"] = "linear"


class NoiseCurriculum:
    """Optimal action with probability 1 - eps(t), uniform otherwise."""

    name = "noise"

    def __init__(self, family: TaskFamily, cfg: NoiseConfig):
        self.family, self.cfg = family, cfg
        self.num_actions = family.num_actions

    def epsilon(self, t: jax.Array) -> jax.Array:
        """float32 [] noise level at global step ``t``."""
        c = self.cfg
        return epsilon_at(t, c.eps_start, c.eps_end, c.decay_steps, c.schedule)

    def init(self, key: jax.Array, params: Any) -> Any:
        """State: the task's params pytree."""
        return params

    def policy(self, params: Any, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32: eps/A + (1 - eps) * onehot(optimal action)."""
        eps = self.epsilon(t)
        best = jax.nn.one_hot(self.family.optimal_action(obs, params), self.num_actions)
        return (eps / self.num_actions + (1.0 - eps) * best).astype(jnp.float32)

    def update(self, key: jax.Array, params: Any, tr: Transition, t: jax.Array) -> Any:
        return params


@TEACHERS.register("noise")
def make_noise(family: TaskFamily, **kwargs: Any) -> NoiseCurriculum:
    """Noise-curriculum teacher for ``family``; kwargs are :class:`NoiseConfig` fields."""
    require_oracle(family, "teacher 'noise'")
    return NoiseCurriculum(family, parse_config(NoiseConfig, kwargs, "teacher 'noise'"))
