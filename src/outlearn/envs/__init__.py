"""Task families (JAX): bandits, Dark Room and its presets, Dark Key-to-Door, and any
of them with its actions permuted per task.

Importing this package registers every family in :data:`outlearn.registry.ENVS`;
:func:`make_env` builds one by name, :func:`make_family` from a config's env section.
"""

from __future__ import annotations

from typing import Any, Protocol

from outlearn.envs.bandits import (
    BanditConfig,
    BanditParams,
    BernoulliBandit,
    GaussianBandit,
    GaussianBanditConfig,
)
from outlearn.envs.base import StepOut, TaskFamily, split_tasks
from outlearn.envs.darkroom import DarkRoom, DarkRoomConfig, DarkRoomParams, DarkRoomState
from outlearn.envs.keydoor import KeyDoor, KeyDoorConfig, KeyDoorParams, KeyDoorState
from outlearn.envs.permuted import PermutedActions, PermutedParams
from outlearn.registry import ENVS
from outlearn.rng import id_key


def make_env(name: str, **kwargs: Any) -> TaskFamily:
    """The task family registered as ``name``, configured by ``kwargs``.

    Unknown names and bad settings raise :class:`outlearn.errors.ConfigError`."""
    return ENVS.get(name)(**kwargs)


class EnvNamed(Protocol):
    """A config section that names a family: ``name`` and its settings ``kwargs``."""

    @property
    def name(self) -> str: ...

    @property
    def kwargs(self) -> dict[str, Any]: ...


def make_family(env: EnvNamed) -> TaskFamily:
    """The task family a config's env section names (``make_env(env.name, **env.kwargs)``)."""
    return make_env(env.name, **env.kwargs)


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
    "make_family",
    "split_tasks",
]
