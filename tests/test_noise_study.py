"""The noise-distillation study (claim 4): its verdict, its data summary, a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.common import held_out_tasks, make_family
from outlearn.studies.noise import NoiseStudyConfig, data_summary, run
from outlearn.studies.verdicts import GATE, beats_data_verdict

TINY = tiny(teacher={"name": "noise", "kwargs": {"eps_end": 0.6, "decay_steps": 20}})


def test_beats_data_verdict():
    assert beats_data_verdict(Estimate(2.0, 1.6, 2.4), 1.5).label == "confirmed"
    assert beats_data_verdict(Estimate(1.1, 0.9, 1.4), 1.5).label == "refuted"
    assert beats_data_verdict(Estimate(1.5, 1.2, 1.8), 1.5).inconclusive


def test_tiny_run_reports_the_student_against_the_best_in_its_data(tmp_path):
    cfg = parse_config(NoiseStudyConfig, TINY)
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert [r["learner"].split(" (")[0] for r in section.rows] == [
        "student", "best in data", "teacher run fresh", "random", "optimum"]
    check_cells(section)
    student, best = section.rows[0], section.rows[1]
    ratio = student["ratio to best in data"]
    assert ratio.value == pytest.approx(student["asymptote"].value / best["asymptote"].value)
    if section.verdict.startswith(GATE):  # the student does not reach its own data
        assert ratio.high < 1 and section.outcome == "inconclusive"
    else:
        assert section.verdict == beats_data_verdict(ratio, cfg.ratio_bar).label
    # eps falls 1 -> 0.6 over the first 20 of 40 steps: the optimal action is taken on
    # about 1/5 + 4/5 * (1 - mean eps) of the steps, mean eps = (0.8 * 20 + 0.6 * 20) / 40
    (full,) = (tmp_path / "stages").glob("collect-*/full.h5")
    ids = held_out_tasks(make_family(cfg.env), cfg.tasks)
    _, share = data_summary(full, ids, 3)
    assert share == pytest.approx(0.2 + 0.8 * (1 - 0.7), abs=0.06)
    assert "in the data's support" in section.notes[0]
    assert np.isfinite(share)
