"""Bandit learners: UCB1, Thompson sampling, epsilon-greedy (one learner, one task).

They act on observation 0 only (a bandit has one state; ``obs`` is ignored). State
arrays are per arm, shape (A,).

* ``ucb1``: pull each arm once (lowest index first), then argmax of
  ``mean + c * sqrt(ln n / n_a)``; ties go to the lowest index (deterministic).
* ``thompson``: exact Thompson sampling. ``policy`` has no key, so the arm to pull
  next is drawn from the posterior in ``update`` (and in ``init`` from the prior)
  and stored in the state; ``policy`` returns its one-hot. The recorded probabilities
  are therefore those of the sampled arm, not the posterior probability of each arm
  being best. Bernoulli rewards use Beta(1, 1) priors; Gaussian rewards use a
  N(prior_mean, prior_std^2) prior on each mean with known noise std ``noise_std``.
* ``egreedy``: sample-average estimates, uniform with probability eps, greedy
  otherwise (ties split uniformly, so probabilities are exact); eps constant 0.3 by
  default (CLAIMS claim 7) or a decaying schedule.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily
from outlearn.registry import TEACHERS
from outlearn.teachers.qlearning import (
    EpsilonConfig,
    Schedule,
    clock_read,
    clock_start,
    clock_tick,
    epsilon_at,
    greedy_probs,
)


class ArmStats(NamedTuple):
    """Per-arm pull counts and reward sums, float32 (A,) each."""

    counts: jax.Array
    sums: jax.Array


def _zeros(a: int) -> ArmStats:
    return ArmStats(jnp.zeros((a,), jnp.float32), jnp.zeros((a,), jnp.float32))


def _add(s: ArmStats, tr: Transition) -> ArmStats:
    return ArmStats(s.counts.at[tr.action].add(1.0), s.sums.at[tr.action].add(tr.reward))


class UCB1Config(Config):
    """UCB1 exploration constant ``c`` (bonus c * sqrt(ln n / n_a))."""

    c: float = Field(math.sqrt(2.0), ge=0.0, description="exploration constant: an arm's "
                     "index is its mean reward + c * sqrt(ln n / n_a); sqrt(2) is Auer et "
                     "al.'s, for rewards in [0, 1]; 0 is greedy")


class ThompsonConfig(Config):
    """Thompson sampling. ``likelihood='auto'`` is Bernoulli for a family whose name
    contains 'bernoulli' and Gaussian otherwise."""

    likelihood: Literal["auto", "bernoulli", "gaussian"] = Field(
        "auto", description="reward model of the posterior: 'bernoulli' (Beta(1, 1) priors), "
        "'gaussian' (normal prior, known noise), or 'auto' (bernoulli when the family's name "
        "contains 'bernoulli', else gaussian)")
    prior_mean: float = Field(0.0, description="gaussian: mean of the normal prior on every "
                              "arm's mean")
    prior_std: float = Field(1.0, gt=0.0, description="gaussian: standard deviation of the "
                             "normal prior on every arm's mean")
    noise_std: float = Field(1.0, gt=0.0, description="gaussian: the reward noise's standard "
                             "deviation the posterior assumes (set it to the env's noise_std)")


class EGreedyConfig(EpsilonConfig):
    """Epsilon-greedy bandit: constant eps 0.3 unless a schedule is chosen."""

    eps_schedule: Schedule = Field(
        "constant", description="how epsilon moves from eps_start to eps_end: 'constant' "
        "(eps_start throughout, CLAIMS claim 7's source), 'linear', 'exponential' (1% of the "
        "gap left at eps_decay_steps)")
    eps_start: float = Field(0.3, ge=0.0, le=1.0, description="epsilon (probability of a "
                             "uniform random arm) at the start; the constant with 'constant'")


class UCB1:
    """UCB1 (Auer et al. 2002) with a configurable exploration constant."""

    name = "ucb1"

    def __init__(self, num_actions: int, cfg: UCB1Config):
        self.num_actions, self.cfg = num_actions, cfg

    def init(self, key: jax.Array, params: Any) -> ArmStats:
        return _zeros(self.num_actions)

    def policy(self, s: ArmStats, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32 one-hot: first unpulled arm, else the highest upper bound."""
        n = jnp.maximum(jnp.sum(s.counts), 1.0)
        safe = jnp.maximum(s.counts, 1.0)
        ucb = s.sums / safe + self.cfg.c * jnp.sqrt(jnp.log(n) / safe)
        ucb = jnp.where(s.counts == 0, jnp.inf, ucb)  # argmax: lowest unpulled arm first
        return jax.nn.one_hot(jnp.argmax(ucb), self.num_actions, dtype=jnp.float32)

    def update(self, key: jax.Array, s: ArmStats, tr: Transition, t: jax.Array) -> ArmStats:
        return _add(s, tr)


