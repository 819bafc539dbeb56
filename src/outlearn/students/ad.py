"""Algorithm Distillation (Laskin et al. 2022): a causal pre-LN GPT over a learner's steps.

One token per step (see :mod:`outlearn.students.tokens`); positions are relative
(rotary by default, see :mod:`outlearn.students.positions`), so that in evaluation the
model runs on a sliding window with a key/value cache, one new token per step. The model
outputs logits over actions at every position, and trains on all of them.

Two options help it learn in context on gridworlds at small scale (measured on a 5x5
Dark Room, held-out goals: see configs/demo.toml):

* ``obs_factors`` (e.g. ``[size, size]``): a cell is embedded from its coordinates
  (:class:`~outlearn.students.tokens.ObsEmbedding`), as AD's Dark Room observation is the
  agent's (x, y) position. With one free vector per cell, a goal never seen in training
  is a cell whose "goal" meaning the model never learned, and it does not generalise.
* ``prev_obs``: a token also holds the observation of the step before it (shifted within
  the window, "none" at its first position), so one attention layer can match the
  current cell with the transitions taken from it earlier in the context.

Frame observations (``obs_shape``, set from the history; ``obs_encoder``): see
:class:`~outlearn.students.tokens.ObsInput`. ``prev_obs`` and ``obs_factors`` are index
options and are refused with frames.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from outlearn.config import Config, parse_config
from outlearn.errors import ConfigError
from outlearn.registry import STUDENTS
from outlearn.students.positions import (
    ROPE_BASE,
    KVCache,
    Scheme,
    alibi_bias,
    alibi_slopes,
    rope_tables,
    rotate,
    window_mask,
)
from outlearn.students.tokens import ObsEmbedding, ObsInput, StepEmbedding


class TransformerSize(Config):
    """The size of a transformer student (shared by AD and DPT)."""

    n_layers: int = Field(2, ge=1, description="transformer blocks")
    n_heads: int = Field(2, ge=1, description="attention heads per block (must divide "
                         "d_model)")
    d_model: int = Field(64, ge=2, description="width: the size of every token's embedding")
    d_ff: int = Field(256, ge=1, description="hidden units of each block's feed-forward layer")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout on the embeddings, the "
                           "attention output and the feed-forward output during training")
    # 0 by default: on CPU, attention dropout takes torch's attention off its fused kernel
    # (the 9x9 recipe's model trained at 14.0k tokens/s with 0.1 against 30.9k with 0)
    attn_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the attention "
                                "weights during training (0: torch's fused CPU kernel, about "
                                "2x faster)")
    context_len: int = Field(100, ge=1, description="tokens the model attends over (AD: steps; "
                             "DPT: transitions in the set); set from the training data's "
                             "context_len")

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSize:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: "
                "pick n_heads that divides d_model"
            )
        return self


class ADConfig(ObsInput, TransformerSize):
    """AD's transformer. ``ADConfig.preset("paper")`` is AD's published model."""

    prev_obs: bool = Field(False, description="add the previous step's observation to a token")
    obs_factors: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="embed observations by mixed-radix digits, e.g. [size, size]")
    positions: Scheme = Field(
        "rope", description="'rope' or 'alibi' (relative: a key/value cache in evaluation), "
        "'learned' (absolute, as checkpoints before the cache; recomputes its window)")
    rope_base: float = Field(
        ROPE_BASE, gt=1.0, allow_inf_nan=False,
        description="rotary base: channel pair i turns by base^(-2i/head_size) per step")

    @model_validator(mode="after")
    def _rope_dims(self) -> ADConfig:
        if self.positions == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"positions='rope' rotates pairs of channels but a head has "
                f"{self.d_model // self.n_heads} (d_model / n_heads): use an even head size "
                "or positions='alibi'")
        if self.obs_shape and (self.prev_obs or self.obs_factors):
            key = "prev_obs" if self.prev_obs else "obs_factors"
            raise ValueError(
                f"{key} embeds observation indices, but this student reads frames of shape "
                f"{self.obs_shape} (its history's observations): remove {key}")
        return self

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ADConfig:
        """``"paper"`` (4 layers, 4 heads, d 64, ff 2048, dropout 0.1, attn 0.5) or
        ``"small"`` (the CPU default: 2 layers, 2 heads, d 64, ff 256, dropout 0.1, no
        attention dropout)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown AD preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return parse_config(cls, {**PRESETS[name], **overrides}, f"preset {name!r}")


PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(n_layers=4, n_heads=4, d_model=64, d_ff=2048, dropout=0.1, attn_dropout=0.5),
    "small": dict(n_layers=2, n_heads=2, d_model=64, d_ff=256, dropout=0.1, attn_dropout=0.0),
}


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + mlp(LN(x)). x: (B, T, d).

    ``rope``: (cos, sin) tables of the tokens' steps (queries and keys are rotated);
    ``mask``: a bool or float (H, Tq, Tk) attention mask (sliding window, ALiBi bias), used
    instead of ``causal``. On CPU attention runs in float32 even under bf16 autocast: torch's
    fused CPU attention kernel is slower in bf16 (``benchmarks/train.py``).
    """

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

    def qkv_heads(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, d) -> q, k, v each (B, H, T, d / H), q and k rotated by ``rope``."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        shape = (b, t, self.n_heads, d // self.n_heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        return q, k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
               mask: torch.Tensor | None) -> torch.Tensor:
        p = self.attn_dropout if self.training else 0.0
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=p,
                    is_causal=causal and mask is None)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                              is_causal=causal and mask is None)

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Residual and MLP after attention output ``y`` (B, H, T, d / H)."""
        b, t, d = x.shape
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d).to(x.dtype)))
        return x + self.mlp(self.ln2(x))

    def forward(self, x: torch.Tensor, causal: bool,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.qkv_heads(x, rope)
        return self.finish(x, self.attend(q, k, v, causal, mask))

    def step(self, x: torch.Tensor, cache: KVCache, layer: int,
             rope: tuple[torch.Tensor, torch.Tensor] | None,
             slopes: torch.Tensor | None) -> torch.Tensor:
        """One new token per stream: x (B, 1, d) attends to the cached window."""
        q, k, v = self.qkv_heads(x, rope)
        keys, values = cache.write(layer, k, v)
        mask = None
        if slopes is not None:
            now = torch.full((1,), cache.t, device=x.device)
            mask = alibi_bias(slopes, now, cache.keys_pos(), cache.window)
        return self.finish(x, self.attend(q, keys, values, False, mask))


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
    with tensors (B, T) (frames: ``obs`` (B, T, *obs_shape)), T <= context_len -> logits
    (B, T, num_actions).

    With relative positions (``rope``, ``alibi``) the model also runs on a stream longer
    than its context, every token seeing its last ``context_len`` steps at every layer:
    :meth:`forward_stream` computes that in one pass (the reference), :meth:`init_cache`
    and :meth:`step` one new step at a time with a key/value cache (evaluation).
    """

    kind = "ad"
    inputs = "sequence"
    config_class = ADConfig
    slopes: torch.Tensor  # ALiBi's per-head slopes (a buffer)

    def __init__(self, cfg: ADConfig, num_obs: int, num_actions: int):
        super().__init__()
        self.cfg, self.num_obs, self.num_actions = cfg, num_obs, num_actions
        self.context_len = cfg.context_len
        self.head_dim = cfg.d_model // cfg.n_heads
        self.obs_shape = tuple(cfg.obs_shape or ())
        self.embed = StepEmbedding(num_obs, num_actions, cfg.d_model, cfg.obs_factors,
                                   cfg.obs_shape, cfg.obs_encoder)
        self.pos = nn.Embedding(cfg.context_len, cfg.d_model) if cfg.positions == "learned" \
            else None
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)
        self._rope: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        # "none" (index num_obs) at the window's first position
        self.prev_obs = (ObsEmbedding(num_obs, cfg.d_model, cfg.obs_factors, extra=1)
                         if cfg.prev_obs else None)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = make_blocks(cfg)
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, num_actions)

    @property
    def supports_cache(self) -> bool:
        return self.cfg.positions != "learned"

    def tokens(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
               new_episode: torch.Tensor, prev_obs: torch.Tensor | None) -> torch.Tensor:
        """Token vectors (B, T, d); ``prev_obs`` (B, T), ``num_obs`` = "none" (read only
        with ``cfg.prev_obs``)."""
        x = self.embed(obs, prev_action, prev_reward, new_episode)
        if self.prev_obs is not None:
            assert prev_obs is not None
            x = x + self.prev_obs(prev_obs)
        return x

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
        return self._run(obs, prev_action, prev_reward, new_episode, window=None)

    def forward_stream(self, obs: torch.Tensor, prev_action: torch.Tensor,
                       prev_reward: torch.Tensor, new_episode: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, A) of a stream of any length T, each step seeing the last
        ``context_len`` steps (itself included) at every layer: what :meth:`step` computes
        one step at a time. O(T^2); for tests and references."""
        if not self.supports_cache:
            raise ValueError("positions='learned' has no sliding-window form: use forward")
        return self._run(obs, prev_action, prev_reward, new_episode, window=self.context_len)

    def _run(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
             new_episode: torch.Tensor, window: int | None) -> torch.Tensor:
        t, dev = obs.shape[1], obs.device
        x = self.tokens(obs, prev_action, prev_reward, new_episode,
                        shift_right(obs, self.num_obs) if self.prev_obs is not None else None)
        steps = torch.arange(t, device=dev)
        rope, mask = None, None
        if self.pos is not None:
            x = x + self.pos(steps)
        elif self.cfg.positions == "rope":
            rope = self._rope_for(t, dev)
            if window is not None and t > window:
                mask = window_mask(steps, steps, window)
        else:
            mask = alibi_bias(self.slopes, steps, steps, window or t)
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x, causal=True, rope=rope, mask=mask)
        return self.head(self.ln_f(x))

    def _rope_for(self, t: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The rotary tables of steps 0..t-1, computed once per (t, device)."""
        if (t, dev) not in self._rope:
            self._rope[(t, dev)] = tuple(  # type: ignore[assignment]
                z.to(dev) for z in rope_tables(torch.arange(t), self.head_dim,
                                               self.cfg.rope_base))
        return self._rope[(t, dev)]

    def init_cache(self, batch: int, window: int | None = None) -> KVCache:
        """An empty cache for ``batch`` streams and a window of ``window`` (<= context_len)
        steps."""
        if not self.supports_cache:
            raise ValueError("positions='learned' cannot use a key/value cache")
        dev = next(self.parameters()).device
        return KVCache(len(self.blocks), batch, self.cfg.n_heads, self.head_dim,
                       window or self.context_len, dev)

    def step(self, cache: KVCache, obs: torch.Tensor, prev_action: torch.Tensor,
             prev_reward: torch.Tensor, new_episode: torch.Tensor,
             prev_obs: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, A) of the next step of every stream; inputs (B,) (frames: ``obs``
        (B, *obs_shape)), ``prev_obs`` the observation of the stream's previous step
        (``num_obs`` before its first; needed with ``cfg.prev_obs`` only)."""
        x = self.tokens(obs[:, None], prev_action[:, None], prev_reward[:, None],
                        new_episode[:, None], None if prev_obs is None else prev_obs[:, None])
        rope, slopes = None, None
        if self.cfg.positions == "rope":
            cos, sin = rope_tables(torch.tensor([cache.t]), self.head_dim, self.cfg.rope_base)
            rope = (cos.to(x.device), sin.to(x.device))
        else:
            slopes = self.slopes
        x = self.drop(x)
        for i, blk in enumerate(cast("list[Block]", self.blocks)):
            x = blk.step(x, cache, i, rope, slopes)
        cache.advance()
        return self.head(self.ln_f(x))[:, 0]
