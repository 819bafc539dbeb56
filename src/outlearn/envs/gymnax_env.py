"""Any gymnax environment with discrete actions as an outlearn task family ("gymnax").

Config: ``[env] name = "gymnax"`` with ``kwargs = { name = "Breakout-MinAtar" }`` (the
default), optionally ``episode_len`` (default: the environment's own
``max_steps_in_episode``) and ``params``, overrides of the environment's ``EnvParams``
fields. One generic family rather than a registered name per environment: the ~20
gymnax environments (and any a user registers with ``gymnax.register``) come in through
one adapter, validated at construction, and a history records which one in its
``env_kwargs``.

A *task* is the environment with its params; its id labels it (the family is
continuous, ``num_tasks = None``, any id >= 0) and is folded into the reset key, so a
task is also a stream of episode seeds. Every task shares the configured params: what
varies from task to task is the randomness of its starts, not its rules.

Observations are arrays (``obs_shape`` the environment's, ``num_obs = 0``; with
``pad_channels`` the frame's channel axis is padded with zeros to that count, so that a
student trained on one MinAtar game can be run on another with more channels). MinAtar's are
binary channel frames (10 x 10 x channels of 0/1, returned by gymnax as float32); the
adapter hands them on as bool, so a history stores them one byte a pixel and reads them
back exactly. Other environments keep their dtype (float32 vectors for CartPole).

gymnax 1.0.1's ``Environment.step`` returns six values (obs, state, reward, terminated,
truncated, info) and resets a finished episode itself, replacing the final observation.
Outlearn's loop resets on its own and records the observation that ended the step, so
:func:`gymnax_step` (the one place gymnax's step is called) calls ``step_env`` (five
values: obs, state, reward, terminated, info; no reset) and truncates after
``episode_len`` steps with its own counter.

gymnax has no oracle: ``has_oracle = False``, ``optimal_action`` is -1,
``optimal_return`` and ``expected_reward`` are NaN.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.envs.base import StepOut
from outlearn.errors import ConfigError
from outlearn.registry import ENVS

#: gymnax names whose observations are binary frames, handed on as bool
BINARY_FRAME_SUFFIX = "-MinAtar"


class GymnaxConfig(Config):
    """Settings of the gymnax adapter."""

    name: str = Field("Breakout-MinAtar",
                      description="a gymnax environment id (gymnax.registered_envs)")
    episode_len: int | None = Field(None, ge=1, description=(
        "steps before truncation; default: the environment's max_steps_in_episode"))
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "overrides of the environment's EnvParams fields"))
    pad_channels: int | None = Field(None, ge=1, description=(
        "frames only: pad the last (channel) axis with zeros to this many channels, so that "
        "games with different channel counts (Breakout-MinAtar 4, Freeway-MinAtar 7) give "
        "one observation shape; unset: the environment's own"))


class GymnaxParams(NamedTuple):
    task_id: jax.Array  # int32 [] (batched: (n,))


class GymnaxState(NamedTuple):
    inner: Any  # the gymnax environment's state
    time: jax.Array  # int32 [] steps taken in this episode


def make_gymnax_env(name: str) -> tuple[Any, Any]:
    """``gymnax.make(name)``; an unknown name is a ConfigError listing the valid ones."""
    import gymnax

    if name not in gymnax.registered_envs:
        raise ConfigError(
            f"env 'gymnax': unknown gymnax environment {name!r}; valid names: "
            f"{', '.join(sorted(gymnax.registered_envs))}. Set env.kwargs.name to one of them")
    return gymnax.make(name)


def gymnax_step(env: Any, key: jax.Array, state: Any, action: jax.Array, params: Any
                ) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One gymnax step without auto-reset: (obs, state, reward, terminated).

    ``step_env`` returns (obs, state, reward, terminated, info); the info is dropped."""
    obs, state, reward, terminated, _info = env.step_env(key, state, action, params)
    return obs, state, reward, terminated