class ThompsonState(NamedTuple):
    stats: ArmStats
    next_arm: jax.Array  # int32 []: the arm drawn from the posterior for the next pull


class Thompson:
    """Exact Thompson sampling: the next arm is drawn in ``update`` and stored."""

    name = "thompson"

    def __init__(self, num_actions: int, bernoulli: bool, cfg: ThompsonConfig):
        self.num_actions, self.bernoulli, self.cfg = num_actions, bernoulli, cfg

    def sample_means(self, key: jax.Array, s: ArmStats) -> jax.Array:
        """One posterior draw of every arm's mean, (A,) float32."""
        if self.bernoulli:
            return jax.random.beta(key, 1.0 + s.sums, 1.0 + s.counts - s.sums)
        c = self.cfg
        prec = 1.0 / c.prior_std**2 + s.counts / c.noise_std**2
        evidence = s.sums / c.noise_std**2
        if c.prior_mean != 0.0:  # (a zero prior mean adds nothing: the same numbers as before)
            evidence = evidence + c.prior_mean / c.prior_std**2
        mean = evidence / prec
        return mean + jax.random.normal(key, mean.shape) / jnp.sqrt(prec)

    def _draw(self, key: jax.Array, s: ArmStats) -> ThompsonState:
        return ThompsonState(s, jnp.argmax(self.sample_means(key, s)).astype(jnp.int32))

    def init(self, key: jax.Array, params: Any) -> ThompsonState:
        return self._draw(key, _zeros(self.num_actions))

    def policy(self, s: ThompsonState, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32 one-hot on the stored posterior draw's best arm."""
        return jax.nn.one_hot(s.next_arm, self.num_actions, dtype=jnp.float32)

    def update(self, key: jax.Array, s: ThompsonState, tr: Transition, t: jax.Array):
        return self._draw(key, _add(s.stats, tr))


class EGreedy:
    """Epsilon-greedy on sample-average arm values (unpulled arms count as 0)."""

    name = "egreedy"

    def __init__(self, num_actions: int, cfg: EGreedyConfig):
        self.num_actions, self.cfg = num_actions, cfg

    def init(self, key: jax.Array, params: Any) -> Any:
        """Arm statistics (in an EpisodeClock when epsilon runs per episode)."""
        return clock_start(self.cfg.per_episode, _zeros(self.num_actions))

    def policy(self, s: Any, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32: eps/A + (1 - eps) * uniform over the argmax of the means."""
        c = self.cfg
        stats, clock = clock_read(c.per_episode, s, t)
        eps = epsilon_at(clock, c.eps_start, c.eps_end, c.eps_decay_steps, c.eps_schedule)
        return greedy_probs(stats.sums / jnp.maximum(stats.counts, 1.0), eps)

    def update(self, key: jax.Array, s: Any, tr: Transition, t: jax.Array) -> Any:
        stats, _ = clock_read(self.cfg.per_episode, s, t)
        return clock_tick(self.cfg.per_episode, s, _add(stats, tr), tr)


@TEACHERS.register("ucb1", config=UCB1Config)
def make_ucb1(family: TaskFamily, **kwargs: Any) -> UCB1:
    """UCB1 for a bandit ``family``; kwargs are :class:`UCB1Config` fields."""
    return UCB1(family.num_actions, parse_config(UCB1Config, kwargs, "teacher 'ucb1'"))


@TEACHERS.register("thompson", config=ThompsonConfig)
def make_thompson(family: TaskFamily, **kwargs: Any) -> Thompson:
    """Thompson sampling for a bandit ``family``; kwargs are :class:`ThompsonConfig` fields."""
    cfg = parse_config(ThompsonConfig, kwargs, "teacher 'thompson'")
    lik = cfg.likelihood
    bern = "bernoulli" in family.name if lik == "auto" else lik == "bernoulli"
    return Thompson(family.num_actions, bern, cfg)


@TEACHERS.register("egreedy", config=EGreedyConfig)
def make_egreedy(family: TaskFamily, **kwargs: Any) -> EGreedy:
    """Epsilon-greedy for a bandit ``family``; kwargs are :class:`EGreedyConfig` fields."""
    return EGreedy(family.num_actions, parse_config(EGreedyConfig, kwargs, "teacher 'egreedy'"))
