"""Task families (JAX): bandits, Dark Room and its presets, Dark Key-to-Door, any of
them with its actions permuted per task, and any gymnax environment with discrete
actions ("gymnax", frames as observations).

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
from outlearn.envs.base import (
    StepOut,
    TaskFamily,
    has_discrete_obs,
    has_oracle,
    obs_dtype,
    obs_shape,
    require_discrete_obs,
    require_oracle,
    split_tasks,
)
from outlearn.envs.darkroom import DarkRoom, DarkRoomConfig, DarkRoomParams, DarkRoomState
from outlearn.envs.gymnax_env import GymnaxConfig, GymnaxFamily
from outlearn.envs.keydoor import KeyDoor, KeyDoorConfig, KeyDoorParams, KeyDoorState
from outlearn.envs.permuted import PermutedActions, PermutedParams
from outlearn.registry import ENVS
from outlearn.rng import id_key


def make_env(name: str, /, **kwargs: Any) -> TaskFamily:
    """The task family registered as ``name``, configured by ``kwargs``.

    Unknown names and bad settings raise :class:`outlearn.errors.ConfigError`. ``name`` is
    positional-only, so a family may have a setting called ``name`` (gymnax's env id)."""
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
    "GymnaxConfig",
    "GymnaxFamily",
    "KeyDoor",
    "KeyDoorConfig",
    "KeyDoorParams",
    "KeyDoorState",
    "PermutedActions",
    "PermutedParams",
    "StepOut",
    "TaskFamily",
    "has_discrete_obs",
    "has_oracle",
    "id_key",
    "make_env",
    "make_family",
    "obs_dtype",
    "obs_shape",
    "require_discrete_obs",
    "require_oracle",
    "split_tasks",
]
