"""Tabular Q-learning with an epsilon-greedy policy (one learner, one task).

State: a table ``q`` float32 (num_obs, A). The policy is epsilon-greedy with greedy
ties split uniformly among the argmax actions, so the returned probabilities are the
exact probabilities the learner acts with. The update is the one-step Q-learning rule;
a terminal transition does not bootstrap, a truncated one does (the episode was cut,
the task did not end).

The epsilon schedule (:func:`epsilon_at`) is shared by the epsilon-greedy bandit and
the noise-curriculum teacher. Its clock is the global step by default (``eps_unit =
"step"``); with ``eps_unit = "episode"`` it is the number of episodes the learner has
finished (the state carries the count, :class:`EpisodeClock`), so epsilon is constant
within an episode and the decay length counts episodes. On a bandit, where every pull is
an episode, the two are the same.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field, model_validator

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily, require_discrete_obs
from outlearn.errors import ConfigError
from outlearn.registry import TEACHERS

Schedule = Literal["constant", "linear", "exponential"]
EpsUnit = Literal["step", "episode"]


def epsilon_at(t: jax.Array, start: float, end: float, decay_steps: int, kind: str) -> jax.Array:
    """Epsilon at global step ``t`` (int32 []), float32 [].

    ``constant``: ``start`` always. ``linear``: from ``start`` at t=0 to ``end`` at
    ``t = decay_steps``, then ``end``. ``exponential``: ``end + (start - end) * 0.01 **
    (t / decay_steps)`` (1% of the range is left at ``decay_steps``), then ``end``.
    """
    if kind == "constant":
        return jnp.float32(start)
    frac = jnp.clip(t.astype(jnp.float32) / float(max(decay_steps, 1)), 0.0, 1.0)
    if kind == "linear":
        return jnp.float32(start) + (end - start) * frac
    if kind == "exponential":
        shape = jnp.where(frac >= 1.0, 0.0, jnp.power(0.01, frac))
        return jnp.float32(end) + (start - end) * shape
    raise ConfigError(f"unknown epsilon schedule {kind!r}: use constant, linear or exponential")


def _columns(x: jax.Array) -> list[jax.Array]:
    """The entries of the last axis of ``x`` (..., A), as A arrays (...)."""
    return [x[..., i] for i in range(x.shape[-1])]


def max_last(x: jax.Array) -> jax.Array:
    """``jnp.max(x, axis=-1)`` for a short last axis, as elementwise maxima: under vmap
    XLA CPU fuses these with their neighbours, where a reduction is a slow kernel."""
    return functools.reduce(jnp.maximum, _columns(x))


def greedy_probs(values: jax.Array, eps: jax.Array) -> jax.Array:
    """Epsilon-greedy probabilities over values (A,), ties split uniformly: (A,) float32."""
    best = [(v >= max_last(values)).astype(jnp.float32) for v in _columns(values)]
    a = values.shape[-1]
    return eps / a + (1.0 - eps) * jnp.stack(best, -1) / sum(best)


class EpisodeClock(NamedTuple):
    """A learner's own state with the number of episodes it has finished: the clock of a
    per-episode epsilon schedule (``eps_unit = "episode"``)."""

    inner: Any  # the learner's state (a Q table, arm statistics, task params)
    episodes: jax.Array  # int32 []: episodes finished before the current step


def clock_start(per_episode: bool, inner: Any) -> Any:
    """The initial state: ``inner``, with an episode count of 0 when per episode."""
    return EpisodeClock(inner, jnp.int32(0)) if per_episode else inner


def clock_read(per_episode: bool, s: Any, t: jax.Array) -> tuple[Any, jax.Array]:
    """(the learner's own state, the schedule's clock): the global step ``t``, or the
    episodes finished so far."""
    return (s.inner, s.episodes) if per_episode else (s, t)


def clock_tick(per_episode: bool, s: Any, inner: Any, tr: Transition) -> Any:
    """The state after a step: ``inner``, and one more episode when ``tr`` ended one."""
    if not per_episode:
        return inner
    return EpisodeClock(inner, s.episodes + (tr.terminated | tr.truncated).astype(jnp.int32))


class EpsilonConfig(Config):
    """Epsilon-greedy exploration settings shared by Q-learning and epsilon-greedy."""

    eps_schedule: Schedule = Field(
        "linear", description="how epsilon moves from eps_start to eps_end: 'constant' "
        "(eps_start throughout), 'linear' (straight to eps_end over eps_decay_steps), "
        "'exponential' (1% of the gap is left at eps_decay_steps, then eps_end)")
    eps_start: float = Field(1.0, ge=0.0, le=1.0,
                             description="epsilon (probability of a uniform random action) at "
                             "the start")
    eps_end: float = Field(0.05, ge=0.0, le=1.0,
                           description="epsilon once the decay is over (unused by 'constant')")
    eps_decay_steps: int = Field(2000, ge=1, description="length of the decay, counted in "
                                 "eps_unit: steps, or episodes with eps_unit = 'episode'")
    eps_unit: EpsUnit = Field(
        "step", description="the schedule's clock: 'step' (the global step, epsilon changes "
        "every step) or 'episode' (episodes finished: epsilon is constant within an episode)")

    @property
    def per_episode(self) -> bool:
        return self.eps_unit == "episode"


class QLearningConfig(EpsilonConfig):
    """Settings of the tabular Q-learner. The defaults (learning rate 1, optimistic
    initial values, greedy with uniform tie-breaking) suit deterministic gridworlds:
    9x9 Dark Room reaches 90% of optimal in about 100 episodes, 100% by about 160."""

    learning_rate: float = Field(1.0, gt=0.0, le=1.0,
                                 description="step size of the update: Q += lr * (target - Q)")
    discount: float = Field(0.9, ge=0.0, lt=1.0, description="discount of the bootstrapped "
                            "target r + discount * max Q(next)")
    initial_value: float | Literal["optimistic"] = Field(
        "optimistic", description="value every Q entry starts at; 'optimistic' is "
        "1 / (1 - discount), the value of a reward of 1 on every step")
    eps_schedule: Schedule = Field(
        "constant", description="how epsilon moves from eps_start to eps_end: 'constant' "
        "(eps_start throughout), 'linear', 'exponential' (see the epsilon-greedy teacher)")
    eps_start: float = Field(0.0, ge=0.0, le=1.0,
                             description="epsilon at the start (0 with 'constant': greedy, "
                             "exploring through optimistic values and random tie-breaking)")

    @model_validator(mode="after")
    def _check(self) -> QLearningConfig:
        if isinstance(self.initial_value, float) and not -1e6 < self.initial_value < 1e6:
            raise ValueError("initial_value must be a finite number or 'optimistic'")
        return self


class QLearning:
    """Tabular Q-learning; ``initial_value='optimistic'`` means 1 / (1 - discount)
    (the value of a reward of 1 on every step, the largest reward of the gridworlds)."""

    name = "qlearning"

    def __init__(self, num_obs: int, num_actions: int, cfg: QLearningConfig):
        self.num_obs, self.num_actions, self.cfg = num_obs, num_actions, cfg
        iv = cfg.initial_value
        self.q0 = 1.0 / (1.0 - cfg.discount) if iv == "optimistic" else float(iv)

    def init(self, key: jax.Array, params: Any) -> Any:
        """Q table, float32 (num_obs, A), filled with the initial value (in an
        :class:`EpisodeClock` when epsilon runs per episode)."""
        q = jnp.full((self.num_obs, self.num_actions), self.q0, jnp.float32)
        return clock_start(self.cfg.per_episode, q)

    def epsilon(self, t: jax.Array) -> jax.Array:
        """float32 [] epsilon at clock ``t`` (a step, or an episode count)."""
        c = self.cfg
        return epsilon_at(t, c.eps_start, c.eps_end, c.eps_decay_steps, c.eps_schedule)

    def policy(self, s: Any, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32: epsilon-greedy on q[obs], greedy ties split uniformly."""
        q, clock = clock_read(self.cfg.per_episode, s, t)
        return greedy_probs(q[obs], self.epsilon(clock))

    def update(self, key: jax.Array, s: Any, tr: Transition, t: jax.Array) -> Any:
        """One Q-learning step; no bootstrap past a terminal state (truncation bootstraps)."""
        c = self.cfg
        q, _ = clock_read(c.per_episode, s, t)
        boot = jnp.where(tr.terminated, 0.0, c.discount * max_last(q[tr.next_obs]))
        old = q[tr.obs, tr.action]
        q = q.at[tr.obs, tr.action].set(old + c.learning_rate * (tr.reward + boot - old))
        return clock_tick(c.per_episode, s, q, tr)


@TEACHERS.register("qlearning", config=QLearningConfig)
def make_qlearning(family: TaskFamily, **kwargs: Any) -> QLearning:
    """A tabular Q-learner for ``family``; kwargs are :class:`QLearningConfig` fields."""
    require_discrete_obs(family, "teacher 'qlearning'")
    cfg = parse_config(QLearningConfig, kwargs, "teacher 'qlearning'")
    return QLearning(family.num_obs, family.num_actions, cfg)
