"""Multi-armed bandits: K arms whose means are drawn per task from the task id.

* ``bernoulli-bandit``: arm means ~ U(0, 1); a pull pays 1 with the arm's mean.
* ``gaussian-bandit``: arm means ~ N(0, 1); a pull pays mean + ``noise_std`` * N(0, 1).
  ``noise_std`` defaults to 1.0, the textbook unit-variance (1-sub-Gaussian) bandit for
  which UCB's and Thompson sampling's constants are stated; 0 makes pulls deterministic.

Every pull is an episode of length 1 (``truncated=True``, ``terminated=False``), the
observation is always 0 (``num_obs=1``), and the family is continuous (``num_tasks=None``).

Task ids are 64-bit (``split_tasks`` puts the seed in the high 32 bits): the means come
from ``outlearn.rng.id_key(low 32 bits, salt)`` folded with the high 32 bits, so train
ids of two seeds give different tasks. A jax int32 id equals the same numpy id (high bits 0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.envs.base import StepOut
from outlearn.registry import ENVS
from outlearn.rng import id_keys


class BanditConfig(Config):
    """Settings of a Bernoulli bandit family."""

    num_arms: int = Field(5, ge=2, description="number of arms (actions); at least 2")


class GaussianBanditConfig(BanditConfig):
    """Settings of a Gaussian bandit family."""

    noise_std: float = Field(1.0, ge=0.0, description="std of the reward noise around the mean")


class BanditParams(NamedTuple):
    means: jax.Array  # float32 (K,) (batched: (n, K)) arm means


class BanditState(NamedTuple):
    time: jax.Array  # int32 []: 0 before the pull, 1 after


class _Bandit(ABC):
    """Shared protocol methods; subclasses draw means and sample rewards."""

    num_obs = 1
    episode_len = 1
    num_tasks = None
    salt = 0

    def __init__(self, cfg: BanditConfig, name: str):
        self.cfg = cfg
        self.name = name
        self.num_arms = cfg.num_arms
        self.num_actions = cfg.num_arms
        self._draw_all = jax.jit(jax.vmap(self.draw_means))

    @abstractmethod
    def draw_means(self, key: jax.Array) -> jax.Array:
        """The arm means of one task, float32 (K,)."""

    @abstractmethod
    def sample_reward(self, key: jax.Array, mean: jax.Array) -> jax.Array:
        """One reward of an arm with mean ``mean``, float32 []."""

    def task_params(self, task_ids: jax.Array) -> BanditParams:
        """Task ids (n,) -> params with means (n, K), deterministic in each id."""
        return BanditParams(means=self._draw_all(id_keys(task_ids, self.salt)))

    def reset(self, key: jax.Array, params: BanditParams) -> tuple[jax.Array, BanditState]:
        return jnp.int32(0), BanditState(jnp.int32(0))

    def step(self, key: jax.Array, state: BanditState, action: jax.Array,
             params: BanditParams) -> StepOut:
        reward = self.sample_reward(key, params.means[action]).astype(jnp.float32)
        return StepOut(jnp.int32(0), BanditState(state.time + 1), reward,
                       jnp.bool_(False), jnp.bool_(True))

    def expected_reward(self, state: BanditState, action: jax.Array,
                        params: BanditParams) -> jax.Array:
        return params.means[action].astype(jnp.float32)

    def optimal_action(self, obs: jax.Array, params: BanditParams) -> jax.Array:
        return jnp.argmax(params.means).astype(jnp.int32)

    def optimal_return(self, params: BanditParams) -> jax.Array:
        return jnp.max(params.means).astype(jnp.float32)


class BernoulliBandit(_Bandit):
    """K-armed Bernoulli bandit, means ~ U(0, 1) per task."""

    salt = 1

    def draw_means(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (self.num_arms,), dtype=jnp.float32)

    def sample_reward(self, key: jax.Array, mean: jax.Array) -> jax.Array:
        return jax.random.bernoulli(key, mean).astype(jnp.float32)


class GaussianBandit(_Bandit):
    """K-armed Gaussian bandit, means ~ N(0, 1) per task, reward noise ``noise_std``."""

    salt = 2

    def __init__(self, cfg: GaussianBanditConfig, name: str):
        super().__init__(cfg, name)
        self.noise_std = cfg.noise_std

    def draw_means(self, key: jax.Array) -> jax.Array:
        return jax.random.normal(key, (self.num_arms,), dtype=jnp.float32)

    def sample_reward(self, key: jax.Array, mean: jax.Array) -> jax.Array:
        return mean + self.noise_std * jax.random.normal(key, (), dtype=jnp.float32)


@ENVS.register("bernoulli-bandit")
def make_bernoulli_bandit(**kwargs: Any) -> BernoulliBandit:
    """K-armed Bernoulli bandit, means ~ U(0, 1) per task (kwargs: BanditConfig)."""
    cfg = parse_config(BanditConfig, kwargs, source="env 'bernoulli-bandit'")
    return BernoulliBandit(cfg, "bernoulli-bandit")


@ENVS.register("gaussian-bandit")
def make_gaussian_bandit(**kwargs: Any) -> GaussianBandit:
    """K-armed Gaussian bandit, means ~ N(0, 1) per task (kwargs: GaussianBanditConfig)."""
    cfg = parse_config(GaussianBanditConfig, kwargs, source="env 'gaussian-bandit'")
    return GaussianBandit(cfg, "gaussian-bandit")
