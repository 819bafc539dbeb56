"""The cut-off study's config: what to collect, where to cut, how to train and evaluate.

Impossible settings are refused when the config is parsed (before any work); cuts that
only the teacher's curve can rule out are refused after collection, before training
(see :func:`outlearn.studies.cutoff.check_eval_horizon`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from outlearn.collect import EnvSection, TeacherSection
from outlearn.config import Config
from outlearn.evaluation.baselines import make_teacher
from outlearn.studies.common import (  # noqa: F401  (re-exported: the cut-off config's parts)
    EvalSection,
    StudentSection,
    TeacherStudyConfig,
    make_family,
)

Cut = float | Literal["uncut", "early"]


class HorizonSection(Config):
    """Claim 3: bandit student trained on ``T`` pulls, run to ``factor * T``."""

    env: EnvSection = EnvSection(name="bernoulli-bandit", kwargs={"num_arms": 5})
    teacher: TeacherSection = TeacherSection(name="ucb1")
    T: int = Field(100, ge=4)
    factor: int = Field(10, ge=2)
    n_train: int = Field(40, ge=1)
    n_test: int = Field(20, ge=1)
    within: float = Field(0.2, gt=0)
    student: StudentSection | None = None


class CutoffConfig(TeacherStudyConfig):
    """The cut-off study. ``cuts``: fractions of optimal in (0, 1), ``"uncut"`` (the whole
    history, the reference) and ``"early"`` (only the episodes where the teacher is no
    better than random)."""

    cuts: list[Cut] = Field(min_length=1)
    smoothing: int = Field(3, ge=1, description="episodes in the teacher's trailing mean")
    horizon_extrapolation: HorizonSection | None = None

    @model_validator(mode="after")
    def _check(self) -> CutoffConfig:
        for c in self.cuts:
            if isinstance(c, float) and not 0.0 < c < 1.0:
                raise ValueError(f"cut {c} must be a fraction of optimal in (0, 1), or "
                                 "\"uncut\" / \"early\": fix cuts")
        if len({cut_name(c) for c in self.cuts}) != len(self.cuts):
            raise ValueError(f"cuts={self.cuts} has duplicates: remove them")
        if self.horizon_extrapolation is not None:
            h = self.horizon_extrapolation
            if make_family(h.env).episode_len != 1:
                raise ValueError(f"horizon_extrapolation.env {h.env.name!r} is not a bandit "
                                 "(episode_len 1): use e.g. 'bernoulli-bandit'")
            make_teacher(h.teacher.name, make_family(h.env), **h.teacher.kwargs)
        return self


def cut_name(c: Cut) -> str:
    return c if isinstance(c, str) else f"{c:g}"
