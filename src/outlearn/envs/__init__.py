"""Task families (JAX): bandits, Dark Room and its presets, Dark Key-to-Door, and any
of them with its actions permuted per task.

Importing this package registers every family in :data:`outlearn.registry.ENVS`;
:func:`make_env` builds one by name.
"""

from __future__ import annotations

from typing import Any

from outlearn.envs.bandits import (
    BanditConfig,
    BanditParams,
    BernoulliBandit,
    GaussianBandit,
    GaussianBanditConfig,
)
from outlearn.envs.base import StepOut, TaskFamily, id_key, split_tasks
from outlearn.envs.darkroom import DarkRoom, DarkRoomConfig, DarkRoomParams, DarkRoomState
from outlearn.envs.keydoor import KeyDoor, KeyDoorConfig, KeyDoorParams, KeyDoorState
from outlearn.envs.permuted import PermutedActions, PermutedParams
from outlearn.registry import ENVS


def make_env(name: str, **kwargs: Any) -> TaskFamily:
    """The task family registered as ``name``, configured by ``kwargs``.

    Unknown names and bad settings raise :class:`outlearn.errors.ConfigError`."""
    return ENVS.get(name)(**kwargs)


__all__ = [
    "BanditConfig",
    "BanditParams",
    "BernoulliBandit",
    "DarkRoom",
    "DarkRoomConfig",
    "DarkRoomParams",
    "DarkRoomState",
    "GaussianBandit",
    "GaussianBanditConfig",
    "KeyDoor",
    "KeyDoorConfig",
    "KeyDoorParams",
    "KeyDoorState",
    "PermutedActions",
    "PermutedParams",
    "StepOut",
    "TaskFamily",
    "id_key",
    "make_env",
    "split_tasks",
]
