"""AD-epsilon's noise curriculum: the optimal policy mixed with decaying uniform noise.

At global step ``t`` the teacher acts uniformly with probability ``eps(t)`` and takes
``family.optimal_action(obs, params)`` otherwise, so its probabilities are
``eps/A + (1 - eps) * onehot(optimal)``. ``eps`` falls from ``eps_start`` (1.0) to
``eps_end`` (0.0) over ``decay_steps`` steps, linearly (default, as in Zisman et al.
2024) or exponentially (see :func:`outlearn.teachers.qlearning.epsilon_at`); with
``eps_unit = "episode"`` the clock is the number of episodes finished, so ``eps`` is constant
within an episode and ``decay_steps`` counts episodes. Its state is the task's params (with
the episode count when per episode); nothing is learned, the return rises as the schedule
says.

``withheld_actions`` takes actions out of the data's support (claim 4's second question:
does noise distillation survive a task whose optimal action the data never shows?): the
teacher never takes them, neither as noise (uniform over the other actions) nor as its
best action (where the optimal action is withheld it acts uniformly over the others).
In Dark Room, withholding ``stay`` (action 0) leaves a teacher that must step off the goal
and back: the data then never shows the goal-holding action the oracle takes.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily, require_oracle
from outlearn.errors import ConfigError
from outlearn.registry import TEACHERS
from outlearn.teachers.qlearning import EpsUnit, clock_read, clock_start, clock_tick, epsilon_at


class NoiseConfig(Config):
    """Noise curriculum: eps from eps_start to eps_end over decay_steps steps (or episodes,
    with eps_unit = "episode")."""

    eps_start: float = Field(1.0, ge=0.0, le=1.0, description="noise level at the start: "
                             "the probability of a uniform random action instead of the optimal "
                             "one")
    eps_end: float = Field(0.0, ge=0.0, le=1.0, description="noise level once the decay is "
                           "over")
    decay_steps: int = Field(2000, ge=1, description="length of the decay, counted in "
                             "eps_unit: steps, or episodes with eps_unit = 'episode'")
    schedule: Literal["linear", "exponential"] = Field(
        "linear", description="shape of the decay: 'linear' (AD-epsilon's) or 'exponential' "
        "(1% of the gap left at decay_steps, then eps_end)")
    eps_unit: EpsUnit = Field(
        "step", description="the schedule's clock: 'step' (the global step) or 'episode' "
        "(episodes finished: the noise is constant within an episode)")
    withheld_actions: list[int] = Field(
        default_factory=list, description="actions the teacher never takes, as noise or as its "
        "best action (uniform over the others where the optimal one is withheld): data whose "
        "support lacks them, e.g. [0] for Dark Room's stay")


class NoiseCurriculum:
    """Optimal action with probability 1 - eps(t), uniform otherwise."""

    name = "noise"

    def __init__(self, family: TaskFamily, cfg: NoiseConfig):
        self.family, self.cfg = family, cfg
        self.num_actions = family.num_actions
        self.per_episode = cfg.eps_unit == "episode"
        bad = [a for a in cfg.withheld_actions if not 0 <= a < self.num_actions]
        w = cfg.withheld_actions
        if bad or len(set(w)) != len(w) or len(w) >= self.num_actions:
            raise ConfigError(
                f"teacher 'noise': withheld_actions={cfg.withheld_actions} must name distinct "
                f"actions in 0..{self.num_actions - 1} and leave at least one: fix the list")
        allowed = np.ones(self.num_actions, np.float32)
        allowed[cfg.withheld_actions] = 0.0
        #: (A,) the uniform distribution over the actions the teacher may take
        self.support = jnp.asarray(allowed / allowed.sum())

    def epsilon(self, t: jax.Array) -> jax.Array:
        """float32 [] noise level at clock ``t`` (the global step, or an episode count)."""
        c = self.cfg
        return epsilon_at(t, c.eps_start, c.eps_end, c.decay_steps, c.schedule)

    def init(self, key: jax.Array, params: Any) -> Any:
        """State: the task's params pytree (in an EpisodeClock when per episode)."""
        return clock_start(self.per_episode, params)

    def policy(self, s: Any, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32: eps/A + (1 - eps) * onehot(optimal action); with withheld actions,
        eps * u + (1 - eps) * (onehot(optimal) if it is allowed, else u), u uniform over
        the allowed actions."""
        params, clock = clock_read(self.per_episode, s, t)
        eps = self.epsilon(clock)
        opt = self.family.optimal_action(obs, params)
        best = jax.nn.one_hot(opt, self.num_actions)
        if not self.cfg.withheld_actions:  # the published curriculum, bit for bit
            return (eps / self.num_actions + (1.0 - eps) * best).astype(jnp.float32)
        best = jnp.where(self.support[opt] > 0, best, self.support)
        return (eps * self.support + (1.0 - eps) * best).astype(jnp.float32)

    def update(self, key: jax.Array, s: Any, tr: Transition, t: jax.Array) -> Any:
        params, _ = clock_read(self.per_episode, s, t)
        return clock_tick(self.per_episode, s, params, tr)


@TEACHERS.register("noise", config=NoiseConfig)
def make_noise(family: TaskFamily, **kwargs: Any) -> NoiseCurriculum:
    """Noise-curriculum teacher for ``family``; kwargs are :class:`NoiseConfig` fields."""
    require_oracle(family, "teacher 'noise'")
    return NoiseCurriculum(family, parse_config(NoiseConfig, kwargs, "teacher 'noise'"))
