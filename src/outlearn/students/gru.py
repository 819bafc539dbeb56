"""A GRU baseline with AD's interface: same step tokens, logits at every step.

A recurrent model is causal by construction; with the default sizes it has about as many
parameters as the small AD transformer (compare with ``count_params``).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from outlearn.registry import STUDENTS
from outlearn.students.tokens import ObsInput, StepEmbedding


class GRUConfig(ObsInput):
    """Recurrent baseline size. ``context_len``: the window (steps) it is trained on."""

    d_model: int = Field(64, ge=2, description="size of each step's token embedding")
    hidden: int = Field(96, ge=1, description="hidden units of each GRU layer")
    n_layers: int = Field(2, ge=1, description="stacked GRU layers")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout on the embeddings, "
                           "between the GRU layers and on their output, during training")
    context_len: int = Field(100, ge=1, description="steps of the training windows (set from "
                             "the training data's context_len); acting, it reads the last "
                             "context_len steps from an empty state at every step")


@STUDENTS.register("gru")
class GRUStudent(nn.Module):
    """``forward(obs, prev_action, prev_reward, new_episode)`` (B, T) -> logits (B, T, A);
    frames: ``obs`` (B, T, *obs_shape)."""

    kind = "gru"
    inputs = "sequence"
    config_class = GRUConfig

    def __init__(self, cfg: GRUConfig, num_obs: int, num_actions: int):
        super().__init__()
        self.cfg, self.num_obs, self.num_actions = cfg, num_obs, num_actions
        self.context_len = cfg.context_len
        self.obs_shape = tuple(cfg.obs_shape or ())
        self.embed = StepEmbedding(num_obs, num_actions, cfg.d_model,
                                   obs_shape=cfg.obs_shape, obs_encoder=cfg.obs_encoder)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = nn.GRU(
            cfg.d_model, cfg.hidden, cfg.n_layers, batch_first=True,
            dropout=cfg.dropout if cfg.n_layers > 1 else 0.0,
        )
        self.ln_f = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, num_actions)

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        new_episode: torch.Tensor,
    ) -> torch.Tensor:
        x = self.drop(self.embed(obs, prev_action, prev_reward, new_episode))
        y, _ = self.rnn(x)
        return self.head(self.ln_f(self.drop(y)))


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
