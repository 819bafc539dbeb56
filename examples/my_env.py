"""Adding your own task family: a 1-D corridor, registered from outside outlearn.

Import this module (or expose ``make_corridor`` as an entry point in your package's
``[project.entry-points."outlearn.envs"]``) and name ``"corridor"`` in any config::

    [env]
    name = "corridor"
    kwargs = { length = 7 }

Every teacher, the history files, the students and the studies then work on it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.envs.base import StepOut
from outlearn.registry import ENVS


class CorridorConfig(Config):
    """Settings of the corridor (what `outlearn explain envs/corridor` shows)."""

    length: int = Field(7, ge=2, description="cells in the corridor; the goal is at one end")
    episode_len: int = Field(12, ge=1, description="steps per episode")


class Params(NamedTuple):
    goal: jax.Array  # int32 [] the rewarding end: 0 (left) or length - 1 (right)


class State(NamedTuple):
    pos: jax.Array
    time: jax.Array


class Corridor:
    """Start in the middle; actions 0 stay, 1 left, 2 right; reward 1 per step at the goal."""

    num_actions = 3
    stay_action = 0

    def __init__(self, cfg: CorridorConfig):
        self.cfg, self.name = cfg, "corridor"
        self.num_obs, self.episode_len, self.num_tasks = cfg.length, cfg.episode_len, 2

    def task_params(self, task_ids):
        return Params(goal=jnp.asarray(task_ids, jnp.int32) * (self.cfg.length - 1))

    def reset(self, key, params):
        mid = jnp.int32(self.cfg.length // 2)
        return mid, State(mid, jnp.int32(0))

    def step(self, key, state, action, params):
        move = jnp.where(action == 1, -1, jnp.where(action == 2, 1, 0))
        pos = jnp.clip(state.pos + move, 0, self.cfg.length - 1).astype(jnp.int32)
        time = state.time + 1
        reward = (pos == params.goal).astype(jnp.float32)
        return StepOut(pos, State(pos, time), reward, jnp.bool_(False),
                       time >= self.cfg.episode_len)

    def optimal_action(self, obs, params):
        return jnp.where(obs == params.goal, 0, jnp.where(params.goal < obs, 1, 2)).astype(
            jnp.int32)

    def expected_reward(self, state, action, params):
        return self.step(None, state, action, params).reward

    def optimal_return(self, params):
        dist = jnp.abs(self.cfg.length // 2 - params.goal)
        return jnp.float32(jnp.maximum(0, self.cfg.episode_len - dist + 1)).clip(
            0, self.cfg.episode_len)


@ENVS.register("corridor", config=CorridorConfig)  # config: documented by `outlearn explain`
def make_corridor(**kwargs) -> Corridor:
    """A 1-D corridor with the goal at one end (example of a user-registered family)."""
    return Corridor(parse_config(CorridorConfig, kwargs, "env.kwargs"))
