"""Decision-Pretrained Transformer (Lee et al. 2023): a set of transitions and a query.

The context is a SET of N transitions (obs, action, reward, next_obs) from one learner on
one task; there is no positional embedding. The query token holds only an observation;
the label is the task's optimal action for it.

Two modes:

* set mode (default): sequence [ctx_1..ctx_N, query], full (non-causal) attention; the
  prediction at the query is invariant to any permutation of the context.
* prefix mode (``predict_prefixes=True``, as in DPT's training): sequence
  [query, ctx_1..ctx_N], causal; position i predicts the optimal action from the query
  and the first i transitions (order now matters, as in the paper).

``next_obs`` may be the extra index ``num_obs`` ("unknown": the episode ended at that
step and the history does not store the observation before the reset).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from outlearn.registry import STUDENTS
from outlearn.students.ad import TransformerSize, make_blocks


class DPTConfig(TransformerSize):
    """Transformer size (as AD's small default); ``context_len`` = transitions in the set."""

    predict_prefixes: bool = Field(False, description="prefix mode (DPT's training): the "
                                   "query first, causal attention, a prediction after every "
                                   "prefix of the context; false: one prediction from the whole "
                                   "set, order-free")
    reward_by_action: bool = Field(
        True, description="add reward * a learned vector of the transition's action")


@STUDENTS.register("dpt")
class DPTTransformer(nn.Module):
    """``forward(ctx_obs, ctx_action, ctx_reward, ctx_next_obs, query_obs)``.

    Shapes: ctx_* (B, N) (N may be 0), query_obs (B,). Returns logits (B, P, A) with
    P = 1 in set mode and P = N + 1 in prefix mode; the last position sees the whole set.
    """

    kind = "dpt"
    inputs = "set"
    config_class = DPTConfig

    def __init__(self, cfg: DPTConfig, num_obs: int, num_actions: int):
        super().__init__()
        self.cfg, self.num_obs, self.num_actions = cfg, num_obs, num_actions
        self.context_len = cfg.context_len
        d = cfg.d_model
        self.obs = nn.Embedding(num_obs, d)
        self.next_obs = nn.Embedding(num_obs + 1, d)
        self.action = nn.Embedding(num_actions, d)
        self.reward = nn.Linear(1, d)
        # reward * e'(action): a pull's outcome lands in a direction of its own arm, so
        # attention's average over the set reads per-arm success rates linearly
        self.reward_by_action = nn.Embedding(num_actions, d) if cfg.reward_by_action else None
        self.query = nn.Parameter(torch.zeros(d))  # marks the query token
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = make_blocks(cfg)
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_actions)

    def forward(
        self,
        ctx_obs: torch.Tensor,
        ctx_action: torch.Tensor,
        ctx_reward: torch.Tensor,
        ctx_next_obs: torch.Tensor,
        query_obs: torch.Tensor,
    ) -> torch.Tensor:
        ctx = (
            self.obs(ctx_obs)
            + self.action(ctx_action)
            + self.reward(ctx_reward.unsqueeze(-1).float())
            + self.next_obs(ctx_next_obs)
        )
        if self.reward_by_action is not None:
            ctx = ctx + ctx_reward.unsqueeze(-1).float() * self.reward_by_action(ctx_action)
        q = (self.obs(query_obs) + self.query).unsqueeze(1)  # (B, 1, d)
        prefixes = self.cfg.predict_prefixes
        x = self.drop(torch.cat([q, ctx] if prefixes else [ctx, q], dim=1))
        for blk in self.blocks:
            x = blk(x, causal=prefixes)
        out = self.head(self.ln_f(x))
        return out if prefixes else out[:, -1:]
