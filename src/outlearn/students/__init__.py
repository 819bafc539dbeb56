"""Students (PyTorch): sequence models trained on learning histories, and their training.

``ad`` (causal transformer), ``adq`` (AD's transformer with action values, trained by
offline RL on the history's transitions), ``dpt`` (transformer over a set of transitions
and a query), ``gru`` (recurrent baseline) are registered in
:data:`outlearn.registry.STUDENTS`.
"""

from outlearn.students.ad import PRESETS, ADConfig, ADTransformer
from outlearn.students.adq import ADQConfig, ADQTransformer
from outlearn.students.checkpoint import (
    FORMAT_VERSION,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from outlearn.students.data import ArraySource, WindowSampler, gap_labels, split_train_val
from outlearn.students.dpt import DPTConfig, DPTTransformer
from outlearn.students.gru import GRUConfig, GRUStudent, count_params
from outlearn.students.policy import StudentLearner, check_family
from outlearn.students.tokens import StepEmbedding, step_inputs
from outlearn.students.train import (
    DataConfig,
    OptimConfig,
    StudentSpec,
    TrainConfig,
    load_student,
    train,
    train_from_toml,
)

__all__ = [
    "FORMAT_VERSION",
    "PRESETS",
    "ADConfig",
    "ADQConfig",
    "ADQTransformer",
    "ADTransformer",
    "ArraySource",
    "DPTConfig",
    "DPTTransformer",
    "DataConfig",
    "GRUConfig",
    "GRUStudent",
    "OptimConfig",
    "StepEmbedding",
    "StudentLearner",
    "StudentSpec",
    "TrainConfig",
    "WindowSampler",
    "check_family",
    "count_params",
    "gap_labels",
    "latest_checkpoint",
    "load_checkpoint",
    "load_student",
    "save_checkpoint",
    "split_train_val",
    "step_inputs",
    "train",
    "train_from_toml",
]
