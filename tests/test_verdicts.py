"""Verdicts follow the confidence intervals, on synthetic curves whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from outlearn.evaluation.metrics import continuation_gap, data_ceiling, exceedance
from outlearn.stats import Estimate, bootstrap_ci, crossed_ratio_ci
from outlearn.studies.verdicts import (
    Outcome,
    competence_gate,
    continuation_verdict,
    cutoff_verdict,
    exceedance_verdict,
    position,
    regret_trend_verdict,
    tracks_reference_verdict,
    versus_random_verdict,
)

SEEDS, TASKS, EPISODES, LAST_N = 3, 8, 60, 10
TOL = 1.0  # resolution in return units (optimum is 10 in these curves)


def _curves(level_fn, noise: float, seed: int) -> np.ndarray:
    """(SEEDS, TASKS, EPISODES): level_fn(episodes) + Gaussian noise."""
    rng = np.random.default_rng(seed)
    e = np.arange(EPISODES, dtype=np.float64)
    return level_fn(e)[None, None, :] + noise * rng.standard_normal((SEEDS, TASKS, EPISODES))


def _teacher_cut(seed: int = 1) -> np.ndarray:
    """Teacher learners' returns over the 20 episodes kept: rising to 4.0, (L=16, 20)."""
    rng = np.random.default_rng(seed)
    e = np.arange(20, dtype=np.float64)
    return 4.0 * e / 19.0 + 0.2 * rng.standard_normal((16, 20))


def _ceiling():
    """The cut teacher's ceiling per task: its 16 learners, 2 on each of the 8 tasks."""
    return data_ceiling(_teacher_cut(), window=3, task_ids=np.repeat(np.arange(TASKS), 2),
                        tasks=np.arange(TASKS))


def _teacher_full(seed: int = 2) -> np.ndarray:
    """The teacher's unseen continuation on the test units: rises to 9.0."""
    return _curves(lambda e: np.minimum(9.0, 4.0 + 5.0 * (e - 19) / 20).clip(0), 0.3, seed)


def test_position_reads_the_interval_against_zero():
    assert position(Estimate(1.0, 0.5, 1.5), 0.2) == "above"
    assert position(Estimate(-1.0, -1.5, -0.5), 0.2) == "below"
    assert position(Estimate(0.0, -0.1, 0.15), 0.2) == "zero"
    assert position(Estimate(0.0, -0.1, 0.5), 0.2) == "wide"
    with pytest.raises(ValueError, match="tol"):
        position(Estimate(0.0, 0.0, 0.0), 0.0)


def test_a_student_that_rises_past_the_ceiling_exceeds_its_data():
    ceiling = _ceiling()
    student = _curves(lambda e: np.minimum(8.0, 4.0 * (1 + e / 20)), 0.5, seed=3)
    ex = exceedance(student, ceiling, LAST_N)
    assert ex.low > 0
    v = exceedance_verdict(ex, TOL)
    assert v.label == "exceeds its data" and v.outcome is Outcome.YES
    assert "above 0" in v.reason and f"{ex.value:.3g}" in v.reason


def test_a_student_that_plateaus_at_the_ceiling_does_not_exceed_it():
    ceiling = _ceiling()
    level = ceiling.best.value
    student = _curves(lambda e: np.minimum(level, level * e / 19), 0.5, seed=4)
    ex = exceedance(student, ceiling, LAST_N)
    v = exceedance_verdict(ex, TOL)
    assert v.label == "plateaus at its data", v.reason
    gap = continuation_gap(_teacher_full(), student, LAST_N)
    assert gap.low > 0
    both = cutoff_verdict(ex, gap, TOL)
    assert both.label == (
        "plateaus at its data; falls short of the teacher's continuation (sceptic confirmed)"
    )
    assert both.outcome is Outcome.CONFIRMED


def test_a_student_that_reaches_the_teacher_refutes_the_sceptic():
    ceiling = _ceiling()
    teacher = _teacher_full()
    student = _curves(lambda e: np.minimum(9.0, 4.0 + 5.0 * (e - 19) / 20).clip(0), 0.3, seed=5)
    ex = exceedance(student, ceiling, LAST_N)
    gap = continuation_gap(teacher, student, LAST_N)
    assert position(gap, TOL) == "zero"
    v = cutoff_verdict(ex, gap, TOL)
    assert v.label == (
        "exceeds its data; reaches the teacher's continuation (sceptic refuted)"
    )
    assert v.outcome is Outcome.REFUTED


