"""The source study (claim 7: AD matches its source): its verdict, its config, a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
from bandit_tiny import tiny_bandit
from studies_tiny import check_cells

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.stats import Estimate
from outlearn.studies.bandit import Regret
from outlearn.studies.base import RunContext
from outlearn.studies.source import SourceConfig, run, source_label
from outlearn.studies.verdicts import (
    Outcome,
    Verdict,
    all_parts_verdict,
    matches_source_verdict,
)


def _est(lo: float, hi: float) -> Estimate:
    return Estimate((lo + hi) / 2, lo, hi)


def test_matches_source_verdict_reads_the_ratio_against_the_band():
    assert matches_source_verdict(_est(0.95, 1.08), 0.1, "ucb1").outcome is Outcome.CONFIRMED
    above = matches_source_verdict(_est(1.15, 1.4), 0.1, "ucb1")
    below = matches_source_verdict(_est(0.5, 0.85), 0.1, "ucb1")
    assert above.outcome is below.outcome is Outcome.REFUTED
    assert "more regret" in above.label and "less regret" in below.label
    for lo, hi in ((0.95, 1.2), (0.8, 1.05), (0.8, 1.2)):  # straddles an end of the band
        assert matches_source_verdict(_est(lo, hi), 0.1, "ucb1").inconclusive
    assert "ucb1" in matches_source_verdict(_est(0.95, 1.2), 0.1, "ucb1").reason


def test_all_parts_verdict():
    yes, no = Verdict("y", "", Outcome.CONFIRMED), Verdict("n", "", Outcome.REFUTED)
    wide = Verdict("inconclusive", "", Outcome.INCONCLUSIVE)
    assert all_parts_verdict({"a": yes, "b": yes}).outcome is Outcome.CONFIRMED
    v = all_parts_verdict({"a": yes, "b": no, "c": wide})
    assert v.outcome is Outcome.REFUTED and "b" in v.label
    assert all_parts_verdict({"a": yes, "b": wide}).inconclusive


def test_regret_totals_and_ratio_are_the_cells_sums():
    # 2 students x 1 eval seed x 3 tasks x 4 pulls; the source: 1 seed x 3 tasks x 4 pulls
    rng = np.random.default_rng(0)
    st, src = rng.uniform(0, 1, (2, 1, 3, 4)), rng.uniform(0.5, 1, (1, 3, 4))
    r = Regret(st, src)
    assert r.total(2).value == pytest.approx(st[..., :2].sum(-1).mean())
    assert r.ratio(4).value == pytest.approx(st.sum(-1).mean() / src.sum(-1).mean())
    assert Regret(src, src).ratio(4).value == pytest.approx(1.0)


@pytest.mark.parametrize("over, match", [
    ({"env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
      "teacher": {"name": "qlearning"}}, "not a bandit.*bernoulli-bandit"),
    ({"sources": [{}, {"teacher": {"name": "ucb1"}}]}, "duplicates"),
    ({"sources": [{"num_arms": 1}]}, "num_arms"),
    ({"sources": [{"teacher": {"name": "egreedy", "kwargs": {"eps": 0.3}}}]}, "eps"),
])
def test_config_refuses_bad_input_with_the_fix(over, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(SourceConfig, tiny_bandit(**over))


def test_sources_default_to_the_study_teacher_and_name_their_arms():
    cfg = parse_config(SourceConfig, tiny_bandit(sources=[
        {}, {"teacher": {"name": "egreedy", "kwargs": {"eps_start": 0.3}}, "num_arms": 4}]))
    assert [source_label(cfg, s) for s in cfg.sources] == [
        "ucb1, 3 arms", "egreedy eps_start=0.3, 4 arms"]
    assert parse_config(SourceConfig, tiny_bandit()).sources == cfg.sources[:1]


def test_tiny_run_judges_every_source_and_resumes(tmp_path):
    cfg = parse_config(SourceConfig, tiny_bandit(sources=[{}, {"num_arms": 4}]))
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert section.key == "source" and section.figures[0].exists()
    assert [r["learner"] for r in section.rows] == [
        "student of ucb1, 3 arms", "ucb1, 3 arms (the source, run fresh)", "random, 3 arms",
        "student of ucb1, 4 arms", "ucb1, 4 arms (the source, run fresh)", "random, 4 arms"]
    check_cells(section)
    parts = {}
    for row in section.rows[::3]:
        v = matches_source_verdict(row["ratio to the source at 24"], 0.1, "ucb1")
        assert row["verdict"] == v.label
        parts[row["learner"]] = v
    assert section.outcome is all_parts_verdict(parts).outcome
    # a second run reads every stage from the cache: the same numbers
    (again,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert again.rows == section.rows
