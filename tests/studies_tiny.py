"""What the tests of the teacher-history studies share: a tiny setting and a row check."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from outlearn.report.section import Section
from outlearn.stats import Estimate

#: a 3x3 Dark Room, a few tasks and learners, a one-layer student trained for 20 steps
TINY: dict[str, Any] = {
    "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
    "teacher": {"name": "qlearning", "kwargs": {}},
    "tasks": {"seed": 0, "n_train": 5, "n_test": 3},
    "learners_per_task": 2,
    "teacher_episodes": 8,
    "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 1, "d_model": 16, "d_ff": 32},
                "context_len": 15, "train_steps": 20, "batch_size": 8, "warmup_steps": 5,
                "checkpoint_every": 10},
    "eval": {"episodes": 10, "seeds": [0]},
    "train_seeds": [0, 1],
    "threads": 1,
}


def tiny(**over: Any) -> dict[str, Any]:
    """A deep copy of :data:`TINY` with top-level keys replaced."""
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


def check_cells(section: Section) -> None:
    """Every number in the table is an estimate with its CI around it (inf allowed)."""
    for row in section.rows:
        for col, v in row.items():
            assert not isinstance(v, float | int), f"{col}: a number without CI"
            if isinstance(v, Estimate) and np.isfinite(v.value):
                assert v.low <= v.value <= v.high, f"{col}: {v}"
