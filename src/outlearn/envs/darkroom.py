"""Dark Room (AD, AD-epsilon, DPT): find an unseen goal cell in a square grid.

Cells are indexed ``row * size + col``; row 0 is the top. Actions: 0 stay, 1 up,
2 right, 3 down, 4 left; moves into a wall leave the agent where it is. The reward
is for the cell *reached* by the move:

* ``reward_mode="every_step"``: 1 on every step that ends on the goal (AD's Dark Room);
* ``reward_mode="once"``: 1 on the first step of the episode that ends on the goal.

With ``terminate_on_goal`` the episode terminates on the first step that ends on the
goal. Otherwise it is truncated after ``episode_len`` steps (``terminated`` and
``truncated`` are never both true). A task is a goal: ``task id = goal cell index``.

Optimal return, with ``d`` the Manhattan distance from the start to the goal and
``H = episode_len`` (reaching the goal takes ``d`` steps; a start on the goal pays on
the first step, by staying):

* every_step, no termination: ``clip(H - d + 1, 0, H)`` (AD: "20 - distance + 1,
  capped at 20");
* otherwise (one reward at most): ``1 if d <= H else 0``.

With ``start="random"`` (uniform over all cells) it is the exact mean over start cells.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field

from outlearn.config import Config, parse_config
from outlearn.envs.base import StepOut
from outlearn.errors import ConfigError
from outlearn.registry import ENVS

# (d_row, d_col) of actions 0 stay, 1 up, 2 right, 3 down, 4 left
MOVES = np.array([[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
NUM_GRID_ACTIONS = 5

StartMode = Literal["centre", "corner", "random"]


# ----------------------------------------------------------------------------- grid helpers


def grid_move(cell: jax.Array, action: jax.Array, size: int) -> jax.Array:
    """Cell (int32 []) reached from ``cell`` by ``action``; walls clip the move."""
    # the rows of MOVES as arithmetic: a table lookup would be a gather kernel per step
    d_row = (action == 3).astype(jnp.int32) - (action == 1)
    d_col = (action == 2).astype(jnp.int32) - (action == 4)
    row = jnp.clip(cell // size + d_row, 0, size - 1)
    col = jnp.clip(cell % size + d_col, 0, size - 1)
    return (row * size + col).astype(jnp.int32)


def manhattan(a: jax.Array, b: jax.Array, size: int) -> jax.Array:
    """Manhattan distance between cells ``a`` and ``b`` (int32, broadcasting)."""
    return (jnp.abs(a // size - b // size) + jnp.abs(a % size - b % size)).astype(jnp.int32)


def toward(cell: jax.Array, target: jax.Array, size: int) -> jax.Array:
    """An action (int32 []) that reduces the Manhattan distance to ``target``
    (vertical first); 0 (stay) when already there."""
    dr = target // size - cell // size
    dc = target % size - cell % size
    a = jnp.where(dr < 0, 1, jnp.where(dr > 0, 3, jnp.where(dc > 0, 2, jnp.where(dc < 0, 4, 0))))
    return a.astype(jnp.int32)


def start_cell(mode: str, size: int, key: jax.Array) -> jax.Array:
    """The start cell (int32 []): centre ``(size//2, size//2)``, corner ``0`` (top left),
    or uniform over all ``size*size`` cells."""
    if mode == "centre":
        return jnp.int32((size // 2) * size + size // 2)
    if mode == "corner":
        return jnp.int32(0)
    return jax.random.randint(key, (), 0, size * size, dtype=jnp.int32)


def start_cells(mode: str, size: int) -> jax.Array:
    """All equally likely start cells, int32 (m,): one cell, or every cell for random."""
    if mode == "random":
        return jnp.arange(size * size, dtype=jnp.int32)
    return start_cell(mode, size, jax.random.key(0))[None]


def check_task_ids(task_ids: Any, num_tasks: int, name: str) -> jax.Array:
    """``task_ids`` as int32 (n,); concrete ids outside ``[0, num_tasks)`` are refused."""
    if not isinstance(task_ids, jax.core.Tracer):
        ids = np.asarray(task_ids)
        if ids.ndim != 1:
            raise ConfigError(
                f"{name}: task_ids must be a 1-d array of ids, got shape {ids.shape}; "
                "pass e.g. np.arange(n) or the ids from split_tasks"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= num_tasks):
            raise ConfigError(
                f"{name}: task ids must lie in [0, {num_tasks}), got min {ids.min()} "
                f"max {ids.max()}; use ids from split_tasks(family, ...)"
            )
    return jnp.asarray(task_ids).astype(jnp.int32)


# ----------------------------------------------------------------------------- Dark Room


class DarkRoomConfig(Config):
    """Settings of a Dark Room family."""

    size: int = Field(9, ge=2, description="grid side; the room has size*size cells")
    episode_len: int = Field(20, ge=1, description="steps per episode (horizon)")
    start: StartMode = Field(
        "centre", description="start cell of every episode: 'centre' (row and column "
        "size // 2), 'corner' (top left) or 'random' (uniform over all cells, drawn per "
        "episode)")
    reward_mode: Literal["every_step", "once"] = Field(
        "every_step", description="'every_step': reward 1 on every step that ends on the goal "
        "(AD's Dark Room); 'once': 1 only the first time the goal is reached in an episode")
    terminate_on_goal: bool = Field(
        False, description="end the episode (terminated) on the first step that reaches the "
        "goal; otherwise it runs for episode_len steps")


class DarkRoomParams(NamedTuple):
    goal: jax.Array  # int32 [] (batched: (n,)) goal cell index


class DarkRoomState(NamedTuple):
    cell: jax.Array  # int32 [] agent cell
    time: jax.Array  # int32 [] steps taken in this episode
    paid: jax.Array  # bool [] the goal has been reached this episode


class DarkRoom:
    """A Dark Room task family (see module docstring). num_obs = num_tasks = size**2."""

    num_actions = NUM_GRID_ACTIONS
    stay_action = 0  # actions: stay, up, right, down, left

    def __init__(self, cfg: DarkRoomConfig, name: str = "darkroom"):
        self.cfg = cfg
        self.name = name
        self.size = cfg.size
        self.num_obs = cfg.size * cfg.size
        self.num_tasks = cfg.size * cfg.size
        self.episode_len = cfg.episode_len

    def task_params(self, task_ids: jax.Array) -> DarkRoomParams:
        """Task ids (n,) -> params with goal (n,) int32: the id is the goal cell."""
        return DarkRoomParams(goal=check_task_ids(task_ids, self.num_tasks, self.name))

    def reset(self, key: jax.Array, params: DarkRoomParams) -> tuple[jax.Array, DarkRoomState]:
        cell = start_cell(self.cfg.start, self.size, key)
        return cell, DarkRoomState(cell, jnp.int32(0), jnp.bool_(False))

    def _outcome(self, state: DarkRoomState, action: jax.Array, params: DarkRoomParams):
        """(next state, reward float32 [], terminated bool []) -- deterministic."""
        cell = grid_move(state.cell, action, self.size)
        on_goal = cell == params.goal
        if self.cfg.reward_mode == "every_step":
            reward = on_goal
        else:
            reward = on_goal & ~state.paid
        terminated = on_goal & self.cfg.terminate_on_goal
        new = DarkRoomState(cell, state.time + 1, state.paid | on_goal)
        return new, reward.astype(jnp.float32), terminated

    def step(self, key: jax.Array, state: DarkRoomState, action: jax.Array,
             params: DarkRoomParams) -> StepOut:
        new, reward, terminated = self._outcome(state, action, params)
        truncated = (new.time >= self.episode_len) & ~terminated
        return StepOut(new.cell, new, reward, terminated, truncated)

    def expected_reward(self, state: DarkRoomState, action: jax.Array,
                        params: DarkRoomParams) -> jax.Array:
        return self._outcome(state, action, params)[1]

    def optimal_action(self, obs: jax.Array, params: DarkRoomParams) -> jax.Array:
        """Move towards the goal; stay on it."""
        return toward(obs, params.goal, self.size)

    def optimal_return(self, params: DarkRoomParams) -> jax.Array:
        """Exact best expected episode return (float32 []), by formula (module docstring)."""
        d = manhattan(start_cells(self.cfg.start, self.size), params.goal, self.size)
        h = self.episode_len
        if self.cfg.reward_mode == "every_step" and not self.cfg.terminate_on_goal:
            ret = jnp.clip(h - d + 1, 0, h)
        else:
            ret = (d <= h).astype(jnp.int32)
        return jnp.mean(ret.astype(jnp.float32))


PRESETS: dict[str, dict[str, Any]] = {
    # AD's Dark Room: 9x9, centre start, 20 steps, reward on every step on the goal.
    "darkroom": {},
    # AD's Dark Room Hard: 17x17, reward once, terminates on the goal. The horizon is
    # our choice (50 steps, as AD's Key-to-Door): the farthest goal is 16 steps away.
    "darkroom-hard": {"size": 17, "episode_len": 50, "reward_mode": "once",
                      "terminate_on_goal": True},
    # DPT's Dark Room: 10x10, start at the top-left corner, horizon 100.
    "darkroom-dpt": {"size": 10, "episode_len": 100, "start": "corner"},
}


def make_preset(name: str, **kwargs: Any) -> DarkRoom:
    """A Dark Room preset with ``kwargs`` overriding its settings; bad ones raise ConfigError."""
    cfg = parse_config(DarkRoomConfig, {**PRESETS[name], **kwargs}, source=f"env {name!r}")
    return DarkRoom(cfg, name=name)


@ENVS.register("darkroom", config=DarkRoomConfig,
               defaults=PRESETS["darkroom"])
def make_darkroom(**kwargs: Any) -> DarkRoom:
    """Dark Room (AD): 9x9, 20 steps, centre start, reward 1 per step on the goal; 81 goals."""
    return make_preset("darkroom", **kwargs)


@ENVS.register("darkroom-hard", config=DarkRoomConfig,
               defaults=PRESETS["darkroom-hard"])
def make_darkroom_hard(**kwargs: Any) -> DarkRoom:
    """Dark Room Hard: 17x17, reward once, terminates on the goal, 50 steps."""
    return make_preset("darkroom-hard", **kwargs)


@ENVS.register("darkroom-dpt", config=DarkRoomConfig,
               defaults=PRESETS["darkroom-dpt"])
def make_darkroom_dpt(**kwargs: Any) -> DarkRoom:
    """Dark Room, DPT variant: 10x10, corner start, horizon 100."""
    return make_preset("darkroom-dpt", **kwargs)
