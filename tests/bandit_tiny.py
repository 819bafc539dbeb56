"""The tiny bandit setting of the regret studies' tests (claims 7 and 8)."""

from __future__ import annotations

import copy
from typing import Any

#: 3-arm Bernoulli bandits, T = 12 pulls, a one-layer student trained for 20 steps, run to 2T
TINY_BANDIT: dict[str, Any] = {
    "env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 3}},
    "teacher": {"name": "ucb1"},
    "tasks": {"seed": 0, "n_train": 6, "n_test": 4},
    "teacher_episodes": 12,
    "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 1, "d_model": 16, "d_ff": 32},
                "context_len": 12, "train_steps": 20, "batch_size": 8, "warmup_steps": 5,
                "checkpoint_every": 10},
    "eval": {"episodes": 24, "seeds": [0]},
    "train_seeds": [0, 1],
    "threads": 1,
}


def tiny_bandit(**over: Any) -> dict[str, Any]:
    """A deep copy of :data:`TINY_BANDIT` with top-level keys replaced."""
    d = copy.deepcopy(TINY_BANDIT)
    d.update(over)
    return d
