"""Any task family with its actions relabelled per task (claim 11: action semantics).

In task ``i`` of ``PermutedActions(base)``, the agent's action ``a`` does what the base
family's action ``perm_i[a]`` does. ``perm_i`` is a derangement (no action keeps its
meaning) drawn from the task id and ``seed``, so it is the same on every machine. The
tasks are otherwise the base family's (same ids, same goals, same optimal returns): a
learner that learns from scratch is no worse off, while a student that learned what the
actions mean from its training histories is.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import Field

from outlearn.config import Config, Seed, parse_config
from outlearn.envs.base import (
    StepOut,
    TaskFamily,
    has_discrete_obs,
    has_oracle,
    obs_dtype,
    obs_shape,
)
from outlearn.errors import ConfigError
from outlearn.registry import ENVS
from outlearn.rng import id_keys


class PermutedActionsConfig(Config):
    """The wrapper's own settings; every other key of ``env.kwargs`` is a setting of the
    base family (e.g. ``size`` for a dark room)."""

    base: str = Field("darkroom", description="the registered family whose actions are "
                      "relabelled (any but permuted-actions itself)")
    seed: Seed = Field(0, description="seed of the per-task derangements (with the task id)")


class PermutedParams(NamedTuple):
    base: Any  # the base family's params
    perm: jax.Array  # int32 (num_actions,): agent action -> base action


def derangement(key: jax.Array, n: int) -> jax.Array:
    """A uniformly random permutation of ``range(n)`` with no fixed point (n >= 2), by
    rejection: redraw until no element stays in place."""
    def draw(carry):
        k, _ = carry
        k, sub = jax.random.split(k)
        return k, jax.random.permutation(sub, n).astype(jnp.int32)

    def has_fixed_point(carry):
        return jnp.any(carry[1] == jnp.arange(n, dtype=jnp.int32))

    return jax.lax.while_loop(has_fixed_point, draw, draw((key, jnp.arange(n, dtype=jnp.int32))))[1]


class PermutedActions:
    """``base`` with each task's actions relabelled by a derangement (module docstring).
    It has no ``stay_action``: which action stays differs from task to task."""

    def __init__(self, base: TaskFamily, seed: int = 0):
        if base.num_actions < 2:
            raise ConfigError(f"{base.name} has {base.num_actions} action(s): there is nothing "
                              "to permute")
        self.base, self.seed = base, int(seed)
        self.name = f"{base.name}+permuted"
        self.num_actions, self.num_obs = base.num_actions, base.num_obs
        self.episode_len, self.num_tasks = base.episode_len, base.num_tasks
        self.has_oracle = has_oracle(base)
        if not has_discrete_obs(base):  # frames: the wrapper shows the base's observations
            self.obs_shape, self.obs_dtype = obs_shape(base), obs_dtype(base)

    def task_params(self, task_ids: jax.Array) -> PermutedParams:
        base = self.base.task_params(task_ids)
        keys = id_keys(task_ids, salt=0x5EED + self.seed)
        perm = jax.vmap(lambda k: derangement(k, self.num_actions))(keys)
        return PermutedParams(base, perm)

    def reset(self, key: jax.Array, params: PermutedParams) -> tuple[jax.Array, Any]:
        return self.base.reset(key, params.base)

    def step(self, key: jax.Array, state: Any, action: jax.Array,
             params: PermutedParams) -> StepOut:
        return self.base.step(key, state, params.perm[action], params.base)

    def expected_reward(self, state: Any, action: jax.Array, params: PermutedParams) -> jax.Array:
        return self.base.expected_reward(state, params.perm[action], params.base)

    def optimal_action(self, obs: jax.Array, params: PermutedParams) -> jax.Array:
        """The agent action that the base family's optimal action is relabelled to."""
        best = self.base.optimal_action(obs, params.base)
        if not self.has_oracle:  # -1 (no oracle) stays -1
            return best
        return jnp.argmax(params.perm == best).astype(jnp.int32)

    def optimal_return(self, params: PermutedParams) -> jax.Array:
        return self.base.optimal_return(params.base)


@ENVS.register("permuted-actions", config=PermutedActionsConfig)
def make_permuted_actions(**kwargs: Any) -> PermutedActions:
    """Any family (``base``, with its own kwargs) with its actions permuted per task."""
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in PermutedActionsConfig.model_fields}
    cfg = parse_config(PermutedActionsConfig, own, "env 'permuted-actions'")
    if cfg.base == "permuted-actions":
        raise ConfigError("permuted-actions cannot wrap itself: name a base family")
    return PermutedActions(ENVS.get(cfg.base)(**kwargs), seed=cfg.seed)


__all__ = ["PermutedActions", "PermutedActionsConfig", "PermutedParams", "derangement",
           "make_permuted_actions"]
