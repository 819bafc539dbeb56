"""The learner protocol (JAX side): anything that acts, observes and changes its state.

A teacher's state holds its tables or weights, so it learns as it acts. All functions
act on ONE learner paired with ONE task; the rollout loop ``jax.vmap``s them.

``t`` is the global step index, shared by every learner of a batch (not batched
under vmap), so a learner can update on a schedule (PPO every n steps) with a real
``lax.cond`` instead of a select that runs both branches.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax

LState = Any  # a pytree: the learner's tables / weights / buffers


class Transition(NamedTuple):
    """One step of experience for one learner (scalars; batched under vmap)."""

    obs: jax.Array  # int32 [] observation the action was taken in
    action: jax.Array  # int32 []
    reward: jax.Array  # float32 []
    next_obs: jax.Array  # int32 [] observation after the step (before any reset)
    terminated: jax.Array  # bool []
    truncated: jax.Array  # bool []


@runtime_checkable
class Learner(Protocol):
    name: str
    num_actions: int

    def init(self, key: jax.Array, params: Any) -> LState:
        """Fresh learner state for one task (``params`` may be ignored; an oracle uses it)."""

    def policy(self, lstate: LState, obs: jax.Array, t: jax.Array) -> jax.Array:
        """Action probabilities, float32 [num_actions], for ``obs`` at global step ``t``."""

    def update(self, key: jax.Array, lstate: LState, tr: Transition, t: jax.Array) -> LState:
        """New learner state after transition ``tr`` taken at global step ``t``."""
