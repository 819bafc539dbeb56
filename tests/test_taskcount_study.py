"""The task-count study (claim 10): its verdict, its config, a tiny run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.histories import History
from outlearn.studies.base import RunContext
from outlearn.studies.taskcount import TaskCountConfig, run
from outlearn.studies.verdicts import Outcome, Verdict, task_count_verdict

TINY = tiny(train_tasks=[5, 2], none_up_to=2, learns_from=5)


OUTCOME = {"learns in context": Outcome.YES, "does not learn in context": Outcome.NO}


def _cfg(**over) -> dict:
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


def test_task_count_verdict():
    learns, flat = Verdict("learns in context", "", Outcome.YES), Verdict(
        "does not learn in context", "", Outcome.NO)
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
    check_cells(section)
    per = {n: Verdict(r["verdict"], "", OUTCOME.get(r["verdict"], Outcome.INCONCLUSIVE))
           for n, r in zip([2, 5], section.rows[:2], strict=True)}
    assert section.verdict == task_count_verdict(per, 2, 5).label
    (sub,) = (tmp_path / "stages").glob("subset-*/tasks.h5")  # the 5-task run uses the file
    with History(sub) as h, History(next((tmp_path / "stages").glob("collect-*/full.h5"))) as f:
        assert len(np.unique(h.task_ids[h.learners("train")])) == 2
        assert np.array_equal(h.task_ids[h.learners("test")], f.task_ids[f.learners("test")])
