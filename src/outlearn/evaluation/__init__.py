"""Evaluation: metrics with confidence intervals, baselines and the ``outlearn eval`` run."""

from outlearn.evaluation import metrics
from outlearn.evaluation.baselines import (
    BASELINES,
    NoOpLearner,
    make_baseline,
    make_teacher,
    stay_action,
)
from outlearn.evaluation.evaluate import (
    EnvSpec,
    EvalConfig,
    LearnerSpec,
    TaskSpec,
    evaluate,
    evaluate_from_toml,
    rollout_units,
    run_learner,
    run_learner_curves,
    select_tasks,
    unit_keys,
)
from outlearn.evaluation.metrics import *  # noqa: F403  (every metric; its __all__ below)

__all__ = [
    "BASELINES",
    "EnvSpec",
    "EvalConfig",
    "LearnerSpec",
    "NoOpLearner",
    "TaskSpec",
    "evaluate",
    "evaluate_from_toml",
    "make_baseline",
    "make_teacher",
    "rollout_units",
    "run_learner",
    "run_learner_curves",
    "select_tasks",
    "stay_action",
    "unit_keys",
    *metrics.__all__,
]
