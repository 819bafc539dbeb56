"""Adding your own student: a causal temporal-convolution model, registered from outside
outlearn.

Import this module (or expose ``TCNStudent`` as an entry point in your package's
``[project.entry-points."outlearn.students"]``, which is what ``outlearn run`` on the
command line sees) and name ``"tcn"`` in any config::

    [student]
    kind = "tcn"
    model = { d_model = 32, n_layers = 3 }

Training (windows, labels, checkpoints with exact resume, ``--workers``), acting in
context through the rollout loop, the studies and their reports then work on it. What a
student is: a ``torch.nn.Module`` built as ``cls(config, num_obs, num_actions)`` from its
``config_class`` (a :class:`outlearn.config.Config` with a ``context_len`` field, which
training sets from the data), with ``inputs = "sequence"`` (it reads AD's step tokens) and
``forward(obs, prev_action, prev_reward, new_episode)`` on (B, T) tensors returning logits
(B, T, num_actions) where step t sees steps <= t only. Acting, it is given its last
``context_len`` steps and its logits at the last one are used (a model may add a
key/value cache: see ``outlearn.students.ad``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from outlearn.registry import STUDENTS
from outlearn.students.tokens import ObsInput, StepEmbedding


class TCNConfig(ObsInput):
    """Settings of the convolutional student (what `outlearn explain students/tcn` shows;
    ``ObsInput`` adds how it reads frames, set from the history)."""

    d_model: int = Field(32, ge=1, description="channels of the step tokens and every layer")
    n_layers: int = Field(3, ge=1, description="causal convolutions; layer i looks 2**i "
                          "steps further back, so 3 layers of kernel 3 see 15 steps")
    kernel: int = Field(3, ge=2, description="taps of each convolution")
    context_len: int = Field(60, ge=1, description="steps of the training windows (set "
                             "from the training data's context_len)")


@STUDENTS.register("tcn")
class TCNStudent(nn.Module):
    """Step tokens -> dilated causal 1-D convolutions (residual, GELU) -> action logits."""

    kind = "tcn"
    inputs = "sequence"
    config_class = TCNConfig

    def __init__(self, cfg: TCNConfig, num_obs: int, num_actions: int):
        super().__init__()
        self.cfg, self.num_obs, self.num_actions = cfg, num_obs, num_actions
        self.context_len = cfg.context_len
        self.obs_shape = tuple(cfg.obs_shape or ())
        self.embed = StepEmbedding(num_obs, num_actions, cfg.d_model,
                                   obs_shape=cfg.obs_shape, obs_encoder=cfg.obs_encoder)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.d_model, cfg.d_model, cfg.kernel,
                                             dilation=2 ** i) for i in range(cfg.n_layers))
        self.head = nn.Linear(cfg.d_model, num_actions)

    def forward(self, obs: torch.Tensor, prev_action: torch.Tensor,
                prev_reward: torch.Tensor, new_episode: torch.Tensor) -> torch.Tensor:
        x = self.embed(obs, prev_action, prev_reward, new_episode).transpose(1, 2)  # (B, D, T)
        for conv in self.convs:
            pad = (conv.kernel_size[0] - 1) * conv.dilation[0]  # on the left only: causal
            x = x + F.gelu(conv(F.pad(x, (pad, 0))))
        return self.head(x.transpose(1, 2))
