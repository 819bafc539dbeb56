"""One token per step: the shared embedding of (obs, previous action, previous reward).

An observation is an index in ``[0, num_obs)`` (a grid cell), embedded from a table, or a
frame of shape ``obs_shape`` (MinAtar's 10x10x4 bool frames, env family "gymnax"),
embedded by a :class:`FrameEncoder`; both go through the same :func:`step_inputs` and
:class:`StepEmbedding`, so every family has one token and one data path.

AD keeps the stream of a learner continuous across episode boundaries: the token of
step ``s`` holds the observation ``obs[s]``, the action and reward of step ``s - 1``
(even when ``s`` starts a new episode) and a flag "step ``s`` starts a new episode".
Only the very first step of a history has no previous step: its previous action is the
extra index ``num_actions`` ("none") and its previous reward 0.

:func:`step_inputs` builds these inputs from history arrays (numpy, torch-free);
:class:`StepEmbedding` turns them into vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from outlearn.config import Config
from outlearn.errors import ConfigError

ObsEncoder = Literal["linear", "conv"]
CONV_CHANNELS = 16


def describe_obs(obs_shape: Sequence[int]) -> str:
    """"observation indices" or "frames of shape (10, 10, 4)", for messages."""
    return f"frames of shape {tuple(obs_shape)}" if obs_shape else "observation indices"


class ObsInput(Config):
    """How a sequence student reads observations: indices, or frames of ``obs_shape``."""

    obs_shape: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="shape of one frame observation, e.g. [10, 10, 4]; set from the "
        "training history (unset: observations are indices, embedded from a table)")
    obs_encoder: ObsEncoder = Field(
        "linear", description="frames only: 'linear' (a linear map of the flattened frame) "
        "or 'conv' (3x3 convolution to 16 channels, ReLU, then linear; frames as (height, "
        "width, channels)); measured in the README")

    @model_validator(mode="after")
    def _conv_needs_images(self) -> ObsInput:
        if self.obs_shape and self.obs_encoder == "conv" and len(self.obs_shape) != 3:
            raise ValueError(
                f"obs_encoder='conv' reads frames of (height, width, channels) but the "
                f"observations have shape {self.obs_shape}: set obs_encoder = 'linear'")
        return self


def step_inputs(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    done: np.ndarray,
    has_prev: bool,
) -> dict[str, np.ndarray]:
    """Token inputs of a window of steps.

    Args:
        actions, rewards, done: arrays (..., T + 1) when ``has_prev`` (element 0 is
            the step before the window) or (..., T) when the window starts the history.
            ``done`` = terminated | truncated. ``obs``: the same, or frames
            (..., T [+ 1], *obs_shape).
        has_prev: whether element 0 is the step before the window.

    Returns:
        dict of arrays shaped (..., T): ``obs`` int64 (frames: (..., T, *obs_shape) in
        their own dtype), ``prev_action`` int64 (``-1`` at the history's first step; the
        embedding maps it to "none"), ``prev_reward`` float32, ``new_episode`` bool.
    """
    lead = actions.shape[:-1]
    if has_prev:
        cur = slice(1, None)
        prev_a = actions[..., :-1].astype(np.int64)
        prev_r = rewards[..., :-1].astype(np.float32)
        new_ep = done[..., :-1].astype(bool)
    else:
        cur = slice(0, None)
        pad_i = np.full(lead + (1,), -1, dtype=np.int64)
        prev_a = np.concatenate([pad_i, actions[..., :-1].astype(np.int64)], axis=-1)
        prev_r = np.concatenate(
            [np.zeros(lead + (1,), np.float32), rewards[..., :-1].astype(np.float32)], axis=-1
        )
        new_ep = np.concatenate([np.ones(lead + (1,), bool), done[..., :-1].astype(bool)], -1)
    now = obs[(slice(None),) * len(lead) + (cur,)]
    return {
        "obs": now if obs.ndim > actions.ndim else now.astype(np.int64),
        "prev_action": prev_a,
        "prev_reward": prev_r,
        "new_episode": new_ep,
    }


class ObsEmbedding(nn.Module):
    """An observation index (B, T) -> (B, T, d_model).

    Without ``factors``: one learned vector per index. With ``factors`` (f_1, ..., f_k),
    prod = ``num_obs``: the index is read as mixed-radix digits (the last digit varies
    fastest, e.g. a grid cell ``row * size + col`` with factors (size, size)) and the
    vectors of the digits are summed, so a cell's vector is built from its coordinates.
    ``extra`` more indices (e.g. a "none" token at ``num_obs``) get vectors of their own.
    """

    def __init__(self, num_obs: int, d_model: int, factors: Sequence[int] | None = None,
                 extra: int = 0):
        super().__init__()
        self.num_obs = num_obs
        self.factors = tuple(int(f) for f in factors or ())
        if self.factors and math.prod(self.factors) != num_obs:
            raise ConfigError(
                f"obs_factors={list(self.factors)} multiply to {math.prod(self.factors)} but "
                f"the env has {num_obs} observations: give factors whose product is "
                f"{num_obs} (e.g. [size, size] for a grid) or remove obs_factors")
        if self.factors:
            self.digits = nn.ModuleList(nn.Embedding(f, d_model) for f in self.factors)
            self.extra = nn.Embedding(extra, d_model) if extra else None
        else:
            self.table = nn.Embedding(num_obs + extra, d_model)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.factors:
            return self.table(obs)
        known = obs < self.num_obs
        rest = torch.where(known, obs, 0)
        out: torch.Tensor | None = None
        for f, emb in zip(reversed(self.factors), reversed(self.digits), strict=True):
            digit = emb(rest % f)
            out = digit if out is None else out + digit
            rest = rest // f
        assert out is not None  # factors is not empty here
        out = out * known.unsqueeze(-1)
        if self.extra is not None:
            idx = torch.clamp(obs - self.num_obs, min=0)
            out = out + self.extra(idx) * (~known).unsqueeze(-1)
        return out


class FrameEncoder(nn.Module):
    """Frames (..., *obs_shape) of any dtype (bool, float) -> (..., d_model).

    ``"linear"``: one linear map of the flattened frame; ``"conv"``: a 3x3 convolution
    (padding 1) to :data:`CONV_CHANNELS` channels, ReLU, then a linear map of the result;
    its frames are (height, width, channels), as MinAtar's.
    """

    def __init__(self, obs_shape: Sequence[int], d_model: int, kind: ObsEncoder):
        super().__init__()
        self.obs_shape = tuple(int(n) for n in obs_shape)
        if kind == "conv":
            h, w, c = self.obs_shape
            self.conv: nn.Module | None = nn.Sequential(
                nn.Conv2d(c, CONV_CHANNELS, 3, padding=1), nn.ReLU(), nn.Flatten())
            self.proj = nn.Linear(CONV_CHANNELS * h * w, d_model)
        else:
            self.conv = None
            self.proj = nn.Linear(math.prod(self.obs_shape), d_model)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:obs.dim() - len(self.obs_shape)]
        x = obs.reshape(-1, *self.obs_shape).float()
        x = self.conv(x.permute(0, 3, 1, 2)) if self.conv is not None else x.flatten(1)
        return self.proj(x).reshape(*lead, -1)


class StepEmbedding(nn.Module):
    """embed(obs) + embed(prev action, "none" = index A) + embed(new episode) + W * prev reward.

    Inputs are tensors (B, T) (frames: ``obs`` (B, T, *obs_shape)); output (B, T, d_model).
    ``obs_factors``: see :class:`ObsEmbedding`; ``obs_shape`` and ``obs_encoder``: frames,
    see :class:`FrameEncoder`.
    """

    def __init__(self, num_obs: int, num_actions: int, d_model: int,
                 obs_factors: Sequence[int] | None = None,
                 obs_shape: Sequence[int] | None = None, obs_encoder: ObsEncoder = "linear"):
        super().__init__()
        self.num_obs = num_obs
        self.num_actions = num_actions
        # a plain table without factors (the parameter names of earlier checkpoints)
        self.obs: nn.Module
        if obs_shape:
            self.obs = FrameEncoder(obs_shape, d_model, obs_encoder)
        elif obs_factors:
            self.obs = ObsEmbedding(num_obs, d_model, obs_factors)
        else:
            self.obs = nn.Embedding(num_obs, d_model)
        self.prev_action = nn.Embedding(num_actions + 1, d_model)
        self.new_episode = nn.Embedding(2, d_model)
        self.prev_reward = nn.Linear(1, d_model)

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        new_episode: torch.Tensor,
    ) -> torch.Tensor:
        pa = torch.where(prev_action < 0, self.num_actions, prev_action)
        return (
            self.obs(obs)
            + self.prev_action(pa)
            + self.new_episode(new_episode.long())
            + self.prev_reward(prev_reward.unsqueeze(-1).float())
        )
