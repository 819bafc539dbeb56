"""Learning-history files (HDF5): schema, writer/reader and the transforms studies use."""

from outlearn.histories.io import History, episode_returns, write_history
from outlearn.histories.schema import (
    SCHEMA_VERSION,
    HistoryMeta,
    LearnerInfo,
    code_version,
    flatten_task_params,
)
from outlearn.histories.transforms import (
    cut_at_performance,
    cut_at_step,
    keep_every_kth_episode,
    keep_train_tasks,
    performance_curve,
)

__all__ = [
    "SCHEMA_VERSION",
    "History",
    "HistoryMeta",
    "LearnerInfo",
    "code_version",
    "cut_at_performance",
    "cut_at_step",
    "episode_returns",
    "flatten_task_params",
    "keep_every_kth_episode",
    "keep_train_tasks",
    "performance_curve",
    "write_history",
]
