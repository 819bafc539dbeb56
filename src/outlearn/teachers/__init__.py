"""Teacher learners (JAX): real learners whose state changes as they act.

Importing this package registers every teacher in :data:`outlearn.registry.TEACHERS`
("random", "oracle", "mixture", "ucb1", "thompson", "egreedy", "qlearning", "ppo", "noise",
"dqn").
Build one with :func:`make_teacher` and drive it with
:func:`outlearn.rollout.rollout_scan`.
"""

from __future__ import annotations

from typing import Any

from outlearn.core import Learner, LState, Transition
from outlearn.envs.base import TaskFamily
from outlearn.registry import TEACHERS
from outlearn.teachers.bandit import (
    UCB1,
    EGreedy,
    EGreedyConfig,
    Thompson,
    ThompsonConfig,
    UCB1Config,
)
from outlearn.teachers.dqn import DQN, DQNConfig
from outlearn.teachers.noise import NoiseConfig, NoiseCurriculum
from outlearn.teachers.ppo import PPO, PPOConfig
from outlearn.teachers.qlearning import EpsilonConfig, QLearning, QLearningConfig, epsilon_at
from outlearn.teachers.simple import MixtureLearner, OracleLearner, RandomLearner


def make_teacher(name: str, family: TaskFamily, **kwargs: Any) -> Learner:
    """The teacher registered as ``name`` for ``family``; kwargs are its config fields.
    Raises ConfigError for an unknown name or a bad setting."""
    return TEACHERS.get(name)(family, **kwargs)


__all__ = [
    "DQN",
    "DQNConfig",
    "EGreedy",
    "EGreedyConfig",
    "EpsilonConfig",
    "LState",
    "Learner",
    "NoiseConfig",
    "NoiseCurriculum",
    "OracleLearner",
    "PPO",
    "PPOConfig",
    "QLearning",
    "QLearningConfig",
    "MixtureLearner",
    "RandomLearner",
    "Thompson",
    "ThompsonConfig",
    "Transition",
    "UCB1",
    "UCB1Config",
    "epsilon_at",
    "make_teacher",
]
