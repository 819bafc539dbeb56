"""Baselines: learners that every student is compared with on the same tasks and seeds.

* ``random``: uniform over the actions (the ``random`` teacher).
* ``noop``: always the stay action; only families that have one (the dark rooms).
* ``oracle``: the optimal action for the observation (the ``oracle`` teacher).
* a teacher run fresh by name: :func:`make_teacher` (continued as long as the
  evaluation runs, so past any cut of its histories).

All are JAX :class:`~outlearn.teachers.base.Learner` objects, so they run fused
through :func:`outlearn.rollout.rollout_scan`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from outlearn.core import Learner, Transition
from outlearn.envs.base import TaskFamily
from outlearn.errors import ConfigError
from outlearn.registry import TEACHERS

BASELINES = ("random", "noop", "oracle")


def stay_action(family: TaskFamily) -> int | None:
    """The family's "do nothing" action, or None when it has none.

    A family declares it with a ``stay_action`` attribute (the gridworlds do).
    """
    a = getattr(family, "stay_action", None)
    return None if a is None else int(a)


class NoOpLearner:
    """Always the stay action; never learns. State: a dummy float32 []."""

    name = "noop"

    def __init__(self, num_actions: int, action: int):
        self.num_actions = num_actions
        self.action = action

    def init(self, key: jax.Array, params: Any) -> jax.Array:
        return jnp.zeros((), jnp.float32)

    def policy(self, lstate: jax.Array, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32 one-hot on the stay action."""
        return jax.nn.one_hot(self.action, self.num_actions, dtype=jnp.float32)

    def update(self, key: jax.Array, lstate: jax.Array, tr: Transition, t: jax.Array) -> jax.Array:
        return lstate


def _register_teachers() -> None:
    """Import the built-in teachers so that they are in :data:`TEACHERS`."""
    import outlearn.teachers  # noqa: F401


def make_baseline(name: str, family: TaskFamily) -> Learner:
    """The baseline ``name`` (one of :data:`BASELINES`) for ``family``."""
    if name == "noop":
        a = stay_action(family)
        if a is None:
            raise ConfigError(
                f"baseline 'noop' needs a stay action, and {family.name!r} has none "
                "(only the dark-room families do). Remove the noop learner from this "
                "evaluation, or use baseline 'random'."
            )
        return NoOpLearner(family.num_actions, a)
    if name in ("random", "oracle"):
        _register_teachers()
        return TEACHERS.get(name)(family)
    raise ConfigError(
        f"unknown baseline {name!r}; known baselines: {', '.join(BASELINES)}. "
        "Fix the name, or run a teacher with kind = \"teacher\"."
    )


def make_teacher(name: str, family: TaskFamily, **kwargs: Any) -> Learner:
    """A teacher by registered name with its settings, run fresh (a real learner)."""
    _register_teachers()
    return TEACHERS.get(name)(family, **kwargs)


__all__ = ["BASELINES", "NoOpLearner", "make_baseline", "make_teacher", "stay_action"]
