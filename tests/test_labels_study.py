"""The labels study (claim 8: DPT's edge comes from privileged labels): its verdict, its
config, a tiny run."""

from __future__ import annotations

import pytest
from bandit_tiny import TINY_BANDIT, tiny_bandit
from studies_tiny import check_cells

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.labels import LabelsConfig, run
from outlearn.studies.verdicts import (
    Outcome,
    about_equal_verdict,
    clearly_below_verdict,
    privileged_labels_verdict,
)


def _est(lo: float, hi: float) -> Estimate:
    return Estimate((lo + hi) / 2, lo, hi)


def test_clearly_below_and_about_equal_read_the_ratio():
    assert clearly_below_verdict(_est(0.5, 0.85), 0.1, "ts").outcome is Outcome.YES
    assert clearly_below_verdict(_est(0.9, 1.3), 0.1, "ts").outcome is Outcome.NO
    assert clearly_below_verdict(_est(0.7, 0.95), 0.1, "ts").inconclusive
    assert about_equal_verdict(_est(0.92, 1.05), 0.1, "ts").outcome is Outcome.YES
    assert about_equal_verdict(_est(1.2, 1.5), 0.1, "ts").outcome is Outcome.NO
    assert about_equal_verdict(_est(0.95, 1.15), 0.1, "ts").inconclusive


@pytest.mark.parametrize("optimal, imitation, outcome, words", [
    ((0.5, 0.8), (0.95, 1.05), Outcome.CONFIRMED, "confirmed"),
    ((0.95, 1.3), (0.95, 1.05), Outcome.REFUTED, "not clearly below"),
    ((0.95, 1.3), (0.85, 1.3), Outcome.REFUTED, "not clearly below"),
    ((0.5, 0.8), (0.6, 0.85), Outcome.REFUTED, "imitation alone"),
    ((0.7, 0.95), (0.95, 1.05), Outcome.INCONCLUSIVE, "inconclusive"),
    ((0.5, 0.8), (0.95, 1.2), Outcome.INCONCLUSIVE, "inconclusive"),
    ((0.5, 0.8), (1.2, 1.5), Outcome.INCONCLUSIVE, "does not match its source"),
    ((0.95, 1.3), (1.2, 1.5), Outcome.INCONCLUSIVE, "does not match its source"),
])
def test_privileged_labels_verdict(optimal, imitation, outcome, words):
    v = privileged_labels_verdict(_est(*optimal), _est(*imitation), 0.1, "thompson")
    assert v.outcome is outcome and words in v.label
    assert "optimal labels" in v.reason and "imitation" in v.reason


@pytest.mark.parametrize("over, match", [
    ({"env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
      "teacher": {"name": "qlearning"}}, "not a bandit.*bernoulli-bandit"),
    ({"student": {**TINY_BANDIT["student"], "labels": "optimal"}}, "student.labels.*remove"),
    ({"student": {**TINY_BANDIT["student"], "kind": "dpt", "model": {}}}, "kind = \"ad\""),
    ({"within": 1.5}, "within"),
])
def test_config_refuses_bad_input_with_the_fix(over, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(LabelsConfig, tiny_bandit(**over))


def test_tiny_run_compares_the_two_labels_and_resumes(tmp_path):
    cfg = parse_config(LabelsConfig, tiny_bandit(teacher={"name": "thompson"},
                                                 eval={"episodes": 12, "seeds": [0]}))
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert section.key == "labels" and section.figures[0].exists()
    assert [r["learner"] for r in section.rows] == [
        "student, labels: imitation (the source's actions)",
        "student, labels: privileged (the task's best arm)",
        "thompson (the source, run fresh)", "random"]
    check_cells(section)
    assert section.columns == ["learner", "cumulative regret at T=12", "ratio to thompson at T=12",
                               "reading"]  # the run ends at T: one set of columns
    imitation, optimal = (r["ratio to thompson at T=12"] for r in section.rows[:2])
    v = privileged_labels_verdict(optimal, imitation, cfg.within, "thompson")
    assert (section.verdict, section.outcome) == (v.label, v.outcome)
    assert imitation != optimal  # two students, trained on different labels
    (again,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert again.rows == section.rows