def test_noisy_few_units_are_called_inconclusive():
    # Two units, huge noise: the exceedance CI straddles 0 and spans several TOLs.
    ex = bootstrap_ci(np.array([-3.0, 4.0]))
    assert ex.low < 0 < ex.high and ex.high > TOL
    v = exceedance_verdict(ex, TOL)
    assert v.inconclusive and "too wide" in v.reason
    assert cutoff_verdict(ex, Estimate(5.0, 4.0, 6.0), TOL).label == "inconclusive"
    assert continuation_verdict(Estimate(0.5, -2.0, 3.0), TOL).inconclusive


def test_below_the_ceiling_is_a_plateau_and_a_negative_gap_surpasses():
    assert exceedance_verdict(Estimate(-2.0, -3.0, -1.0), TOL).label == "plateaus below its data"
    v = continuation_verdict(Estimate(-2.0, -3.0, -1.0), TOL)
    assert v.label == "surpasses the teacher's continuation"


def test_early_only_student_versus_random():
    rng = np.random.default_rng(0)
    rand = rng.normal(1.0, 0.3, 40)
    same = rand + rng.normal(0.0, 0.1, 40)
    assert versus_random_verdict(bootstrap_ci(same - rand), 0.5).label == "no better than random"
    better = rand + 2.0 + rng.normal(0.0, 0.1, 40)
    assert versus_random_verdict(bootstrap_ci(better - rand), 0.5).label == "better than random"
    worse = versus_random_verdict(Estimate(-1.0, -1.4, -0.6), 0.5)
    assert worse.label == "worse than random"
    assert versus_random_verdict(Estimate(0.2, -0.9, 1.3), 0.5).inconclusive


def test_regret_trend_and_tracking_ucb():
    assert regret_trend_verdict(Estimate(0.05, 0.03, 0.07), 0.01).label == (
        "per-step regret keeps falling after T"
    )
    assert regret_trend_verdict(Estimate(0.001, -0.002, 0.004), 0.01).label == (
        "per-step regret stops falling after T"
    )
    assert regret_trend_verdict(Estimate(0.01, -0.02, 0.05), 0.01).inconclusive
    assert tracks_reference_verdict(Estimate(1.1, 1.0, 1.15)).label.startswith("tracks UCB")
    assert tracks_reference_verdict(Estimate(1.5, 1.3, 1.7)).label == "does not track UCB"
    assert tracks_reference_verdict(Estimate(1.2, 1.0, 1.4)).inconclusive


def test_crossed_ratio_hand_computed():
    den = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 4.0]])
    r = crossed_ratio_ci(2.0 * den, den)
    assert r.value == pytest.approx(2.0)
    assert r.low == pytest.approx(2.0) and r.high == pytest.approx(2.0)  # no spread at all
    a = np.array([[1.0, 3.0, 2.0], [5.0, 2.0, 4.0]])
    per_task = np.array([2.0, 2.0, 1.0])
    r = crossed_ratio_ci(a, per_task)
    assert r.value == pytest.approx(a.mean() / per_task.mean()) and r.low < r.value < r.high
    with pytest.raises(ValueError, match="positive mean"):
        crossed_ratio_ci(a, -per_task)


def test_the_competence_gate_reads_the_full_data_students_exceedance():
    ceiling = Estimate(10.0, 9.0, 11.0)
    # reaches its data: the exceedance CI reaches above -TOL
    assert competence_gate(Estimate(-0.5, -1.5, 0.5), Estimate(9.5, 9, 10), ceiling, TOL) is None
    assert competence_gate(Estimate(-1.5, -2.5, -0.9), Estimate(8.5, 8, 9), ceiling, TOL) is None
    # far below its data: every verdict against data is inconclusive, saying how far
    v = competence_gate(Estimate(-5.0, -6.0, -4.0), Estimate(5.0, 4.0, 6.0), ceiling, TOL)
    assert v is not None and v.outcome is Outcome.INCONCLUSIVE and v.inconclusive
    assert "does not imitate its full data (reaches 5 of 10)" in v.label
    assert "-5 [-6, -4]" in v.reason and "Scale" in v.reason


def test_the_uncut_reference_must_learn_for_a_verdict():
    from outlearn.studies.verdicts import reference_learns

    assert reference_learns(Estimate(3.0, 2.0, 4.0), TOL) is None
    v = reference_learns(Estimate(0.2, -0.3, 0.7), TOL)
    assert v is not None and v.inconclusive and "does not learn" in v.label
    assert "0.2 [-0.3, 0.7]" in v.reason
    assert reference_learns(Estimate(1.5, 0.5, 2.5), TOL) is not None  # above 0, not > TOL
