"""One token per step: the shared embedding of (obs, previous action, previous reward).

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

import numpy as np
import torch
from torch import nn

from outlearn.errors import ConfigError


def step_inputs(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    done: np.ndarray,
    has_prev: bool,
) -> dict[str, np.ndarray]:
    """Token inputs of a window of steps.

    Args:
        obs, actions, rewards, done: arrays (..., T + 1) when ``has_prev`` (element 0 is
            the step before the window) or (..., T) when the window starts the history.
            ``done`` = terminated | truncated.
        has_prev: whether element 0 is the step before the window.

    Returns:
        dict of arrays shaped (..., T): ``obs`` int64, ``prev_action`` int64 (``-1`` at
        the history's first step; the embedding maps it to "none"), ``prev_reward``
        float32, ``new_episode`` bool.
    """
    if has_prev:
        cur = slice(1, None)
        prev_a = actions[..., :-1].astype(np.int64)
        prev_r = rewards[..., :-1].astype(np.float32)
        new_ep = done[..., :-1].astype(bool)
    else:
        cur = slice(0, None)
        lead = obs.shape[:-1]
        pad_i = np.full(lead + (1,), -1, dtype=np.int64)
        prev_a = np.concatenate([pad_i, actions[..., :-1].astype(np.int64)], axis=-1)
        prev_r = np.concatenate(
            [np.zeros(lead + (1,), np.float32), rewards[..., :-1].astype(np.float32)], axis=-1
        )
        new_ep = np.concatenate([np.ones(lead + (1,), bool), done[..., :-1].astype(bool)], -1)
    return {
        "obs": obs[..., cur].astype(np.int64),
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
        out = 0
        for f, emb in zip(reversed(self.factors), reversed(self.digits), strict=True):
            out = out + emb(rest % f)
            rest = rest // f
        out = out * known.unsqueeze(-1)
        if self.extra is not None:
            idx = torch.clamp(obs - self.num_obs, min=0)
            out = out + self.extra(idx) * (~known).unsqueeze(-1)
        return out


class StepEmbedding(nn.Module):
    """embed(obs) + embed(prev action, "none" = index A) + embed(new episode) + W * prev reward.

    Inputs are tensors (B, T); output (B, T, d_model). ``obs_factors``: see
    :class:`ObsEmbedding`.
    """

    def __init__(self, num_obs: int, num_actions: int, d_model: int,
                 obs_factors: Sequence[int] | None = None):
        super().__init__()
        self.num_obs = num_obs
        self.num_actions = num_actions
        # a plain table without factors (the parameter names of earlier checkpoints)
        self.obs = (ObsEmbedding(num_obs, d_model, obs_factors) if obs_factors
                    else nn.Embedding(num_obs, d_model))
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
