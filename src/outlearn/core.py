"""The shared types and protocols: what every layer above the environments speaks.

* :class:`Transition`: one step of one learner (scalars, batched under ``vmap``).
* :class:`Trajectory`: the arrays of a batch of learners over a rollout (numpy, (B, S)),
  what histories store and evaluation scores.
* :class:`Learner`: a JAX learner (init/policy/update on ONE learner and ONE task), run
  fused inside ``lax.scan`` by :func:`outlearn.rollout.rollout_scan` (teachers, baselines).
* :class:`StepLearner`: a batched learner driven one step at a time from Python
  (``policy(obs, t)`` / ``observe(tr, keys, t)``) by :func:`outlearn.rollout.rollout_steps`
  (torch students; any JAX learner through :class:`outlearn.rollout.JaxLearnerAdapter`).

This module imports numpy and the standard library only, so storage (histories) and
students depend on it without pulling in environments, teachers or the rollout loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import jax

LState = Any  # a pytree: the learner's tables / weights / buffers


class Transition(NamedTuple):
    """One step of experience for one learner (scalars; batched under vmap).

    On the step path the fields are (B,) arrays, one entry per learner of the batch."""

    obs: jax.Array  # int32 [] observation the action was taken in (a frame: obs_shape)
    action: jax.Array  # int32 []
    reward: jax.Array  # float32 []
    next_obs: jax.Array  # int32 [] observation after the step (before any reset)
    terminated: jax.Array  # bool []
    truncated: jax.Array  # bool []


class Trajectory(NamedTuple):
    """Arrays of a batch of learners, each (B, S) unless stated."""

    obs: np.ndarray  # int32, the observation each action was taken in ((B, S, *obs_shape) frames)
    actions: np.ndarray  # int32
    rewards: np.ndarray  # float32
    terminated: np.ndarray  # bool
    truncated: np.ndarray  # bool
    probs: np.ndarray | None  # float32 (B, S, A): the action probabilities (None: not recorded)
    optimal_actions: np.ndarray  # int32: an optimal action in that state (oracle label)
    expected_rewards: np.ndarray  # float32: expected reward of the action taken
    #: int32: the observation each step ended in, before an auto-reset (where an episode
    #: ended it is not the next step's ``obs``); None where not recorded
    next_obs: np.ndarray | None = None


@runtime_checkable
class Learner(Protocol):
    """The JAX learner: anything that acts, observes and changes its state.

    A teacher's state holds its tables or weights, so it learns as it acts. All functions
    act on ONE learner paired with ONE task; the rollout loop ``jax.vmap`` s them.

    ``t`` is the global step index, shared by every learner of a batch (not batched
    under vmap), so a learner can update on a schedule (PPO every n steps) with a real
    ``lax.cond`` instead of a select that runs both branches.
    """

    name: str
    num_actions: int

    def init(self, key: jax.Array, params: Any) -> LState:
        """Fresh learner state for one task (``params`` may be ignored; an oracle uses it)."""
        ...

    def policy(self, lstate: LState, obs: jax.Array, t: jax.Array) -> jax.Array:
        """Action probabilities, float32 [num_actions], for ``obs`` at global step ``t``."""
        ...

    def update(self, key: jax.Array, lstate: LState, tr: Transition, t: jax.Array) -> LState:
        """New learner state after transition ``tr`` taken at global step ``t``."""
        ...


@runtime_checkable
class StepLearner(Protocol):
    """A batch of B learners (one per environment) driven one step at a time.

    At step ``t`` the loop calls ``policy(obs, t)`` with the observations (B,) and samples
    an action per row of the returned probabilities (B, A) itself; then it calls
    ``observe(tr, keys, t)`` with the batched :class:`Transition` of that step and the
    learners' update keys (B,) (a learner without randomness ignores them). The learner
    keeps its own state (a context window, a JAX learner state) between calls.
    """

    def policy(self, obs: Any, t: int) -> Any:
        """Action probabilities (B, A), float32 (numpy or JAX), at step ``t``."""
        ...

    def observe(self, tr: Transition, keys: Any, t: int) -> None:
        """Take in the transition (B,) of step ``t``."""
        ...
