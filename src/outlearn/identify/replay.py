"""A fitted member on held-out histories: its policy along them, and its continuation.

* :func:`heldout_kl`: the per-action KL from the teacher's logged policy (the history's
  ``probs``) to the member's, at each held-out step, the member updated on the history's
  own transitions: how well the member predicts what the teacher does next;
* :func:`continue_members`: the member built as a real teacher
  (:func:`outlearn.teachers.make_teacher`), its state replayed along each history to the
  cut with the teacher's own ``update``, then run on the same task through the ordinary
  rollout loop (:func:`outlearn.rollout.rollout_scan` with ``start``) from a fresh
  episode: the member's continuation, to set beside the teacher's recorded one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from outlearn.core import Learner, Transition
from outlearn.identify.families import FLOOR, LearnerFamily, Steps
from outlearn.rng import step_keys
from outlearn.rollout import init_learners, rollout_scan


def kl_per_step(teacher_probs: np.ndarray, member_probs: np.ndarray) -> np.ndarray:
    """KL(teacher || member) at each step, (..., A) -> (...): sum p log(p / q), 0 log 0 = 0,
    q floored at :data:`~outlearn.identify.families.FLOOR` (as in the likelihood)."""
    p = np.asarray(teacher_probs, np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    q = np.maximum(np.asarray(member_probs, np.float64), FLOOR)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return np.maximum(terms.sum(axis=-1), 0.0)


def heldout_kl(fam: LearnerFamily, values: dict[str, float], variant: dict[str, Any],
               steps: Steps, teacher_probs: np.ndarray, start: int, num_obs: int,
               num_actions: int) -> np.ndarray:
    """(L,) each learner's mean KL(teacher || member) over its steps ``[start, S)``."""
    q = fam.action_probs(values, variant, steps, num_obs, num_actions)
    return kl_per_step(teacher_probs[:, start:], q[:, start:]).mean(axis=1)


def replay_states(learner: Learner, keys: jax.Array, params: Any, steps: Steps,
                  upto: int) -> Any:
    """Each learner's state after its history's first ``upto`` transitions (its own
    ``update`` on the recorded steps; update keys as the rollout loop draws them)."""
    return replay_with_policy(learner, keys, params, steps, upto)[0]


def replay_with_policy(learner: Learner, keys: jax.Array, params: Any, steps: Steps,
                       upto: int) -> tuple[Any, np.ndarray]:
    """:func:`replay_states`, and the learner's action probabilities at every replayed step,
    (L, upto, A), before that step's update: with the collection's learner keys
    (:func:`outlearn.rng.learner_keys`) they equal the history's recorded ``probs`` exactly
    when the replay rebuilds the learner that wrote the history."""
    upd = jax.vmap(learner.update, in_axes=(0, 0, 0, None))
    pol = jax.vmap(learner.policy, in_axes=(0, 0, None))

    def body(s: Any, x: Any) -> tuple[Any, jax.Array]:
        o, a, r, n, te, d, t = x
        _, _, k = step_keys(keys, t)
        return upd(k, s, Transition(o, a, r, n, te, d & ~te), t), pol(s, o, t)

    xs = tuple(jnp.asarray(np.asarray(v)[:, :upto].T) for v in steps)
    t = jnp.arange(upto, dtype=jnp.int32)
    s, probs = jax.jit(lambda s0, xs, t: jax.lax.scan(body, s0, (*xs, t)))(
        init_learners(learner, keys, params), xs, t)
    return s, np.swapaxes(np.asarray(probs), 0, 1)


def continue_members(env_family: Any, learner: Learner, keys: jax.Array, params: Any,
                     steps: Steps, upto: int, num_episodes: int) -> np.ndarray:
    """(L, num_episodes) returns of ``learner`` carried on from each history's state at
    step ``upto`` (episodes must end by ``env_family.episode_len``)."""
    from outlearn.evaluation.metrics import episode_returns_from_traj

    states = replay_states(learner, keys, params, steps, upto)
    traj, _ = rollout_scan(env_family, learner, keys, params,
                           num_episodes * env_family.episode_len, start=(states, upto))
    return episode_returns_from_traj(traj.rewards, traj.terminated, traj.truncated,
                                     num_episodes)
