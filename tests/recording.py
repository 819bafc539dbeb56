"""A student learner that keeps its logits: tests compare them with a full recompute."""

from __future__ import annotations

import numpy as np

from outlearn.students import StudentLearner


class Recording(StudentLearner):
    """A :class:`StudentLearner` keeping the logits (B, A) of every step in ``seen``."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen: list[np.ndarray] = []

    def logits(self, obs):
        z = super().logits(obs)
        self.seen.append(z)
        return z
