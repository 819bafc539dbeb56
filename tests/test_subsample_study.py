"""The subsampling study (claim 5): its verdicts, its config, a tiny run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.histories import History
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.subsample import SubsampleConfig, run
from outlearn.studies.verdicts import speedup_about_verdict, subsample_verdict

TINY = tiny(teacher_episodes=12, factors=[1, 3], eval={"episodes": 12, "seeds": [0]})


def test_speedup_verdicts():
    assert speedup_about_verdict(Estimate(9, 6, 14), 10).label == "about 10x"
    assert speedup_about_verdict(Estimate(2, 1.5, 3), 10).label == "slower than 10x"
    assert speedup_about_verdict(Estimate(1, 0.7, 1.5), 1).label == "about 1x"
    assert speedup_about_verdict(Estimate(np.nan, np.nan, np.nan), 2).inconclusive
    assert "never reaches" in speedup_about_verdict(Estimate(0, 0, 0), 1).label
    assert "0 or infinity" in speedup_about_verdict(Estimate(0.15, 0, np.inf), 2).label
    about = {1: Estimate(1, 0.8, 1.3), 10: Estimate(9, 6, 14)}
    assert subsample_verdict(about).label == "confirmed"
    slow = {1: Estimate(1, 0.8, 1.3), 10: Estimate(2, 1.5, 3)}
    assert subsample_verdict(slow).label == "refuted"
    wide = {1: Estimate(1, 0.8, 1.3), 2: Estimate(1.5, 0.9, 2.5)}
    assert "does not exclude 1" in subsample_verdict(wide).label


@pytest.mark.parametrize("over, match", [
    ({"factors": [0, 2]}, "distinct k >= 1"),
    ({"factors": [2, 2]}, "distinct k >= 1"),
    ({"factors": [1, 7]}, "fewer than 2"),
])
def test_config_refuses_impossible_settings(over, match):
    d = copy.deepcopy(TINY)
    d.update(over)
    with pytest.raises(ConfigError, match=match):
        parse_config(SubsampleConfig, d)


def test_tiny_run_trains_on_subsampled_histories(tmp_path):
    cfg = parse_config(SubsampleConfig, TINY)
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert [r["learner"] for r in section.rows] == [
        "student, every episode", "student, one episode in k = 3", "teacher run fresh", "random"]
    check_cells(section)
    speedups = {k: row["speed-up vs teacher"] for k, row in zip([1, 3], section.rows[:2],
                                                                strict=True)}
    assert section.verdict == subsample_verdict(speedups).label
    (sub,) = (tmp_path / "stages").glob("subsample-*/subsampled.h5")
    with History(sub) as h:
        assert h.num_episodes == 4 and h.meta.provenance[-1]["args"]["k"] == 3
