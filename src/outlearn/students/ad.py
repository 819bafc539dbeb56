"""Algorithm Distillation (Laskin et al. 2022): a causal pre-LN GPT over a learner's steps.

One token per step (see :mod:`outlearn.students.tokens`) plus a learned positional
embedding over the window; the model outputs logits over actions at every position, and
trains on all of them.

Two options help it learn in context on gridworlds at small scale (measured on a 5x5
Dark Room, held-out goals: see configs/demo.toml):

* ``obs_factors`` (e.g. ``[size, size]``): a cell is embedded from its coordinates
  (:class:`~outlearn.students.tokens.ObsEmbedding`), as AD's Dark Room observation is the
  agent's (x, y) position. With one free vector per cell, a goal never seen in training
  is a cell whose "goal" meaning the model never learned, and it does not generalise.
* ``prev_obs``: a token also holds the observation of the step before it (shifted within
  the window, "none" at its first position), so one attention layer can match the
  current cell with the transitions taken from it earlier in the context.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from outlearn.config import Config, parse_config
from outlearn.errors import ConfigError
from outlearn.registry import STUDENTS
from outlearn.students.tokens import ObsEmbedding, StepEmbedding


class TransformerSize(Config):
    """The size of a transformer student (shared by AD and DPT)."""

    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    d_model: int = Field(64, ge=2)
    d_ff: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    attn_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    context_len: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSize:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: "
                "pick n_heads that divides d_model"
            )
        return self


class ADConfig(TransformerSize):
    """AD's transformer. ``ADConfig.preset("paper")`` is AD's published model."""

    prev_obs: bool = Field(False, description="add the previous step's observation to a token")
    obs_factors: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="embed observations by mixed-radix digits, e.g. [size, size]")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ADConfig:
        """``"paper"`` (4 layers, 4 heads, d 64, ff 2048, dropout 0.1, attn 0.5) or
        ``"small"`` (the CPU default: 2 layers, 2 heads, d 64, ff 256)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown AD preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return parse_config(cls, {**PRESETS[name], **overrides}, f"preset {name!r}")


PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(n_layers=4, n_heads=4, d_model=64, d_ff=2048, dropout=0.1, attn_dropout=0.5),
    "small": dict(n_layers=2, n_heads=2, d_model=64, d_ff=256, dropout=0.1, attn_dropout=0.1),
}


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + mlp(LN(x)). x: (B, T, d)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attn_dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.attn_dropout = attn_dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        shape = (b, t, self.n_heads, d // self.n_heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.mlp(self.ln2(x))


def make_blocks(cfg: TransformerSize) -> nn.ModuleList:
    return nn.ModuleList(
        Block(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.attn_dropout)
        for _ in range(cfg.n_layers)
    )


def shift_right(x: torch.Tensor, fill: int) -> torch.Tensor:
    """(B, T) -> (B, T): element t is x[:, t - 1]; ``fill`` at t = 0."""
    return torch.cat([torch.full_like(x[:, :1], fill), x[:, :-1]], dim=1)


@STUDENTS.register("ad")
class ADTransformer(nn.Module):
    """Causal transformer student. ``forward(obs, prev_action, prev_reward, new_episode)``
    with tensors (B, T), T <= context_len -> logits (B, T, num_actions)."""

    kind = "ad"
    inputs = "sequence"
    config_class = ADConfig

    def __init__(self, cfg: ADConfig, num_obs: int, num_actions: int):
        super().__init__()
        self.cfg, self.num_obs, self.num_actions = cfg, num_obs, num_actions
        self.context_len = cfg.context_len
        self.embed = StepEmbedding(num_obs, num_actions, cfg.d_model, cfg.obs_factors)
        self.pos = nn.Embedding(cfg.context_len, cfg.d_model)
        # "none" (index num_obs) at the window's first position
        self.prev_obs = (ObsEmbedding(num_obs, cfg.d_model, cfg.obs_factors, extra=1)
                         if cfg.prev_obs else None)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = make_blocks(cfg)
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, num_actions)

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        new_episode: torch.Tensor,
    ) -> torch.Tensor:
        t = obs.shape[1]
        if t > self.context_len:
            raise ValueError(f"window of {t} steps is longer than context_len={self.context_len}")
        x = self.embed(obs, prev_action, prev_reward, new_episode)
        if self.prev_obs is not None:
            x = x + self.prev_obs(shift_right(obs, self.num_obs))
        x = self.drop(x + self.pos(torch.arange(t, device=obs.device)))
        for blk in self.blocks:
            x = blk(x, causal=True)
        return self.head(self.ln_f(x))
