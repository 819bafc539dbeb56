import numpy as np
import pytest

from outlearn.evaluation.metrics import (
    DataCeiling,
    asymptote,
    continuation_gap,
    cumulative_regret,
    data_ceiling,
    episode_returns_from_traj,
    episodes_to_threshold,
    exceedance,
    iqm_ci,
    mean_curve_ci,
)
from outlearn.stats import crossed_mean_ci


def test_episode_returns_from_traj_hand_computed():
    rewards = np.array([[1, 0, 2, 3, 1, 5], [0, 1, 1, 1, 1, 1]], np.float32)
    term = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], bool)
    trunc = np.array([[0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1]], bool)
    out = episode_returns_from_traj(rewards, term, trunc, num_episodes=3)
    # row 0: episodes [1,0] -> 1, [2,3] -> 5, then an unfinished [1,5] -> NaN
    np.testing.assert_array_equal(out[0], [1.0, 5.0, np.nan])
    np.testing.assert_array_equal(out[1], [2.0, 3.0, np.nan])
    assert episode_returns_from_traj(rewards, term, trunc, num_episodes=1).shape == (2, 1)


def test_cumulative_regret_hand_computed():
    er = np.array([[0.2, 0.5, 0.9], [1.0, 1.0, 0.0]])
    out = cumulative_regret(er, np.array([0.9, 1.0]))
    np.testing.assert_allclose(out, [[0.7, 1.1, 1.1], [0.0, 0.0, 1.0]])


def test_mean_curve_ci_is_the_crossed_interval_at_every_episode():
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(3, 10, 1000)) + np.linspace(0, 5, 1000)
    a = mean_curve_ci(curves)
    np.testing.assert_allclose(a.mean, curves.reshape(30, 1000).mean(axis=0))
    assert np.all(a.low <= a.mean) and np.all(a.mean <= a.high)
    assert np.all(a.high - a.low > 0)
    # a fresh learner's (seeds, tasks, E): its seeds are repeats inside each task
    est = crossed_mean_ci(curves[:, :, 500].mean(axis=0, keepdims=True))
    assert a.low[500] == pytest.approx(est.low) and a.high[500] == pytest.approx(est.high)
    # students x eval seeds x tasks: students crossed with tasks, eval seeds averaged
    four = rng.normal(size=(3, 2, 10, 50))
    b = mean_curve_ci(four)
    est = crossed_mean_ci(four.mean(axis=1)[:, :, 7])
    assert b.low[7] == pytest.approx(est.low) and b.high[7] == pytest.approx(est.high)


def test_mean_curve_ci_single_unit_collapses():
    c = np.arange(4.0).reshape(1, 1, 4)
    out = mean_curve_ci(c)
    np.testing.assert_array_equal(out.low, out.mean)
    np.testing.assert_array_equal(out.high, [0, 1, 2, 3])


def test_iqm_hand_computed():
    # middle 50% of 1..8 is 3,4,5,6 -> 4.5
    est = iqm_ci(np.arange(1.0, 9.0).reshape(2, 4), seed=0)
    assert est.value == pytest.approx(4.5)
    assert est.low <= 4.5 <= est.high


def test_asymptote_hand_computed():
    c = np.array([[[0, 1, 3, 5], [0, 0, 1, 1]]], np.float64)  # (1 seed, 2 tasks, 4 eps)
    est = asymptote(c, last_n=2)
    assert est.value == pytest.approx((4 + 1) / 2)
    assert est.low <= est.value <= est.high
    with pytest.raises(ValueError, match="last_n"):
        asymptote(c, last_n=5)


def test_data_ceiling_hand_computed():
    r = np.array([[0, 2, 4, 1], [0, 4, 6, np.nan]], np.float64)
    dc = data_ceiling(r, window=1)
    np.testing.assert_allclose(dc.curve, [0, 3, 5, 1])
    assert dc.best_episode == 2
    np.testing.assert_allclose(dc.units, [4, 6])
    assert dc.best.value == pytest.approx(5.0)
    dc2 = data_ceiling(r, window=2)  # windows: (0+3)/2, (3+5)/2, (5+1)/2 -> peak ends at ep 2
    assert dc2.best_episode == 2
    np.testing.assert_allclose(dc2.units, [3, 5])


def test_exceedance_hand_computed():
    student = np.array([[[1, 5, 7], [1, 3, 5]]], np.float64)  # asymptotes (last 2): 6, 4
    ceiling = DataCeiling(np.zeros(1), 0, np.array([2.0, 4.0]),
                          crossed_mean_ci(np.array([[2.0, 4.0]])), np.array([0, 1]),
                          np.array([2.0, 4.0]))
    est = exceedance(student, ceiling, last_n=2)
    assert est.value == pytest.approx(((6 - 2) + (4 - 4)) / 2)
    assert est.low <= 2.0 <= est.high and est.high > est.low
    fixed = exceedance(student, 3.0, last_n=2)
    assert fixed.value == pytest.approx(2.0)
    unaligned = DataCeiling(np.zeros(1), 0, np.array([2.0]), crossed_mean_ci(np.ones((1, 2))))
    with pytest.raises(ValueError, match="per task"):
        exceedance(student, unaligned, last_n=2)


def test_data_ceiling_per_task_in_the_students_task_order():
    r = np.array([[0, 2], [0, 4], [0, 6], [0, 10]], np.float64)
    dc = data_ceiling(r, window=1, task_ids=np.array([7, 7, 3, 3]), tasks=np.array([3, 7]))
    np.testing.assert_allclose(dc.per_task, [8.0, 3.0])
    assert dc.best.value == pytest.approx(5.5)
    with pytest.raises(ValueError, match="no learner on task 5"):
        data_ceiling(r, task_ids=np.array([7, 7, 3, 3]), tasks=np.array([3, 5]))


def test_continuation_gap_on_the_same_tasks_hand_computed():
    teacher = np.array([[[0, 10], [0, 8]]], np.float64)
    student = np.array([[[0, 7], [0, 7]], [[0, 6], [0, 8]]], np.float64)
    est = continuation_gap(teacher, student, last_n=1)
    assert est.value == pytest.approx(((10 - 7) + (8 - 7) + (10 - 6) + (8 - 8)) / 4)
    assert est.low < est.value < est.high
    same = continuation_gap(teacher, teacher, last_n=1)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same tasks"):
        continuation_gap(teacher[:, :1], student, last_n=1)


def test_episodes_to_threshold_hand_computed():
    assert episodes_to_threshold(np.array([0, 1, 3, 2, 5]), 3) == 3.0
    assert np.isnan(episodes_to_threshold(np.array([0, 1]), 3))
    out = episodes_to_threshold(np.array([[0, 4, 4], [5, 0, 0], [0, 0, 0]]), 4)
    np.testing.assert_array_equal(out, [2.0, 1.0, np.nan])
