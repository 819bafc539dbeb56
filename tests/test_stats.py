"""The crossed intervals cover a known mean as often as they say, where a flat bootstrap
over (student x eval seed x task) units does not."""

from __future__ import annotations

import numpy as np
import pytest

from outlearn.stats import (
    bootstrap_ci,
    crossed_bootstrap_ci,
    crossed_mean_ci,
    crossed_variance,
    percentile_interval,
)

TASKS, EVAL_SEEDS, TRUTH = 8, 2, 1.0


def _experiment(rng: np.random.Generator, students: int, task_sd: float) -> np.ndarray:
    """One study's returns, (students, eval seeds, tasks): a student effect (sd 1), a task
    effect shared by every student (sd ``task_sd``), and eval-seed noise (sd 1)."""
    a = rng.normal(0.0, 1.0, students)[:, None, None]
    b = rng.normal(0.0, task_sd, TASKS)[None, None, :]
    return TRUTH + a + b + rng.normal(0.0, 1.0, (students, EVAL_SEEDS, TASKS))


@pytest.mark.parametrize("students", [5, 10])
@pytest.mark.parametrize("task_sd", [0.0, 1.0])
def test_the_crossed_interval_covers_the_truth_95_percent_of_the_time(students, task_sd):
    rng = np.random.default_rng(100 * students + int(10 * task_sd))
    n, flat_n = 1000, 200
    covered = flat = boot = 0
    for i in range(n):
        y = _experiment(rng, students, task_sd)
        cells = y.mean(axis=1)
        est = crossed_mean_ci(cells)
        covered += est.low <= TRUTH <= est.high
        if i < flat_n:  # today's flat bootstrap and the two-way bootstrap, fewer: slower
            f = bootstrap_ci(y.ravel(), n_resamples=500, seed=i)
            flat += f.low <= TRUTH <= f.high
            b = crossed_bootstrap_ci(lambda ws, wt, c=cells: np.einsum("rs,st,rt->r", ws, c, wt),
                                     float(cells.mean()), cells, n_resamples=2000, seed=i,
                                     method="linear")
            boot += b.low <= TRUTH <= b.high
    print(f"\n{students} students, task sd {task_sd}: crossed t interval covers "
          f"{covered / n:.1%} of {n}; widened two-way bootstrap {boot / flat_n:.1%} and flat "
          f"unit bootstrap {flat / flat_n:.1%} of {flat_n}")
    assert 0.92 <= covered / n <= 0.98
    assert 0.90 <= boot / flat_n <= 0.99  # fewer experiments: a wider band
    assert flat / flat_n < 0.75  # the flat bootstrap is far too narrow for this design


def test_crossed_variance_matches_its_expectation_and_special_cases():
    # balanced design with no noise: exact decomposition
    a, b = np.array([0.0, 2.0]), np.array([0.0, 1.0, 5.0])
    y = a[:, None] + b[None, :]
    var, df = crossed_variance(y)
    # S*T*var = (MS_A - MS_E) + (MS_B - MS_E) + MS_E with MS_E = 0
    msa = 3 * np.sum((y.mean(1) - y.mean()) ** 2) / 1
    msb = 2 * np.sum((y.mean(0) - y.mean()) ** 2) / 2
    assert var == pytest.approx((msa + msb) / 6)
    assert df > 1
    one_student = crossed_variance(np.array([[1.0, 2.0, 4.0]]))
    assert one_student[0] == pytest.approx(np.var([1.0, 2.0, 4.0], ddof=1) / 3)
    assert one_student[1] == 2
    assert crossed_variance(np.array([[3.0]]))[0] == 0.0
    with pytest.raises(ValueError, match="finite"):
        crossed_mean_ci(np.array([[1.0, np.nan]]))


def test_percentile_interval_contains_the_value_and_drops_nan():
    est = percentile_interval(np.array([1.0, 2.0, np.nan, 3.0]), 10.0)
    assert est.high == 10.0 and est.low >= 1.0
    assert np.isnan(percentile_interval(np.array([np.nan]), 1.0).value)
