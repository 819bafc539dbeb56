"""Dark Key-to-Door (AD): pick up an unseen key, then open an unseen door.

Grid, cells and actions as in :mod:`outlearn.envs.darkroom` (9x9 by default, 5 actions,
walls clip). A task is a (key cell, door cell) pair, ``task id = key * N + door`` with
``N = size*size`` (6,561 tasks for 9x9; key and door may coincide). Each step, for the
cell *reached* by the move:

1. on the key without holding it: pick it up, reward 1;
2. then, on the door while holding the key: reward 1 and the episode terminates.

(When key and door coincide both happen on the same step.) Otherwise the episode is
truncated after ``episode_len`` steps (default 50; AD uses 40-50 -- we take 50).
Observation: ``cell + N * has_key`` (``num_obs = 2N``), so it carries the key.

Optimal return from a start ``s``: the key is first reached after ``k1 = max(1, |s - key|)``
steps (a start on the key picks it up by staying), the door after ``k1 + |key - door|``;
return ``= [k1 <= H] + [k1 + |key - door| <= H]`` (Manhattan distances). With the
default uniform random start it is the exact mean over all N start cells.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.envs.base import StepOut
from outlearn.envs.darkroom import (
    NUM_GRID_ACTIONS,
    StartMode,
    check_task_ids,
    grid_move,
    manhattan,
    start_cell,
    start_cells,
    toward,
)
from outlearn.registry import ENVS


class KeyDoorConfig(Config):
    """Settings of a Dark Key-to-Door family."""

    size: int = Field(9, ge=2, description="grid side; the room has size*size cells")
    episode_len: int = Field(50, ge=1, description="steps per episode (horizon)")
    start: StartMode = Field(
        "random", description="start cell of every episode: 'random' (uniform over all "
        "cells, drawn per episode), 'centre' or 'corner' (top left)")


class KeyDoorParams(NamedTuple):
    key: jax.Array  # int32 [] (batched: (n,)) key cell
    door: jax.Array  # int32 [] (batched: (n,)) door cell


class KeyDoorState(NamedTuple):
    cell: jax.Array  # int32 [] agent cell
    has_key: jax.Array  # bool []
    time: jax.Array  # int32 [] steps taken in this episode


class KeyDoor:
    """A Dark Key-to-Door task family (see module docstring)."""

    num_actions = NUM_GRID_ACTIONS
    stay_action = 0  # actions: stay, up, right, down, left

    def __init__(self, cfg: KeyDoorConfig, name: str = "keydoor"):
        self.cfg = cfg
        self.name = name
        self.size = cfg.size
        self.num_cells = cfg.size * cfg.size
        self.num_obs = 2 * self.num_cells
        self.num_tasks = self.num_cells * self.num_cells
        self.episode_len = cfg.episode_len

    def task_params(self, task_ids: jax.Array) -> KeyDoorParams:
        """Task ids (n,) -> params with key (n,), door (n,): id = key * N + door."""
        ids = check_task_ids(task_ids, self.num_tasks, self.name)
        return KeyDoorParams(key=ids // self.num_cells, door=ids % self.num_cells)

    def _obs(self, state: KeyDoorState) -> jax.Array:
        return (state.cell + self.num_cells * state.has_key).astype(jnp.int32)

    def reset(self, key: jax.Array, params: KeyDoorParams) -> tuple[jax.Array, KeyDoorState]:
        state = KeyDoorState(start_cell(self.cfg.start, self.size, key), jnp.bool_(False),
                             jnp.int32(0))
        return self._obs(state), state

    def _outcome(self, state: KeyDoorState, action: jax.Array, params: KeyDoorParams):
        """(next state, reward float32 [], terminated bool []) -- deterministic."""
        cell = grid_move(state.cell, action, self.size)
        pick = (cell == params.key) & ~state.has_key
        has_key = state.has_key | pick
        opened = (cell == params.door) & has_key
        reward = pick.astype(jnp.float32) + opened.astype(jnp.float32)
        return KeyDoorState(cell, has_key, state.time + 1), reward, opened

    def step(self, key: jax.Array, state: KeyDoorState, action: jax.Array,
             params: KeyDoorParams) -> StepOut:
        new, reward, terminated = self._outcome(state, action, params)
        truncated = (new.time >= self.episode_len) & ~terminated
        return StepOut(self._obs(new), new, reward, terminated, truncated)

    def expected_reward(self, state: KeyDoorState, action: jax.Array,
                        params: KeyDoorParams) -> jax.Array:
        return self._outcome(state, action, params)[1]

    def optimal_action(self, obs: jax.Array, params: KeyDoorParams) -> jax.Array:
        """Towards the key without it (stay on it to pick it up), towards the door with it."""
        cell = obs % self.num_cells
        target = jnp.where(obs >= self.num_cells, params.door, params.key)
        return toward(cell, target, self.size)

    def optimal_return(self, params: KeyDoorParams) -> jax.Array:
        """Exact best expected episode return (float32 []), by formula (module docstring)."""
        starts = start_cells(self.cfg.start, self.size)
        k1 = jnp.maximum(1, manhattan(starts, params.key, self.size))
        k2 = k1 + manhattan(params.key, params.door, self.size)
        h = self.episode_len
        ret = (k1 <= h).astype(jnp.float32) + (k2 <= h).astype(jnp.float32)
        return jnp.mean(ret)


@ENVS.register("keydoor", config=KeyDoorConfig)
def make_keydoor(**kwargs: Any) -> KeyDoor:
    """Dark Key-to-Door; ``kwargs`` override :class:`KeyDoorConfig` (bad ones: ConfigError)."""
    return KeyDoor(parse_config(KeyDoorConfig, kwargs, source="env 'keydoor'"))
