"""The context-length study (claim 9): its verdicts, its metric, its config, a tiny run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from studies_tiny import TINY as BASE
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.evaluation.metrics import in_context_improvement
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.context import ContextConfig, context_steps, run
from outlearn.studies.verdicts import Outcome, Verdict, context_span_verdict, in_context_verdict

TINY = tiny(contexts=[0.6, 2], student={
    k: v for k, v in BASE["student"].items() if k != "context_len"})


OUTCOME = {"learns in context": Outcome.YES, "does not learn in context": Outcome.NO}


def _cfg(**over) -> dict:
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


def test_improvement_is_last_minus_first_per_unit():
    # 2 seeds x 1 task x 4 episodes; n=1: units improve by 3 and by -1 -> mean 1
    curves = np.array([[[0.0, 1.0, 2.0, 3.0]], [[2.0, 0.0, 0.0, 1.0]]])
    est = in_context_improvement(curves, 1)
    assert est.value == pytest.approx(1.0)
    assert est.low <= 1.0 <= est.high
    # n=2: (2.5 - 0.5) and (0.5 - 1.0) -> mean 0.75
    assert in_context_improvement(curves, 2).value == pytest.approx(0.75)
    with pytest.raises(ValueError, match="overlap"):
        in_context_improvement(curves, 3)


def _est(lo: float, hi: float) -> Estimate:
    return Estimate((lo + hi) / 2, lo, hi)


def test_in_context_verdict_reads_the_ci_against_the_resolution():
    assert in_context_verdict(_est(0.6, 1.0), 0.5).label == "learns in context"
    assert in_context_verdict(_est(-0.3, 0.5), 0.5).label == "does not learn in context"
    assert in_context_verdict(_est(0.2, 0.9), 0.5).inconclusive  # straddles the resolution


def test_context_span_verdict():
    learns, flat = Verdict("learns in context", "", Outcome.YES), Verdict(
        "does not learn in context", "", Outcome.NO)
    wide = Verdict("inconclusive", "", Outcome.INCONCLUSIVE)
    assert context_span_verdict({0.5: flat, 2: learns, 4: learns}).label == "confirmed"
    assert context_span_verdict({0.5: learns, 2: learns}).label == "refuted"
    assert context_span_verdict({0.5: flat, 1: learns, 2: flat, 4: learns}).label == "refuted"
    assert context_span_verdict({0.5: flat, 2: wide, 4: learns}).inconclusive
    assert context_span_verdict({2: learns, 4: learns}).inconclusive  # no short context
    v = context_span_verdict({0.5: flat, 2: flat})
    assert v.inconclusive and "no student learns" in v.label


@pytest.mark.parametrize("over, match", [
    ({"student": {**TINY["student"], "context_len": 30}}, "set by contexts"),
    ({"contexts": [0.2, 2]}, "at least 2"),
    ({"contexts": [2, 2.04]}, "duplicate"),
    ({"contexts": [0.5, 9]}, "longer than the teacher"),
    ({"compare_n": 6}, "overlap"),
])
def test_config_refuses_impossible_settings(over, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(ContextConfig, _cfg(**over))


def test_context_steps_rounds_episodes_to_steps():
    assert context_steps(0.5, 20) == 10 and context_steps(2, 20) == 40
    with pytest.raises(ValueError, match="positive"):
        context_steps(0, 20)


def test_tiny_run_reports_every_context_with_cis_and_resumes(tmp_path):
    cfg = parse_config(ContextConfig, _cfg())
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert section.key == "context" and section.figures[0].exists()
    assert [r["learner"] for r in section.rows] == [
        "student, context 0.6 episodes (3 steps)", "student, context 2 episodes (10 steps)",
        "teacher run fresh", "random"]
    check_cells(section)
    for row in section.rows:
        first, last, imp = row["first 1 episodes"], row["last 1 episodes"], row["improvement"]
        assert imp.value == pytest.approx(last.value - first.value)
    students = section.rows[:len(cfg.contexts)]
    per = {c: Verdict(r["verdict"], "", OUTCOME.get(r["verdict"], Outcome.INCONCLUSIVE))
           for c, r in zip(cfg.contexts, students, strict=True)}
    assert section.verdict == context_span_verdict(per).label
    # a second run reads every stage from the cache: the same numbers
    (again,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert again.rows == section.rows
