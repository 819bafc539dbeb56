"""The task-count study (claim 10): its verdict, its config, a tiny run."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.histories import History
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.taskcount import TaskCountConfig, run
from outlearn.studies.verdicts import Verdict, task_count_verdict

TINY = {
    "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
    "teacher": {"name": "qlearning", "kwargs": {}},
    "tasks": {"seed": 0, "n_train": 5, "n_test": 3},
    "learners_per_task": 2,
    "teacher_episodes": 8,
    "train_tasks": [5, 2],
    "none_up_to": 2,
    "learns_from": 5,
    "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 1, "d_model": 16, "d_ff": 32},
                "context_len": 15, "train_steps": 20, "batch_size": 8, "warmup_steps": 5,
                "checkpoint_every": 10},
    "eval": {"episodes": 10, "seeds": [0]},
    "train_seeds": [0, 1],
    "threads": 1,
}


def _cfg(**over) -> dict:
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


def test_task_count_verdict():
    learns, flat = Verdict("learns in context", ""), Verdict("does not learn in context", "")
    assert task_count_verdict({9: flat, 37: learns, 151: learns}, 18, 37).label == "confirmed"
    assert task_count_verdict({9: learns, 151: learns}, 18, 37).label == "refuted"
    assert task_count_verdict({9: flat, 37: flat, 151: learns}, 18, 37).label == "refuted"
    v = task_count_verdict({37: learns, 151: learns}, 18, 37)
    assert v.inconclusive and "at most 18" in v.reason
    assert "9 tasks: does not learn" in task_count_verdict({9: flat, 37: learns}, 18, 37).reason


@pytest.mark.parametrize("over, match", [
    ({"train_tasks": [2, 6]}, "must lie in"),
    ({"train_tasks": [2, 2]}, "duplicates"),
    ({"learns_from": 2}, "must exceed"),
    ({"compare_n": 6}, "overlap"),
])
def test_config_refuses_impossible_settings(over, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(TaskCountConfig, _cfg(**over))


def test_tiny_run_trains_on_subsets_and_reports_every_count(tmp_path):
    cfg = parse_config(TaskCountConfig, _cfg())
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert [r["learner"] for r in section.rows] == [
        "student, 2 train tasks", "student, 5 train tasks", "teacher run fresh", "random"]
    for row in section.rows:
        for col, v in row.items():
            assert not isinstance(v, float | int), f"{col}: a number without CI"
            if isinstance(v, Estimate):
                assert v.low <= v.value <= v.high
    per = {n: Verdict(r["verdict"], "") for n, r in zip([2, 5], section.rows[:2], strict=True)}
    assert section.verdict == task_count_verdict(per, 2, 5).label
    (sub,) = (tmp_path / "stages").glob("subset-*/tasks.h5")  # the 5-task run uses the file
    with History(sub) as h, History(next((tmp_path / "stages").glob("collect-*/full.h5"))) as f:
        assert len(np.unique(h.task_ids[h.learners("train")])) == 2
        assert np.array_equal(h.task_ids[h.learners("test")], f.task_ids[f.learners("test")])
