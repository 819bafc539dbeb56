"""Multi-armed bandits: K arms whose means are drawn per task from the task id.

* ``bernoulli-bandit``: arm means ~ U(0, 1); a pull pays 1 with the arm's mean.
* ``gaussian-bandit``: arm means ~ N(0, 1); a pull pays mean + ``noise_std`` * N(0, 1).
  ``noise_std`` defaults to 1.0, the textbook unit-variance (1-sub-Gaussian) bandit for
  which UCB's and Thompson sampling's constants are stated; 0 makes pulls deterministic.

``means`` chooses the distribution the K means are drawn from (independently per arm):
``{ dist = "uniform", low, high }``, ``{ dist = "normal", mean, sd }`` or ``{ dist =
"beta", a, b }``. The defaults above are ``uniform`` on [0, 1] and ``normal`` (0, 1), drawn
with the same random numbers as before the field existed, so old task ids give the same
tasks bit for bit. A Bernoulli arm's mean is a probability: a uniform range outside [0, 1]
is refused, and normal draws are clipped to [0, 1]. DPT's bandit (Lee et al. 2023) is
``gaussian-bandit`` with ``means = { dist = "uniform", low = 0.0, high = 1.0 }`` and
``noise_std = 0.3``.

Every pull is an episode of length 1 (``truncated=True``, ``terminated=False``), the
observation is always 0 (``num_obs=1``), and the family is continuous (``num_tasks=None``).

Task ids are 64-bit (``split_tasks`` puts the seed in the high 32 bits): the means come
from ``outlearn.rng.id_key(low 32 bits, salt)`` folded with the high 32 bits, so train
ids of two seeds give different tasks. A jax int32 id equals the same numpy id (high bits 0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field, field_validator, model_validator

from outlearn.config import Config, parse_config
from outlearn.envs.base import StepOut
from outlearn.registry import ENVS
from outlearn.rng import id_keys

#: the parameters each distribution of arm means takes
MEAN_PARAMS: dict[str, tuple[str, ...]] = {"uniform": ("low", "high"), "normal": ("mean", "sd"),
                                           "beta": ("a", "b")}


class MeanDist(Config):
    """The distribution each arm's mean is drawn from, independently per arm and task:
    ``uniform`` on [low, high), ``normal`` (mean, sd) or ``beta`` (a, b). Only the
    parameters of the chosen ``dist`` may be given; the others keep their defaults."""

    dist: Literal["uniform", "normal", "beta"] = Field(
        description="the family of distributions: 'uniform' (low, high), 'normal' (mean, sd) "
        "or 'beta' (a, b)")
    low: float = Field(0.0, description="uniform: lower end of the range")
    high: float = Field(1.0, description="uniform: upper end of the range (above low)")
    mean: float = Field(0.0, description="normal: centre")
    sd: float = Field(1.0, gt=0.0, description="normal: standard deviation")
    a: float = Field(1.0, gt=0.0, description="beta: first shape parameter (alpha)")
    b: float = Field(1.0, gt=0.0, description="beta: second shape parameter (beta)")

    @model_validator(mode="after")
    def _own_parameters(self) -> MeanDist:
        own = MEAN_PARAMS[self.dist]
        other = sorted(self.model_fields_set - {"dist", *own})
        if other:
            takes = " and ".join(own)
            raise ValueError(f"dist = {self.dist!r} takes {takes}, not {', '.join(other)}: "
                             f"remove {', '.join(other)} or change dist")
        if self.dist == "uniform" and not self.low < self.high:
            raise ValueError(f"low = {self.low:g} must be below high = {self.high:g}: swap "
                             "them or widen the range")
        return self

    def draw(self, key: jax.Array, k: int) -> jax.Array:
        """``k`` independent draws, float32 (k,). The defaults draw exactly what the
        families drew before this setting existed (``uniform(key)``, ``normal(key)``)."""
        if self.dist == "uniform":
            return jax.random.uniform(key, (k,), dtype=jnp.float32, minval=self.low,
                                      maxval=self.high)
        if self.dist == "normal":
            return self.mean + self.sd * jax.random.normal(key, (k,), dtype=jnp.float32)
        return jax.random.beta(key, self.a, self.b, (k,), dtype=jnp.float32)


class BanditConfig(Config):
    """Settings of a Bernoulli bandit family."""

    num_arms: int = Field(5, ge=2, description="number of arms (actions); at least 2")
    means: MeanDist = Field(
        default_factory=lambda: MeanDist(dist="uniform", low=0.0, high=1.0),
        description="distribution of each task's arm means, e.g. { dist = \"uniform\", low = "
        "0.0, high = 1.0 } (the default), { dist = \"normal\", mean, sd } or { dist = "
        "\"beta\", a, b }. A Bernoulli mean is a probability: a uniform range must lie in "
        "[0, 1], normal draws are clipped to it")

    @field_validator("means", mode="before")
    @classmethod
    def _a_table(cls, v: Any) -> Any:
        if not isinstance(v, dict | MeanDist):
            raise ValueError("means is a table naming a distribution and its parameters, "
                             "e.g. means = { dist = \"uniform\", low = 0.0, high = 1.0 }")
        return v

    @field_validator("means")
    @classmethod
    def _probabilities(cls, m: MeanDist) -> MeanDist:
        if cls is BanditConfig and m.dist == "uniform" and (m.low < 0.0 or m.high > 1.0):
            raise ValueError(f"a Bernoulli arm's mean is a probability, but U({m.low:g}, "
                             f"{m.high:g}) leaves [0, 1]: keep 0 <= low < high <= 1, or use "
                             "gaussian-bandit for other means")
        return m


class GaussianBanditConfig(BanditConfig):
    """Settings of a Gaussian bandit family."""

    means: MeanDist = Field(
        default_factory=lambda: MeanDist(dist="normal", mean=0.0, sd=1.0),
        description="distribution of each task's arm means, e.g. { dist = \"normal\", mean = "
        "0.0, sd = 1.0 } (the default), { dist = \"uniform\", low, high } (DPT's bandit: low "
        "0, high 1) or { dist = \"beta\", a, b }")
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
    """K-armed Bernoulli bandit, means ~ U(0, 1) per task (or ``cfg.means``, kept in [0, 1])."""

    salt = 1

    def draw_means(self, key: jax.Array) -> jax.Array:
        means = self.cfg.means.draw(key, self.num_arms)
        if self.cfg.means.dist == "normal":
            return jnp.clip(means, 0.0, 1.0)
        return means  # uniform inside [0, 1] (the config's check) or beta

    def sample_reward(self, key: jax.Array, mean: jax.Array) -> jax.Array:
        return jax.random.bernoulli(key, mean).astype(jnp.float32)


class GaussianBandit(_Bandit):
    """K-armed Gaussian bandit, means ~ N(0, 1) per task (or ``cfg.means``), reward noise
    ``noise_std``."""

    salt = 2

    def __init__(self, cfg: GaussianBanditConfig, name: str):
        super().__init__(cfg, name)
        self.noise_std = cfg.noise_std

    def draw_means(self, key: jax.Array) -> jax.Array:
        return self.cfg.means.draw(key, self.num_arms)

    def sample_reward(self, key: jax.Array, mean: jax.Array) -> jax.Array:
        return mean + self.noise_std * jax.random.normal(key, (), dtype=jnp.float32)


@ENVS.register("bernoulli-bandit", config=BanditConfig)
def make_bernoulli_bandit(**kwargs: Any) -> BernoulliBandit:
    """K-armed Bernoulli bandit, means ~ U(0, 1) per task (kwargs: BanditConfig)."""
    cfg = parse_config(BanditConfig, kwargs, source="env 'bernoulli-bandit'")
    return BernoulliBandit(cfg, "bernoulli-bandit")


@ENVS.register("gaussian-bandit", config=GaussianBanditConfig)
def make_gaussian_bandit(**kwargs: Any) -> GaussianBandit:
    """K-armed Gaussian bandit, means ~ N(0, 1) per task (kwargs: GaussianBanditConfig)."""
    cfg = parse_config(GaussianBanditConfig, kwargs, source="env 'gaussian-bandit'")
    return GaussianBandit(cfg, "gaussian-bandit")
