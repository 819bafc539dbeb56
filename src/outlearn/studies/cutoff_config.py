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

    env: EnvSection = Field(EnvSection(name="bernoulli-bandit", kwargs={"num_arms": 5}),
                            description="the bandit family (episode length 1) of this part")
    teacher: TeacherSection = Field(TeacherSection(name="ucb1"), description="the teacher whose "
                                    "T-pull histories the students learn from, and the "
                                    "reference run to factor x T")
    T: int = Field(100, ge=4, description="pulls in each training history; also the "
                   "student's context (a sliding window)")
    factor: int = Field(10, ge=2, description="the students run to factor x T pulls")
    n_train: int = Field(40, ge=1, description="training tasks (bandits) of this part")
    n_test: int = Field(20, ge=1, description="held-out tasks the students and the reference "
                        "run on")
    within: float = Field(0.2, gt=0, description="the claim's tolerance: cumulative regret at "
                          "factor x T within this fraction of the teacher's counts as tracking it")
    student: StudentSection | None = Field(None, description="the student of this part "
                                           "([horizon_extrapolation.student]); unset: the "
                                           "study's [student]")


class CutoffConfig(TeacherStudyConfig):
    """The cut-off study. ``cuts``: fractions of optimal in (0, 1), ``"uncut"`` (the whole
    history, the reference) and ``"early"`` (only the episodes where the teacher is no
    better than random)."""

    cuts: list[Cut] = Field(min_length=1, description="where to cut the histories: fractions "
                            "of optimal in (0, 1) (cut when the teacher's smoothed return first "
                            "reaches it), 'uncut' (the whole history) and 'early' (only episodes "
                            "no better than random); one student per cut and train seed")
    smoothing: int = Field(3, ge=1, description="episodes in the teacher's trailing mean")
    horizon_extrapolation: HorizonSection | None = Field(
        None, description="claim 3 on a bandit ([horizon_extrapolation] table); unset: not run")

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