class GymnaxFamily:
    """A gymnax environment as a task family (see the module docstring)."""

    num_obs = 0
    num_tasks = None
    has_oracle = False

    def __init__(self, cfg: GymnaxConfig, name: str = "gymnax"):
        from gymnax.environments import spaces

        self.cfg, self.name = cfg, name
        self.env, params = make_gymnax_env(cfg.name)
        fields = {f.name for f in dataclasses.fields(params)}
        bad = sorted(set(cfg.params) - fields)
        if bad:
            raise ConfigError(
                f"env 'gymnax' ({cfg.name}): unknown params {', '.join(map(repr, bad))}; "
                f"its EnvParams fields are {', '.join(sorted(fields))}. Fix env.kwargs.params")
        params = params.replace(**cfg.params)
        if cfg.episode_len is not None and "max_steps_in_episode" in fields:
            params = params.replace(max_steps_in_episode=cfg.episode_len)
        if cfg.episode_len is None and "max_steps_in_episode" not in fields:
            raise ConfigError(f"env 'gymnax' ({cfg.name}) has no max_steps_in_episode: "
                              "set env.kwargs.episode_len")
        self.env_params = params
        self.episode_len = int(cfg.episode_len or params.max_steps_in_episode)
        space = self.env.action_space(params)
        if not isinstance(space, spaces.Discrete):
            raise ConfigError(
                f"env 'gymnax' ({cfg.name}) has {type(space).__name__} (continuous) actions; "
                "outlearn's learners choose among discrete actions. Pick a gymnax "
                "environment with Discrete actions (e.g. Breakout-MinAtar, CartPole-v1)")
        self.num_actions = int(space.n)
        self.binary = cfg.name.endswith(BINARY_FRAME_SUFFIX)
        shape = jax.eval_shape(lambda k: self.env.reset_env(k, params)[0], jax.random.key(0))
        self.raw_shape: tuple[int, ...] = tuple(shape.shape) or (1,)
        self.pad = 0
        if cfg.pad_channels is not None:
            have = self.raw_shape[-1]
            if len(self.raw_shape) < 3 or cfg.pad_channels < have:
                raise ConfigError(
                    f"env 'gymnax' ({cfg.name}): pad_channels={cfg.pad_channels} but its "
                    f"observations have shape {self.raw_shape}"
                    + (f" ({have} channels): set pad_channels >= {have}"
                       if len(self.raw_shape) >= 3 else
                       ", not frames with a channel axis: leave pad_channels unset"))
            self.pad = cfg.pad_channels - have
        self.obs_shape: tuple[int, ...] = (*self.raw_shape[:-1], self.raw_shape[-1] + self.pad
                                           ) if self.pad else self.raw_shape
        self.obs_dtype = np.dtype(np.bool_) if self.binary else np.dtype(shape.dtype)

    def _obs(self, obs: jax.Array) -> jax.Array:
        obs = jnp.reshape(obs, self.raw_shape)
        if self.pad:
            obs = jnp.pad(obs, [(0, 0)] * (obs.ndim - 1) + [(0, self.pad)])
        return obs.astype(jnp.bool_) if self.binary else obs.astype(self.obs_dtype)

    def task_params(self, task_ids: jax.Array) -> GymnaxParams:
        """Task ids (n,) -> params with task_id (n,) int32; ids must be >= 0."""
        if not isinstance(task_ids, jax.core.Tracer):
            ids = np.asarray(task_ids)
            if ids.ndim != 1:
                raise ConfigError(f"{self.name}: task_ids must be a 1-d array of ids, got "
                                  f"shape {ids.shape}; pass the ids from split_tasks")
            if ids.size and ids.min() < 0:
                raise ConfigError(f"{self.name}: task ids must be >= 0, got {ids.min()}")
        return GymnaxParams(jnp.asarray(task_ids).astype(jnp.int32))

    def reset(self, key: jax.Array, params: GymnaxParams) -> tuple[jax.Array, GymnaxState]:
        obs, inner = self.env.reset_env(jax.random.fold_in(key, params.task_id),
                                        self.env_params)
        return self._obs(obs), GymnaxState(inner, jnp.int32(0))

    def step(self, key: jax.Array, state: GymnaxState, action: jax.Array,
             params: GymnaxParams) -> StepOut:
        obs, inner, reward, terminated = gymnax_step(self.env, key, state.inner, action,
                                                     self.env_params)
        time = state.time + 1
        terminated = jnp.asarray(terminated, dtype=jnp.bool_)
        truncated = (time >= self.episode_len) & ~terminated
        return StepOut(self._obs(obs), GymnaxState(inner, time),
                       jnp.asarray(reward, dtype=jnp.float32), terminated, truncated)

    def expected_reward(self, state: GymnaxState, action: jax.Array,
                        params: GymnaxParams) -> jax.Array:
        return jnp.float32(jnp.nan)

    def optimal_action(self, obs: jax.Array, params: GymnaxParams) -> jax.Array:
        return jnp.int32(-1)

    def optimal_return(self, params: GymnaxParams) -> jax.Array:
        return jnp.float32(jnp.nan)


@ENVS.register("gymnax", config=GymnaxConfig)
def make_gymnax(**kwargs: Any) -> GymnaxFamily:
    """A gymnax environment (kwargs: name, episode_len, params); default Breakout-MinAtar."""
    return GymnaxFamily(parse_config(GymnaxConfig, kwargs, source="env 'gymnax'"))
